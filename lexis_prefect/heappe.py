"""Async client of HEAppE: session, job lifecycle, and reading a job's files as they grow."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import Base64Bytes, SecretStr, ValidationError

from lexis_prefect._http import BearerAuth, ServiceClient, TokenSource, current_token
from lexis_prefect.config import DEFAULT_TIMEOUT, RetryPolicy
from lexis_prefect.exceptions import AuthenticationError, ConfigurationError, LexisAPIError
from lexis_prefect.models.aai import token_username
from lexis_prefect.models.heappe import (
    DOWNLOAD_PARTS_MAX_BODY_BYTES,
    AuthenticateLexisTokenRequest,
    ChangedFile,
    ClusterInfo,
    CreateJobRequest,
    DeleteJobRequest,
    DownloadFileRequest,
    DownloadPartsRequest,
    EndFileTransferRequest,
    FileTransferMethod,
    FileTransferRequest,
    JobDirectory,
    JobFileContent,
    JobRequest,
    JobSpecification,
    OpenIdCredentials,
    SubmitJobRequest,
    SubmittedJobInfo,
    TaskFileOffset,
    _SessionRequest,
)

__all__ = ["HEAppEClient"]

logger = logging.getLogger("lexis_prefect.heappe")

# [V] HEAppE's session-code validator; anything else is not a session code.
_SESSION_CODE = re.compile(r"^[0-z]{8}-[0-z]{4}-[0-z]{4}-[0-z]{4}-[0-z]{12}$")
_BEARER_MODE = "HEADER-AUTH-NEEDED"

BodyFactory = Callable[[SecretStr | None], _SessionRequest]


class _BearerWhenAsked(httpx.Auth):
    """`Authorization: Bearer <LEXIS token>` on every call, once HEAppE said it wants that.

    HEAppE from V6.1 may run with LEXIS bearer authentication (`LexisAuthMiddleware`): then
    AuthenticateLexisToken answers `HEADER-AUTH-NEEDED` instead of a session code, and every
    call is authorised by its header alone, the session code ignored
    (It4innovations/HEAppE V6.3.2, RestApi/Controllers/UserAndLimitationManagementController.cs).
    """

    def __init__(self, source: TokenSource) -> None:
        self.bearer = BearerAuth(source)
        self.on = False

    async def async_auth_flow(self, request: httpx.Request):  # type: ignore[override]
        if not self.on:
            yield request
            return
        flow = self.bearer.async_auth_flow(request)
        response = yield await flow.__anext__()
        try:
            while True:
                response = yield await flow.asend(response)
        except StopAsyncIteration:
            return


class HEAppEClient(ServiceClient):
    """Talks to one HEAppE instance on behalf of one LEXIS user.

    Args:
        base_url: the instance, e.g. `https://<heappe-host>` or `https://<host>/<instance>`;
            the client appends `heappe/<Controller>/<Action>`.
        access_token: the user's LEXIS token, or an async callable giving the current one.
        username: the LEXIS user name; read from the token's `preferred_username` if omitted.

    The session code is obtained on first use and renewed once, transparently,
    when HEAppE answers 401 (session codes expire long before an HPC job does).
    Creating and submitting are not idempotent and are never repeated after they
    may have reached the server; reads, cancel and delete are retried.
    """

    service = "heappe"

    def __init__(
        self,
        base_url: str,
        access_token: TokenSource,
        *,
        username: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._auth_mode = _BearerWhenAsked(access_token)
        super().__init__(base_url, timeout=timeout, retry=retry, transport=transport, auth=self._auth_mode)
        self._access_token = access_token
        self._username = username
        self._session_code: SecretStr | None = None
        self._session_lock = asyncio.Lock()

    # -- session ---------------------------------------------------------------------------

    async def authenticate(self) -> None:
        """Log in with the LEXIS token (`AuthenticateLexisToken`) and keep the session code."""
        sent: list[str] = []

        async def body() -> Any:
            # Built for each attempt: a retry after backoff sends the keeper's current token.
            token = await current_token(self._access_token)
            sent.append(token.get_secret_value())
            username = self._username or token_username(token)
            if not username:
                raise ConfigurationError("HEAppE needs a user name: pass username=, or a token with preferred_username")
            return AuthenticateLexisTokenRequest(
                credentials=OpenIdCredentials(user_name=username, open_id_access_token=token)
            ).payload()

        try:
            response = await self._request(
                "POST",
                "heappe/UserAndLimitationManagement/AuthenticateLexisToken",
                idempotent=True,  # a lost answer only costs an unused session
                json=body,
                secrets=sent,
            )
        except LexisAPIError as exc:
            if exc.status in (400, 413) and "too large" in str(exc).lower():
                # [RequestSizeLimit(2048)] on AuthenticateLexisToken (HEAppE V4.3.0..V6.3.2): a token of
                # more than ~1,950 characters cannot log in with a session code.
                raise ConfigurationError(
                    f"HEAppE at {self.base_url} refused the LEXIS token as too large for AuthenticateLexisToken "
                    f"(HEAppE takes at most 2048 bytes there): use a token with fewer roles or scopes, or a "
                    f"HEAppE in bearer mode"
                ) from None
            raise
        code = self._parse(response, str)
        if code == _BEARER_MODE:
            logger.info("HEAppE at %s authenticates each call by its bearer token", self.base_url)
            self._auth_mode.on = True
            return
        if not _SESSION_CODE.match(code):
            raise LexisAPIError(
                "heappe AuthenticateLexisToken: the answer is not a session code",
                service=self.service,
                method="POST",
                path=response.request.url.path,
                status=response.status_code,
            )
        self._session_code = SecretStr(code)

    async def _session(self) -> SecretStr | None:
        """The session code; None in bearer mode, where calls carry no session code."""
        async with self._session_lock:
            if self._session_code is None and not self._auth_mode.on:
                await self.authenticate()
            return self._session_code

    def _secrets(self) -> list[str]:
        codes = [self._session_code.get_secret_value()] if self._session_code else []
        return codes + list(self._auth_mode.bearer.recent)

    async def _call(
        self,
        method: str,
        action: str,
        *,
        idempotent: bool,
        body: BodyFactory | None = None,
        query: dict[str, Any] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> httpx.Response:
        """One HEAppE call with the session code in the body or the query (`secrets`: scrubbed from errors too).

        A 401 means the call was refused before it did anything, so even a
        create is safe to send again with a fresh session code; once.
        """
        for renewed in (False, True):
            code = await self._session()
            try:
                return await self._request(
                    method,
                    f"heappe/{action}",
                    idempotent=idempotent,
                    json=body(code).payload() if body else None,
                    params=_query(code, query),
                    secrets=secrets,
                )
            except AuthenticationError as exc:
                if renewed or exc.status != 401:
                    raise
                logger.info("HEAppE refused the session code or token; authenticating again")
                async with self._session_lock:
                    if self._session_code == code:
                        # Asks anew which mode HEAppE is in, too: its configuration may have changed.
                        self._session_code, self._auth_mode.on = None, False
        raise AssertionError("unreachable")  # pragma: no cover

    # -- clusters and jobs -----------------------------------------------------------------

    async def list_available_clusters(self) -> list[ClusterInfo]:
        """Clusters with their node types, projects and command templates (to resolve names to ids)."""
        response = await self._call("GET", "ClusterInformation/ListAvailableClusters", idempotent=True, query={})
        return self._parse(response, list[ClusterInfo])

    async def create_job(self, specification: JobSpecification) -> SubmittedJobInfo:
        """Create a job (state Configuring); it runs only after `submit_job`."""
        response = await self._call(
            "POST",
            "JobManagement/CreateJob",
            idempotent=False,
            body=lambda code: CreateJobRequest(session_code=code, job_specification=specification),
        )
        return self._parse(response, SubmittedJobInfo)

    async def submit_job(self, job_id: int) -> SubmittedJobInfo:
        """Hand a created job to the cluster's scheduler."""
        response = await self._call(
            "PUT",
            "JobManagement/SubmitJob",
            idempotent=False,
            body=lambda code: SubmitJobRequest(session_code=code, created_job_info_id=job_id),
        )
        return self._parse(response, SubmittedJobInfo)

    async def job_info(self, job_id: int) -> SubmittedJobInfo:
        """The job's current state and its tasks (`CurrentInfoForJob`)."""
        response = await self._call(
            "GET", "JobManagement/CurrentInfoForJob", idempotent=True, query={"SubmittedJobInfoId": job_id}
        )
        return self._parse(response, SubmittedJobInfo)

    async def list_jobs(self) -> list[SubmittedJobInfo]:
        """Every job of the current user (`ListJobsForCurrentUser`), e.g. to find one by name."""
        response = await self._call("GET", "JobManagement/ListJobsForCurrentUser", idempotent=True, query={})
        return self._parse(response, list[SubmittedJobInfo])

    async def cancel_job(self, job_id: int) -> SubmittedJobInfo:
        """Ask the scheduler to cancel the job; the state becomes Canceled, possibly a poll later."""
        response = await self._call(
            "PUT",
            "JobManagement/CancelJob",
            idempotent=True,
            body=lambda code: JobRequest(session_code=code, submitted_job_info_id=job_id),
        )
        return self._parse(response, SubmittedJobInfo)

    async def delete_job(self, job_id: int, *, archive_logs: bool = False) -> str:
        """Remove the job record and its working directory; returns HEAppE's message."""
        response = await self._call(
            "DELETE",
            "JobManagement/DeleteJob",
            idempotent=True,
            body=lambda code: DeleteJobRequest(
                session_code=code, submitted_job_info_id=job_id, archive_logs=archive_logs
            ),
        )
        return self._parse(response, str)

    # -- files -----------------------------------------------------------------------------

    async def job_directory(self, job_id: int) -> JobDirectory:
        """The job's directory on its cluster and the cluster's login host (HEAppE's file transfer method).

        `POST FileTransfer/RequestFileTransfer`, then always `POST FileTransfer/CloseFileTransfer`
        (HEAppE V4.3.0..V6.3.2 RestApi/Controllers/FileTransferController.cs; <= V3.1.1 named them
        GetFileTransferMethod / EndFileTransfer). The first makes HEAppE generate a temporary SSH
        key pair and authorise it for the job; we need only `ServerHostname` and `SharedBasepath`
        (the job directory), so the key is dropped at once by its public key. The private key is
        never parsed, kept, logged or shown (`FileTransferMethod` ignores it).

        A read as far as the caller is concerned, and retried as one. Each call costs HEAppE a key:
        V6.3.2 refuses a job's seventh (`GeneratedFileTransferKeyLimitPerJob`, 5 by default, counts
        closed keys too; V4.3.0 counts open ones), so callers should ask once per job and process.
        A lost answer leaves a key we cannot close; HEAppE removes it after
        `ValidityOfTemporaryTransferKeysInHours` (24 h by default).
        """
        response = await self._call(
            "POST",
            "FileTransfer/RequestFileTransfer",
            idempotent=True,
            body=lambda code: FileTransferRequest(session_code=code, submitted_job_info_id=job_id),
        )
        method: FileTransferMethod | None = None
        try:
            try:
                method = FileTransferMethod.model_validate_json(response.content)
            except ValidationError as exc:
                # Only the names of the fields at fault: the body holds a private key.
                fields = sorted({".".join(str(part) for part in error["loc"]) or "body" for error in exc.errors()})
                raise LexisAPIError(
                    f"heappe POST {response.request.url.path}: unexpected response (fields {', '.join(fields)})",
                    service=self.service,
                    method="POST",
                    path=response.request.url.path,
                    status=response.status_code,
                ) from None
            return JobDirectory(server_hostname=method.server_hostname, path=method.shared_basepath)
        finally:
            await self._close_file_transfer(job_id, method)

    async def _close_file_transfer(self, job_id: int, method: FileTransferMethod | None) -> None:
        """`CloseFileTransfer` for the key `method` carries; a failure is logged, not raised (HEAppE expires it)."""
        public_key = method.credentials.public_key if method is not None and method.credentials else None
        if public_key is None or not public_key.get_secret_value():
            # No key to name (e.g. PrivateKeyInVaultAndInSshAgent, where HEAppE's EndFileTransfer does nothing).
            return
        try:
            await self._call(
                "POST",
                "FileTransfer/CloseFileTransfer",
                idempotent=True,  # closing a closed key fails (PublicKeyMismatch) and changes nothing
                body=lambda code: EndFileTransferRequest(
                    session_code=code, submitted_job_info_id=job_id, public_key=public_key
                ),
                secrets=(public_key.get_secret_value(),),  # an error answer may echo it
            )
        except Exception as exc:  # the directory is known; the key expires on HEAppE's side
            logger.warning("HEAppE job %s: could not close the temporary file transfer key: %s", job_id, type(exc).__name__)

    async def download_file_parts(self, job_id: int, offsets: list[TaskFileOffset]) -> list[JobFileContent]:
        """What each task file holds from its offset on (tail -f).

        Each returned part's `offset` is the one sent: the next read of that file starts
        `len(content.encode())` bytes further. HEAppE takes at most 480 bytes of body here, so
        the offsets go in as many requests as that needs.
        """
        parts: list[JobFileContent] = []
        for batch in _parts_batches(job_id, offsets):
            response = await self._call(
                "POST",
                "FileTransfer/DownloadPartsOfJobFilesFromCluster",
                idempotent=True,  # a read, though it is a POST
                body=lambda code, batch=batch: DownloadPartsRequest(
                    session_code=code, submitted_job_info_id=job_id, task_file_offsets=batch
                ),
            )
            parts += self._parse(response, list[JobFileContent])
        return parts

    async def list_changed_files(self, job_id: int) -> list[ChangedFile]:
        """Files of the job's directory with their modification times."""
        response = await self._call(
            "GET", "FileTransfer/ListChangedFilesForJob", idempotent=True, query={"SubmittedJobInfoId": job_id}
        )
        return self._parse(response, list[ChangedFile])

    async def download_file(self, job_id: int, relative_path: str) -> bytes:
        """One whole file of the job's directory.

        [V] HEAppE's FileTransferService returns `byte[]`, which ASP.NET
        serialises as a base64 JSON string.
        """
        response = await self._call(
            "POST",
            "FileTransfer/DownloadFileFromCluster",
            idempotent=True,
            body=lambda code: DownloadFileRequest(
                session_code=code, submitted_job_info_id=job_id, relative_file_path=relative_path
            ),
        )
        return self._parse(response, Base64Bytes)


