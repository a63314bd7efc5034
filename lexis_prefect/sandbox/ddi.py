"""Sandbox DDI staging API: datasets in local folders, copies to and from HEAppE job directories.

Requests advance as the real Celery-backed API words them: queued, `In progress`,
then `Transfer completed` / `Data deleted` or `Task Failed, reason: ...`. A
stage-out into an iRODS system creates a new dataset and reports its directory
as `target_path`, whose last segment is the new dataset id.

The dataset API's metadata search (`POST /dataset/search/metadata`) finds the
registry's datasets by the metadata their stage request sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from lexis_prefect.models.ddi import (
    FAILED_PREFIX,
    IN_PROGRESS,
    QUEUED,
    DeleteRequest,
    StageRequest,
    dataset_path,
)
from lexis_prefect.models.heappe import JobState
from lexis_prefect.models.validation import summarize
from lexis_prefect.sandbox.aai import AAIState
from lexis_prefect.sandbox.config import SandboxConfig
from lexis_prefect.sandbox.heappe import HEAppEState

__all__ = ["DDIProblem", "DDIState", "dataset_router", "ddi_router", "DEMO_DATASET_ID"]

#: The seed's placeholder dataset, present in every fresh sandbox.
DEMO_DATASET_ID = "your-dataset-uuid"
logger = logging.getLogger("lexis_prefect.sandbox")
DEMO_FILES = {
    "input.txt": "LEXIS sandbox demo input\n",
    "data/sample.csv": "x,y\n1,2\n3,4\n",
}


class DDIProblem(Exception):
    """An error answer of the staging API: `{"status": "<code>", "errorString": "..."}`."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error

    def response(self) -> JSONResponse:
        return JSONResponse({"status": str(self.status), "errorString": self.error}, status_code=self.status)


class _StageFailed(Exception):
    """A copy that could not be done; becomes `Task Failed, reason: <message>`."""


