"""Sandbox HEAppE: its REST API, session codes, file transfer keys and the views of jobs and their files.

The jobs themselves, each task a local process, are `jobs.py`; the cluster and its
templates `catalogue.py`; what HEAppE refuses, and how, `rules.py`
(the REST layer) and `business_rules.py` (the business logic).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from contextvars import ContextVar
from pathlib import Path
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from lexis_prefect.models.heappe import (
    CreateJobRequest,
    DeleteJobRequest,
    DownloadFileRequest,
    DownloadPartsRequest,
    JobRequest,
    SubmitJobRequest,
    SubmittedJobInfo,
)
from lexis_prefect.models.validation import summarize
from lexis_prefect.sandbox.aai import AAIState
from lexis_prefect.sandbox.config import SandboxConfig, SandboxLocation
from lexis_prefect.sandbox.heappe import business_rules as business
from lexis_prefect.sandbox.heappe import catalogue, rules
from lexis_prefect.sandbox.heappe.jobs import HEAppEJobs, task_file_name
from lexis_prefect.sandbox.heappe.rules import HEAppEProblem

__all__ = ["HEAppEProblem", "HEAppEState", "heappe_router"]

#: HEAppE BusinessLogicConfiguration.GeneratedFileTransferKeyLimitPerJob default (V6.3.2 appsettings.example.json).
_TRANSFER_KEY_LIMIT = 5


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))


class HEAppEState(HEAppEJobs):
    """All HEAppE instances of the sandbox (one per location), their sessions and jobs."""

    def __init__(self, config: SandboxConfig, aai: AAIState, data_dir: Path) -> None:
        super().__init__(config, data_dir)
        self.aai = aai
        self.sessions: dict[str, dict[str, Any]] = {}

    # -- persistence ------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"sessions": self.sessions, **super().dump()}

    def load(self, data: dict[str, Any]) -> None:
        self.sessions = data["sessions"]
        super().load(data)

    # -- sessions ---------------------------------------------------------------------------

    def authenticate(self, location: SandboxLocation, body: Any) -> str:
        # HEAppE (all tags) asks UserOrg who the token's owner is; the UserName sent is only logged.
        # No Credentials object: a NullReferenceException in the service, a 500 (rules.internal).
        credentials = rules.get(body, "Credentials")
        if not isinstance(credentials, dict):
            raise rules.internal()
        claims = self.token_user(rules.get(credentials, "OpenIdAccessToken"))
        if claims is None:
            raise business.invalid_token(self.profile)
        code = str(uuid.uuid4())
        self.sessions[code] = {
            "user": claims,
            "location": location.name,
            "expires_at": time.time() + self.config.session_lifetime_seconds,
        }
        self.dirty = True
        return code

    def token_user(self, token: Any) -> str | None:
        """The LEXIS user of a live access token (HEAppE asks UserOrg; the sandbox asks its AAI)."""
        claims = self.aai.verify_access(token) if isinstance(token, str) else None
        return None if claims is None else claims.get("preferred_username")

    def user(self, location: SandboxLocation, code: str | None) -> str:
        session = self.sessions.get(code) if isinstance(code, str) else None
        if session is None or session["location"] != location.name:
            raise business.unknown_session(self.profile, code)
        if session["expires_at"] <= time.time():
            expired = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(session["expires_at"]))
            raise business.expired_session(str(code), expired)
        # Sliding expiry: each use sets the session's LastAccessTime (UserAndLimitationManagementLogic, all tags).
        session["expires_at"] = time.time() + self.config.session_lifetime_seconds
        return session["user"]

    # -- file transfer (RequestFileTransfer / CloseFileTransfer) ----------------------------

    def login_host(self, location: SandboxLocation) -> str:
        """The cluster's login host name, HEAppE's `ServerHostname` (a name, nothing listens there)."""
        return f"login.{location.slug}.sandbox"

    def request_file_transfer(self, location: SandboxLocation, job: dict[str, Any]) -> dict[str, Any]:
        """`FileTransferMethodExt` for the job, with a fresh temporary key pair (a dummy, never a real key).

        HEAppE V6.3.2 BusinessLogicTier/Logic/FileTransfer/FileTransferLogic.cs `GetFileTransferMethod`:
        SharedBasepath = the job's directory (FileSystemUtils.GetJobClusterDirectoryPath), here its
        absolute path; more than `GeneratedFileTransferKeyLimitPerJob` (5) keys ever issued for the job
        is `FileTransferTemporaryKeyException("SshKeyGenerationLimit")`, an ExternalException: 502
        "External Service Error" in V6.3.2's RestApi/ExceptionMiddleware.cs (500 before V6.3).
        """
        keys = job.setdefault("transfer_keys", [])
        if len(keys) > _TRANSFER_KEY_LIMIT:
            raise HEAppEProblem(
                502, "External Service Error", "The maximum limit for the number of generated file transfer ssh keys was reached."
            )
        public_key = f"ssh-ed25519 SANDBOX-DUMMY-{uuid.uuid4().hex} sandbox"
        keys.append({"public_key": public_key, "open": True})
        self.dirty = True
        return {
            "Id": location.cluster_id,
            "ServerHostname": self.login_host(location),
            "SharedBasepath": str(self.job_dir(job["id"]).resolve()),
            "Protocol": 2,  # FileTransferProtocolExt.SftpScp
            "Port": 22,
            "Credentials": {
                "Username": job["user"],
                "Password": None,
                "CipherType": 6,  # FileTransferCipherTypeExt.Ed25519
                "CredentialsAuthType": 4,  # ClusterAuthenticationCredentialsAuthTypeExt.PrivateKey
                "PrivateKey": f"-----BEGIN SANDBOX DUMMY KEY-----\n{uuid.uuid4().hex}\n-----END SANDBOX DUMMY KEY-----",
                "PrivateKeyCertificate": None,
                "PublicKey": public_key,
                "Passphrase": None,
            },
        }

    def close_file_transfer(self, job: dict[str, Any], public_key: Any) -> None:
        """HEAppE RestApi/InputValidator/FileTransferValidator.cs: empty key -> "PublicKey must be set" (404);
        FileTransferLogic.EndFileTransfer: a key not issued (or already closed) for the job ->
        `PublicKeyMismatch`, an ExternalException (502 in V6.3.2)."""
        if not isinstance(public_key, str) or not public_key:
            raise HEAppEProblem(404, "Validation Problem", "PublicKey must be set")
        key = next((k for k in job.get("transfer_keys", []) if k["open"] and k["public_key"] == public_key), None)
        if key is None:
            raise HEAppEProblem(
                502, "External Service Error", "The direct transfer could not be finished due to a public key mismatch."
            )
        key["open"] = False
        self.dirty = True

    # -- views ------------------------------------------------------------------------------

    def info(self, job: dict[str, Any]) -> dict[str, Any]:
        tasks = [
            {
                "Id": t["id"],
                "Name": t["name"],
                "State": t["state"],
                "Priority": 4,
                "AllocatedTime": None if t["started"] is None else round((t["ended"] or time.time()) - t["started"], 3),
                "AllocatedCoreIds": [],
                "StartTime": _iso(t["started"]),
                "EndTime": _iso(t["ended"]),
                "NodeType": {"Id": t["node_type_id"]},
                "ErrorMessage": t["error"],
                "CpuHyperThreading": False,
            }
            for t in job["tasks"]
        ]
        info = {
            "Id": job["id"],
            "Name": job["name"],
            "State": job["state"],
            "Project": job["project_id"],
            "CreationTime": _iso(job["created"]),
            "SubmitTime": _iso(job["submitted"]),
            "StartTime": _iso(job["started"]),
            "EndTime": _iso(job["ended"]),
            "TotalAllocatedTime": None,
            "Tasks": tasks,
        }
        # Built as wire JSON, then checked against the shared model: the two cannot drift.
        SubmittedJobInfo.model_validate(info)
        return info

    def file_parts(self, job: dict[str, Any], request: DownloadPartsRequest) -> list[dict[str, Any]]:
        """HEAppE FileTransferLogic.DownloadPartsOfJobFilesFromCluster + SftpFullNameSynchronizer (all tags):
        per task of the job, the offsets naming it (others are ignored); a file that does not exist yet
        gives no entry; the content runs from the offset to the end of the file."""
        parts = []
        for task in job["tasks"]:
            for offset in (o for o in request.task_file_offsets if o.submitted_task_info_id == task["id"]):
                part = self._file_part(job, task, offset)
                if part is not None:
                    parts.append(part)
        return parts

    def _file_part(self, job: dict[str, Any], task: dict[str, Any], offset: Any) -> dict[str, Any] | None:
        name = task_file_name(task["files"], offset.file_type)
        path = self.task_dir(job["id"], task["id"]) / name
        if not path.is_file():
            return None
        content = ""
        if offset.offset < path.stat().st_size:
            with path.open("rb") as handle:
                handle.seek(offset.offset)
                content = handle.read().decode(errors="replace")
        return {
            "Content": content,
            "RelativePath": f"{task['id']}/{name}",
            # HEAppE echoes the offset it was sent, where the chunk starts
            # (SftpFullNameSynchronizer): the caller adds the content's length.
            "Offset": offset.offset,
            "FileType": int(offset.file_type),
            "SubmittedTaskInfoId": task["id"],
        }

    def changed_files(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        root = self.job_dir(job["id"])
        return [
            {"FileName": str(path.relative_to(root)), "LastModifiedDate": _iso(path.stat().st_mtime)}
            for path in sorted(root.rglob("*"))
            if path.is_file()
        ]

    def download(self, job: dict[str, Any], relative: str) -> str:
        root = self.job_dir(job["id"]).resolve()
        try:
            path = (root / relative.lstrip("/")).resolve()
        except ValueError:  # e.g. a NUL byte
            path = root
        if not path.is_relative_to(root) or not path.is_file():
            raise business.missing_path(self.profile, relative)
        return base64.b64encode(path.read_bytes()).decode()


def _casefold_keys(data: dict[str, Any]) -> dict[str, Any]:
    # ASP.NET binds JSON properties case-insensitively (UserName / Username).
    return {str(key).lower(): value for key, value in data.items()}


def _query(request: Request, name: str) -> str | None:
    # ASP.NET Core binds query keys case-insensitively: HEAppE's C# parameters are `sessionCode`,
    # its OpenAPI spells them `SessionCode` (HEAppE RestApi/PascalCaseParameterFilter.cs), and
    # py4heappe, generated from that spec, sends `?SessionCode=..&SubmittedJobInfoId=..`.
    wanted = name.lower()
    return next((value for key, value in request.query_params.multi_items() if key.lower() == wanted), None)


def _bind(model: Any, raw: Any) -> Any:
    """JSON keys renamed to `model`'s wire names as HEAppE's System.Text.Json binds them.

    HEAppE sets `PropertyNameCaseInsensitive = true` (RestApi/Startup.cs, AddJsonOptions), so
    `archiveLogs` and `ArchiveLogs` are one property, and System.Text.Json skips members it does
    not map (JsonUnmappedMemberHandling.Skip, its default), so a field of a newer HEAppE (e.g.
    `GpuCores`, `Reservation`) is ignored, not refused.
    """
    if isinstance(raw, list):
        return [_bind(model, item) for item in raw]
    if not isinstance(raw, dict) or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return raw
    fields = {(field.alias or name).lower(): (field.alias or name, field.annotation) for name, field in model.model_fields.items()}
    bound = {}
    for key, value in raw.items():
        if str(key).lower() in fields:
            alias, annotation = fields[str(key).lower()]
            nested = next((t for t in (annotation, *get_args(annotation)) if isinstance(t, type) and issubclass(t, BaseModel)), None)
            bound[alias] = _bind(nested, value)
    return bound


async def _body(request: Request, model: Any) -> Any:
    try:
        raw = json.loads(await request.body() or b"null")
    except ValueError:
        raise HEAppEProblem(400, "Invalid Request", "The request body is not JSON") from None
    if model is None:
        return raw
    try:
        return model.model_validate(_bind(model, raw))
    except ValidationError as exc:
        raise HEAppEProblem(400, "Invalid Request", summarize(exc)) from None


def _drop_nulls(raw: Any) -> Any:
    # A JSON null is the C# default of a nullable member: let the model's default stand in for it.
    if isinstance(raw, list):
        return [_drop_nulls(item) for item in raw]
    if isinstance(raw, dict):
        return {key: _drop_nulls(value) for key, value in raw.items() if value is not None}
    return raw


def _parse(model: Any, raw: Any) -> Any:
    """The raw JSON (already through rules.py) as `model`; what the model still refuses is
    answered like a JSON binding error of ASP.NET, 400 ValidationProblemDetails."""
    bound = _bind(model, _drop_nulls(raw))
    if isinstance(bound, dict) and "SessionCode" in {f.alias for f in model.model_fields.values()}:
        bound.setdefault("SessionCode", "")  # no session code: allowed from V6.2 (bearer mode)
    try:
        return model.model_validate(bound)
    except ValidationError as exc:
        errors = {"$." + ".".join(str(x) for x in e["loc"]): [e["msg"]] for e in exc.errors()}
        raise HEAppEProblem(400, "", errors=errors) from None


#: The LEXIS user a valid `Authorization: Bearer` header names, in bearer mode (V6.1+ LexisAuthMiddleware).
_BEARER_USER: ContextVar[str | None] = ContextVar("heappe_bearer_user", default=None)


def heappe_router(state: HEAppEState, location: SandboxLocation, prefix: str) -> APIRouter:
    """The HEAppE REST API of one location, under `<prefix>/heappe/`; rules: rules.py, business_rules.py."""
    router = APIRouter(prefix=f"{prefix}/heappe")
    profile = state.profile
    bearer_mode = state.config.heappe_bearer and profile.bearer_capable

    async def read(request: Request) -> Any:
        return rules.read_body(profile, request.url.path.rsplit("/", 1)[-1], await request.body())

    def guard() -> None:
        if not location.available:
            raise HEAppEProblem(503, "Service Unavailable", f"HEAppE of {location.name} is down (sandbox)")

    def session_user(code: Any) -> str:
        if _BEARER_USER.get() is not None:
            return _BEARER_USER.get()  # V6.3.2 GetUserForSessionCode: with a LEXIS token, the code is ignored
        code = code.get_secret_value() if hasattr(code, "get_secret_value") else code
        return state.user(location, code)

    def bearer(request: Request) -> None:
        """V6.1.0+ LexisAuthMiddleware: a `Bearer ` header is checked first (a refusal is a plain-text 401);
        without one the request goes on to the session code ("LocalScheme")."""
        _BEARER_USER.set(None)
        header = request.headers.get("authorization", "")
        if bearer_mode and header.startswith("Bearer "):
            user = state.token_user(header[len("Bearer ") :].strip())
            if user is None:
                raise rules.bearer_refusal()
            _BEARER_USER.set(user)

    def handler(fn: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                guard()
                bearer(request)
                return JSONResponse(await fn(request), media_type=rules.JSON_TYPE)
            except HEAppEProblem as problem:
                return problem.response()

        wrapped.__name__ = fn.__name__
        return wrapped

    @handler
    async def authenticate(request: Request) -> Any:
        raw = await read(request)
        if bearer_mode:  # V6.3.2 UserAndLimitationManagementController.AuthenticateLexisTokenAsync
            return "HEADER-AUTH-NEEDED"
        return state.authenticate(location, raw)

    @handler
    async def list_clusters(request: Request) -> Any:
        code = _query(request, "sessionCode")
        rules.rest_list_clusters(profile, code)
        if profile.list_clusters_session != "none":  # V4.3.0: an anonymous action
            session_user(code)
        clusters = catalogue.clusters(state.config, location)
        return catalogue.shape_clusters(profile, [c.model_dump(mode="json", by_alias=True) for c in clusters])

    @handler
    async def create_job(request: Request) -> Any:
        raw = await read(request)
        user = session_user(rules.get(raw, "SessionCode"))
        business.business_create_job(profile, catalogue.rules_catalogue(state.config, location), rules.get(raw, "JobSpecification"))
        body: CreateJobRequest = _parse(CreateJobRequest, raw)
        return state.info(state.create(location, user, body.job_specification))

    async def job_from_body(request: Request, model: Any, checked: bool = False) -> tuple[Any, dict[str, Any]]:
        body = _parse(model, await read(request)) if checked else await _body(request, model)
        job_id = body.created_job_info_id if isinstance(body, SubmitJobRequest) else body.submitted_job_info_id
        return body, state.job(location, session_user(body.session_code), job_id)

    @handler
    async def submit_job(request: Request) -> Any:
        _, job = await job_from_body(request, SubmitJobRequest, checked=True)
        state.submit(job)
        return state.info(job)

    @handler
    async def cancel_job(request: Request) -> Any:
        _, job = await job_from_body(request, JobRequest, checked=True)
        state.cancel(job)
        return state.info(job)

    @handler
    async def delete_job(request: Request) -> Any:
        _, job = await job_from_body(request, DeleteJobRequest, checked=True)
        state.delete(job)
        return profile.delete_answer

    def job_from_query(request: Request) -> dict[str, Any]:
        code = _query(request, "sessionCode")
        job_id = rules.query_id("submittedJobInfoId", _query(request, "submittedJobInfoId"))
        rules.rest_job_id(profile, code, job_id)
        return state.job(location, session_user(code), job_id)

    @handler
    async def current_info(request: Request) -> Any:
        return state.info(job_from_query(request))

    @handler
    async def list_jobs(request: Request) -> Any:
        rules.rest_session(profile, _query(request, "sessionCode"))
        user = session_user(_query(request, "sessionCode"))
        return [
            state.info(job) for job in state.jobs.values() if job["user"] == user and job["location"] == location.name
        ]

    @handler
    async def file_parts(request: Request) -> Any:
        body, job = await job_from_body(request, DownloadPartsRequest, checked=True)
        return state.file_parts(job, body)

    @handler
    async def changed_files(request: Request) -> Any:
        return state.changed_files(job_from_query(request))

    @handler
    async def download_file(request: Request) -> Any:
        body, job = await job_from_body(request, DownloadFileRequest, checked=True)
        return state.download(job, body.relative_file_path)

    @handler
    async def request_file_transfer(request: Request) -> Any:
        _, job = await job_from_body(request, JobRequest)
        return state.request_file_transfer(location, job)

    @handler
    async def close_file_transfer(request: Request) -> Any:
        _, job = await job_from_body(request, JobRequest)
        state.close_file_transfer(job, _casefold_keys(await _body(request, None)).get("publickey"))
        return "File transfer closed"  # V6.0.0+ FileTransferController.CloseFileTransfer

    routes = [
        ("POST", "UserAndLimitationManagement/AuthenticateLexisToken", authenticate),
        ("POST", "UserAndLimitationManagement/AuthenticateUserOpenId", authenticate),
        ("GET", "ClusterInformation/ListAvailableClusters", list_clusters),
        ("POST", "JobManagement/CreateJob", create_job),
        ("PUT", "JobManagement/SubmitJob", submit_job),
        ("PUT", "JobManagement/CancelJob", cancel_job),
        ("DELETE", "JobManagement/DeleteJob", delete_job),
        ("GET", "JobManagement/CurrentInfoForJob", current_info),
        ("GET", "JobManagement/ListJobsForCurrentUser", list_jobs),
        ("POST", "FileTransfer/DownloadPartsOfJobFilesFromCluster", file_parts),
        ("GET", "FileTransfer/ListChangedFilesForJob", changed_files),
        ("POST", "FileTransfer/DownloadFileFromCluster", download_file),
        # HEAppE V4.3.0..V6.3.2 FileTransferController.cs (<= V3.1.1: GetFileTransferMethod / EndFileTransfer).
        ("POST", "FileTransfer/RequestFileTransfer", request_file_transfer),
        ("POST", "FileTransfer/CloseFileTransfer", close_file_transfer),
    ]
    for method, path, endpoint in routes:
        router.add_api_route(f"/{path}", endpoint, methods=[method])
    return router