def _query(code: SecretStr | None, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters as HEAppE's OpenAPI spells them (ASP.NET binds them ignoring case)."""
    if query is None:
        return None
    return query if code is None else {"SessionCode": code.get_secret_value(), **query}


def _parts_batches(job_id: int, offsets: list[TaskFileOffset]) -> list[list[TaskFileOffset]]:
    """`offsets` cut into runs whose DownloadParts body stays within `DOWNLOAD_PARTS_MAX_BODY_BYTES`.

    Measured on the body as `json.dumps` writes it by default, with spaces after `,` and `:`
    and non-ASCII escaped: never shorter than what goes on the wire, whatever the encoder.
    Each offset is measured once (this runs on every read of a job's output): a body is the
    frame around its list, the items, and `", "` between them.
    """
    if not offsets:
        return []
    items = [len(json.dumps(offset.payload()).encode()) for offset in offsets]
    one = DownloadPartsRequest(session_code=_SIZING_CODE, submitted_job_info_id=job_id, task_file_offsets=offsets[:1])
    frame = len(json.dumps(one.payload()).encode()) - items[0]
    batches: list[list[TaskFileOffset]] = []
    size = 0
    for offset, item in zip(offsets, items):
        if batches and size + 2 + item <= DOWNLOAD_PARTS_MAX_BODY_BYTES:
            batches[-1].append(offset)
            size += 2 + item
        elif frame + item <= DOWNLOAD_PARTS_MAX_BODY_BYTES:
            batches.append([offset])
            size = frame + item
        else:  # pragma: no cover - one offset is about 60 bytes
            raise ConfigurationError(f"one DownloadParts offset does not fit HEAppE's {DOWNLOAD_PARTS_MAX_BODY_BYTES} bytes")
    return batches


#: A session code is a GUID, 36 characters: the stand-in that sizes a body before the code is known.
_SIZING_CODE = SecretStr("00000000-0000-0000-0000-000000000000")