class DDIState:
    """Staging requests, the dataset registry, and the iRODS/NFS systems' folders."""

    def __init__(self, config: SandboxConfig, aai: AAIState, heappe: HEAppEState, data_dir: Path) -> None:
        self.config = config
        self.aai = aai
        self.heappe = heappe
        self.root = data_dir / "ddi"
        self.requests: dict[str, dict[str, Any]] = {}
        self.datasets: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    def dump(self) -> dict[str, Any]:
        return {"requests": self.requests, "datasets": self.datasets}

    def load(self, data: dict[str, Any]) -> None:
        self.requests, self.datasets = data["requests"], data["datasets"]
        for request in self.requests.values():  # copies cut short by a restart did not happen
            if request["status"] in (QUEUED, IN_PROGRESS):
                request["status"] = f"{FAILED_PREFIX}the staging service restarted"

    # -- systems and datasets ---------------------------------------------------------------

    def system_types(self) -> dict[str, str]:
        types = {s.name: s.type for s in self.config.ddi_systems}
        types.update({loc.ddi_system: "HPC" for loc in self.config.locations})
        return types

    def add_dataset(
        self,
        files: dict[str, str],
        *,
        system: str | None = None,
        project: str = "myproject",
        access: str = "project",
        dataset_id: str | None = None,
        title: str = "sandbox dataset",
        owner: str = "demo",
    ) -> dict[str, Any]:
        """Create a dataset from `files` (relative path -> text); returns its registry entry."""
        system = system or self.config.ddi_systems[0].name
        if self.system_types().get(system) not in ("iRODS", "NFS"):
            raise DDIProblem(400, f"Malformed request. {system!r} is not a storage system")
        dataset_id = dataset_id or str(uuid.uuid4())
        path = dataset_path(dataset_id, project, access=access, username=owner)  # type: ignore[arg-type]
        folder = self._resolve(system, path)
        for name, content in files.items():
            target = self._inside(folder, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        folder.mkdir(parents=True, exist_ok=True)
        entry = {"id": dataset_id, "system": system, "path": path, "metadata": {"title": title}, "created": time.time()}
        self.datasets[dataset_id] = entry
        self.dirty = True
        return entry

    def seed_demo(self) -> None:
        if DEMO_DATASET_ID not in self.datasets:
            self.add_dataset(DEMO_FILES, dataset_id=DEMO_DATASET_ID, title="LEXIS sandbox demo dataset")

    # -- dataset search ---------------------------------------------------------------------

    def location(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A dataset's `location` as the dataset API answers it, read off its path.

        `zone` is the system name [I]. A path under `project/proj<md5>` or `public/proj<md5>`
        names a project of the configuration by its hash (None if none hashes so); under
        `user/<name>` it belongs to that user, with no project [I]. A path outside that
        layout (a stage-out to any folder) reads as a project dataset of no known project.
        """
        parts = _segments(entry["path"])
        access, project = "project", None
        if len(parts) >= 3 and parts[0] == "user":
            access = "user"
        elif len(parts) >= 3 and parts[0] in ("project", "public") and parts[1].startswith("proj"):
            access = parts[0]
            digest = parts[1].removeprefix("proj")
            project = next((p for p in self.config.projects if hashlib.md5(p.encode()).hexdigest() == digest), None)
        return {"internalID": entry["id"], "access": access, "project": project, "zone": entry["system"]}

    def search(self, query: dict[str, Any], user: str) -> list[dict[str, Any]]:
        """The datasets `user` may see whose metadata has every key of `query` with an equal value.

        Sandbox choices [I], the real matching and permissions are not known: a key
        matches only on an equal whole value (a list equals only the same list), an empty
        query matches every dataset, and every user sees every project and public
        dataset (the sandbox has no project membership) but only their own `user/<name>` ones.
        """
        hits = []
        for entry in sorted(self.datasets.values(), key=lambda e: e.get("created", 0)):
            location = self.location(entry)
            if location["access"] == "user" and _segments(entry["path"])[1] != user:
                continue
            metadata = entry.get("metadata") or {}
            if all(key in metadata and metadata[key] == value for key, value in query.items()):
                hits.append({"location": location, "metadata": metadata})
        return hits

    def _resolve(self, system: str, path: str) -> Path:
        return self._inside(self.root / system, path)

    @staticmethod
    def _inside(root: Path, path: str) -> Path:
        resolved = (root / path.lstrip("/")).resolve()
        if not resolved.is_relative_to(root.resolve()):
            raise _StageFailed(f"path {path!r} leaves its system")
        return resolved

    def _hpc_dir(self, request: StageRequest, system: str, user: str) -> Path:
        """The HEAppE job (or task) directory an HPC-side path is relative to."""
        location = next(loc for loc in self.config.locations if loc.ddi_system == system)
        served = self.config.heappe_prefix(location)
        if urlsplit(request.heappe_url or "").path.rstrip("/") != served:
            raise _StageFailed(f"heappe_url {request.heappe_url!r} is not the HEAppE of {location.name}")
        job = self.heappe.jobs.get(request.job_id or 0)
        if job is None or job["location"] != location.name or job["user"] != user:
            raise _StageFailed(f"HEAppE job {request.job_id} does not exist at {location.name}")
        if job["state"] == JobState.Deleted:
            raise _StageFailed(f"HEAppE job {request.job_id} was deleted")
        if not request.task_id:
            return self.heappe.job_dir(job["id"])
        if request.task_id not in {t["id"] for t in job["tasks"]}:
            raise _StageFailed(f"task {request.task_id} is not in HEAppE job {request.job_id}")
        return self.heappe.task_dir(job["id"], request.task_id)

    # -- requests ---------------------------------------------------------------------------

    def validate(self, body: Any) -> StageRequest:
        # [V] the real API requires both flags; the shared model defaults them for callers' sake.
        missing = [flag for flag in ("encryption", "compression") if not isinstance(body, dict) or flag not in body]
        if missing:
            raise DDIProblem(400, f"Malformed request. Missing {' and '.join(missing)}")
        try:
            request = StageRequest.model_validate(body)
        except ValidationError as exc:
            raise DDIProblem(400, f"Malformed request. {summarize(exc)}") from None
        types = self.system_types()
        for side in ("source_system", "target_system"):
            if getattr(request, side) not in types:
                raise DDIProblem(400, f"Malformed request. Unknown {side} {getattr(request, side)!r}")
        if "HPC" in (types[request.source_system], types[request.target_system]) and request.job_id is None:
            raise DDIProblem(400, "Malformed request. job_id, task_id and heappe_url are required for HPC systems")
        if types[request.target_system] == "iRODS" and request.metadata is None:
            raise DDIProblem(400, "Malformed request. metadata is required when the target is iRODS")
        return request

    def submit(self, operation: str, user: str, work: Any) -> str:
        request_id = str(uuid.uuid4())
        self.requests[request_id] = {"operation": operation, "user": user, "status": QUEUED, "created": time.time()}
        self.dirty = True
        task = asyncio.get_running_loop().create_task(self._run(request_id, work))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return request_id

    async def _run(self, request_id: str, work: Any) -> None:
        entry = self.requests[request_id]
        await asyncio.sleep(self.config.staging_seconds / 2)
        entry["status"] = IN_PROGRESS
        self.dirty = True
        await asyncio.sleep(self.config.staging_seconds / 2)
        try:
            result = await asyncio.to_thread(work)  # file copies: off the event loop
        except (_StageFailed, OSError) as exc:
            entry["status"] = f"{FAILED_PREFIX}{exc}"
        except Exception as exc:  # a sandbox bug must show as a failed request, not a silent hang
            logger.exception("staging request %s crashed", request_id)
            entry["status"] = f"{FAILED_PREFIX}internal sandbox error: {exc!r}"
        else:
            # The registry changes here, on the loop, never from the copying thread.
            if "dataset" in result:
                dataset = result.pop("dataset")
                self.datasets[dataset["id"]] = dataset
            for dataset_id in result.pop("forget", []):
                self.datasets.pop(dataset_id, None)
            entry.update(result)
        self.dirty = True

    def stage_work(self, request: StageRequest, user: str) -> Any:
        types = self.system_types()

        def side(system: str, path: str) -> Path:
            if types[system] == "HPC":
                return self._inside(self._hpc_dir(request, system, user), path)
            return self._resolve(system, path)

        def work() -> dict[str, Any]:
            source = side(request.source_system, request.source_path)
            if not source.exists():
                raise _StageFailed(f"source path {request.source_path!r} does not exist on {request.source_system}")
            target = side(request.target_system, request.target_path or "")
            dataset_id = None
            if types[request.target_system] == "iRODS":
                dataset_id = str(uuid.uuid4())
                target = target / dataset_id
            _copy(source, target)
            if dataset_id is None:
                return {"status": "Transfer completed", "target_path": request.target_path}
            reported = f"{(request.target_path or '').strip('/')}/{dataset_id}".lstrip("/")
            dataset = {
                "id": dataset_id,
                "system": request.target_system,
                "path": reported,
                "metadata": request.metadata.model_dump(by_alias=True) if request.metadata else {},
                "created": time.time(),
            }
            return {"status": "Transfer completed", "target_path": reported, "dataset": dataset}

        return work

    def delete_work(self, request: DeleteRequest) -> Any:
        if self.system_types().get(request.target_system) not in ("iRODS", "NFS"):
            raise DDIProblem(400, f"Malformed request. Unknown target_system {request.target_system!r}")
        doomed = "/".join(part for part in request.target_path.split("/") if part not in ("", "."))
        if not doomed:
            raise DDIProblem(400, f"Malformed request. Refusing to delete the root of {request.target_system}")

        def work() -> dict[str, Any]:
            target = self._resolve(request.target_system, request.target_path)
            if not target.exists():
                raise _StageFailed(f"{request.target_path!r} does not exist")
            shutil.rmtree(target) if target.is_dir() else target.unlink()
            gone = [  # the deleted path and everything below it
                dataset_id
                for dataset_id, entry in list(self.datasets.items())
                if entry["system"] == request.target_system and f"{entry['path'].strip('/')}/".startswith(f"{doomed}/")
            ]
            return {"status": "Data deleted", "forget": gone}

        return work


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _copy(source: Path, target: Path) -> None:
    """Copy a file into a folder, or a folder's content into a folder (merging)."""
    target.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target / source.name)


def _handler(state: DDIState) -> Any:
    """A decorator: the route answers for the bearer token's user, and `DDIProblem`s in the API's shape."""

    def bearer_user(request: Request) -> str:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise DDIProblem(401, "No Authorization header or wrong format")
        claims = state.aai.verify_access(header[7:].strip())
        if claims is None:
            raise DDIProblem(401, "Inactive token")
        return claims["preferred_username"]

    def handler(fn: Any) -> Any:
        async def wrapped(request: Request) -> JSONResponse:
            try:
                user = bearer_user(request)
                status, body = await fn(request, user, **request.path_params)
                return JSONResponse(body, status_code=status)
            except DDIProblem as problem:
                return problem.response()

        wrapped.__name__ = fn.__name__
        return wrapped

    return handler


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        raise DDIProblem(400, "Malformed request. The body is not JSON") from None


def ddi_router(state: DDIState) -> APIRouter:
    router = APIRouter(prefix="/staging")
    handler = _handler(state)

    @router.get("/", response_class=PlainTextResponse)
    async def welcome() -> str:
        return "Welcome to the LEXIS staging API (sandbox)"

    @handler
    async def info(request: Request, user: str) -> tuple[int, Any]:
        return 200, sorted(state.system_types())

    @handler
    async def stage(request: Request, user: str) -> tuple[int, Any]:
        body = state.validate(await json_body(request))
        return 201, {"request_id": state.submit("stage", user, state.stage_work(body, user))}

    @handler
    async def delete(request: Request, user: str) -> tuple[int, Any]:
        try:
            body = DeleteRequest.model_validate(await json_body(request))
        except ValidationError:
            raise DDIProblem(400, "Malformed request. target_system and target_path are required") from None
        return 201, {"request_id": state.submit("delete", user, state.delete_work(body))}

    def status_of(operation: str) -> Any:
        @handler
        async def status(request: Request, user: str, request_id: str) -> tuple[int, Any]:
            entry = state.requests.get(request_id)
            if entry is None or entry["operation"] != operation or entry["user"] != user:
                return 200, {"status": QUEUED}  # as Celery: unknown ids look queued
            return 200, {k: v for k, v in entry.items() if k in ("status", "target_path")}

        return status

    router.add_api_route("/info", info, methods=["GET"])
    router.add_api_route("/stage", stage, methods=["POST"])
    router.add_api_route("/stage/{request_id}", status_of("stage"), methods=["GET"])
    router.add_api_route("/delete", delete, methods=["POST", "DELETE"])
    router.add_api_route("/delete/{request_id}", status_of("delete"), methods=["GET"])
    return router


def dataset_router(state: DDIState) -> APIRouter:
    """The dataset API's metadata search, beside the staging API (`/dataset` next to `/staging`).

    Errors in the staging API's shape (`{"status", "errorString"}`) [I: the dataset API's own
    error shape is not pinned down].
    """
    router = APIRouter(prefix="/dataset")
    handler = _handler(state)

    @handler
    async def search_metadata(request: Request, user: str) -> tuple[int, Any]:
        query = await json_body(request)
        if not isinstance(query, dict):
            raise DDIProblem(400, "Malformed request. The body must be a JSON object of metadata")
        return 200, state.search(query, user)

    router.add_api_route("/search/metadata", search_metadata, methods=["POST"])
    return router
