"""Sandbox DDI staging API: datasets in local folders, copies to and from HEAppE job directories.

It emulates the published staging API (lexis-project/ddi-service-apis @ 9e96c41, below "DDI"),
as strict as it and no stricter; each rule cites its source, and docs/lexis-contract.md
lists them all. Requests advance as the real Celery-backed API words them:
queued, `In progress`, then `Transfer completed` / `Data deleted` or `Task Failed, reason: ...`.

- iRODS paths are relative to the zone: `/<zone>/` is prepended (DDI staging/staging/staging_api.py
  `source_info.get("base_path") + source_path`). A stage into a 4-part collection
  (`/<zone>/project/proj<md5>`) creates a new dataset `<uuid1>` below it and answers its absolute
  path; any other target is written into as is (DDI staging/staging/irods_transfer.py
  `initiate_staging_zone_to_irods_transfer`).
- HPC paths are absolute paths on the cluster (`<ServerHostname>:/` + path, staging_api.py
  `nfs_to_local_hpc`, `local_hpc_to_nfs`). Here they are paths on this machine and must lie inside
  one of the user's HEAppE job directories at that location (the sandbox HEAppE's SharedBasepath):
  anything else fails the request as a refused scp would.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from lexis_prefect.models.ddi import COMPLETED_STATUSES, FAILED_PREFIX, IN_PROGRESS, QUEUED, dataset_path
from lexis_prefect.models.heappe import JobState
from lexis_prefect.sandbox.aai import AAIState
from lexis_prefect.sandbox.config import SandboxConfig
from lexis_prefect.sandbox.ddi_http import DDIProblem, ServerError, bearer_user, handler, json_body
from lexis_prefect.sandbox.heappe import HEAppEState

__all__ = ["DDIState", "ddi_router", "DEMO_DATASET_ID", "zone_name"]

#: The seed's placeholder dataset, present in every fresh sandbox.
DEMO_DATASET_ID = "your-dataset-uuid"
logger = logging.getLogger("lexis_prefect.sandbox")
DEMO_FILES = {
    "input.txt": "LEXIS sandbox demo input\n",
    "data/sample.csv": "x,y\n1,2\n3,4\n",
}

#: DDI staging/staging/validate_input.py `validate_staging_input_body`: every one is required.
STAGE_KEYS = ("source_system", "target_system", "source_path", "target_path", "encryption", "compression")
#: validate_input.py: required when either side is of type HPC.
HPC_KEYS = ("task_id", "job_id", "heappe_url")
#: DDI staging/staging/verifyMetadata.py `verifyMetadataForUpload`.
SINGLE_VALUED = ("identifier", "title", "publicationYear", "resourceType", "resourceTypeGeneral", "CustomMetadata", "scope", "format")
MULTI_VALUED = (
    "creator", "publisher", "owner", "contributor", "relatedIdentifier", "rights", "rightsURI", "rightsIdentifier",
    "CustomMetadataSchema", "AlternateIdentifier", "RelatedSoftware", "description",
)  # fmt: skip


def _invalid(text: str) -> str:
    # views.py `stage`: `except Exception as e: return errors.MalformedRequest(str(e))`; str() of a
    # KeyError keeps its quotes: "Malformed request. 'Input is not valid. ...'".
    return f"Malformed request. '{text}'"


class _StageFailed(Exception):
    """A copy that could not be done; becomes `Task Failed, reason: <message>`."""


def zone_name(system: Any) -> str:
    """The iRODS zone of a sandbox storage system, e.g. `IT4ILexisZone` for location `it4i`.

    [I] sandbox naming, after DDI ansible/roles/staging_api/files/system_it4i.yml (`it4i_iRODS`:
    base_path `/IT4ILexisZone/`); the sandbox configuration does not name zones.
    """
    return re.sub(r"[^A-Za-z0-9]", "", system.location).upper() + "LexisZone"


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

    # -- systems and datasets (which of them the dataset API lists: `location`) --------------

    def system_types(self) -> dict[str, str]:
        types = {s.name: s.type for s in self.config.ddi_systems}
        types.update({loc.ddi_system: "HPC" for loc in self.config.locations})
        return types

    def zone(self, system: str) -> str:
        return zone_name(next(s for s in self.config.ddi_systems if s.name == system))

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
        dataset_id = dataset_id or str(uuid.uuid1())
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

    def location(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        """A dataset's `location` as the dataset API answers it, or None if the search does not list it.

        DDI irodsapi/demo/dataset.py `findColsAll`: datasets are the direct sub-collections of
        `/<zone>/public/proj<md5>`, `/<zone>/project/proj<md5>` and `/<zone>/user/proj<md5>/<user>`
        of projects known by their `ShortProject` (here: the configured projects, by hash);
        `gatherDataC`: `{internalID, access, project, zone}`, `zone` the iRODS zone name.
        """
        parts = _segments(entry["path"])
        if len(parts) == 3 and parts[0] in ("project", "public"):
            access, owner = parts[0], None
        elif len(parts) == 4 and parts[0] == "user":
            access, owner = "user", parts[2]
        else:
            return None
        digest = parts[1].removeprefix("proj")
        project = next((p for p in self.config.projects if hashlib.md5(p.encode()).hexdigest() == digest), None)
        if project is None or parts[-1] != entry["id"]:
            return None
        return {"internalID": entry["id"], "access": access, "project": project, "zone": self.zone(entry["system"]), "owner": owner}

    def _resolve(self, system: str, path: str) -> Path:
        return self._inside(self.root / system, path)

    @staticmethod
    def _inside(root: Path, path: str) -> Path:
        try:
            resolved = (root / path.lstrip("/")).resolve()
        except (ValueError, OSError) as exc:
            raise _StageFailed(f"path {path!r}: {exc}") from None
        if not resolved.is_relative_to(root.resolve()):
            raise _StageFailed(f"path {path!r} leaves its system")
        return resolved

    def _hpc_path(self, body: dict[str, Any], system: str, user: str, path: Any) -> Path:
        """The local path of an HPC-side path: absolute, inside one of `user`'s job directories there.

        DDI staging_api.py: the server logs in to HEAppE at `heappe_url` + `/heappe/...` with the
        user's token ("HEAppE Authentication failed" otherwise), asks it for the file transfer method
        of `job_id` ("HEAppE job ID is invalid" when that fails), then scp's `<ServerHostname>:/` +
        path. `task_id` is required but not used. A path without a leading `/` is relative to the
        cluster account's home (cp_ssh.py splits on `:/`), so outside every job directory.
        [I] fails safely: the real cp_ssh.py swallows scp errors (a refused copy may still end
        "Transfer completed"); the sandbox fails the request instead, so a wrong path shows.
        """
        location = next(loc for loc in self.config.locations if loc.ddi_system == system)
        url = body.get("heappe_url")
        if not isinstance(url, str) or urlsplit(url).path.rstrip("/") != self.config.heappe_prefix(location):
            raise _StageFailed("HEAppE Authentication failed")
        try:
            job = self.heappe.jobs.get(int(body.get("job_id")))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            job = None
        if job is None or job["location"] != location.name or job["user"] != user:
            raise _StageFailed("HEAppE job ID is invalid")
        host = self.heappe.login_host(location)
        if not isinstance(path, str) or not path.startswith("/"):
            raise _StageFailed(f"scp: {host}:/{path}: not in a HEAppE job directory of {user} (an HPC path is absolute)")
        try:
            resolved = Path(path).resolve()
        except (ValueError, OSError) as exc:
            raise _StageFailed(f"scp: {host}:/{path}: {exc}") from None
        roots = [
            self.heappe.job_dir(j["id"]).resolve()
            for j in self.heappe.jobs.values()
            if j["user"] == user and j["location"] == location.name and j["state"] != JobState.Deleted
        ]
        if not any(resolved.is_relative_to(root) for root in roots):
            raise _StageFailed(f"scp: {host}:/{path}: Permission denied (not in a HEAppE job directory of {user})")
        return resolved

    # -- requests ---------------------------------------------------------------------------

    def validate(self, body: Any) -> dict[str, Any]:
        """DDI staging/staging/validate_input.py `validate_staging_input_body`, message for message.

        Extra keys are ignored, as there. Paths are not checked up front (the real API concatenates
        them verbatim); a bad one fails the request.
        """
        if not isinstance(body, dict):
            # views.py `stage` assigns `data["token"]` first: a TypeError, answered as a 400.
            kind = type(body).__name__ if body is not None else "NoneType"
            reason = "list indices must be integers or slices, not str" if isinstance(body, list) else f"'{kind}' object does not support item assignment"
            raise DDIProblem(400, f"Malformed request. {reason}")
        types = self.system_types()
        if any(key not in body for key in STAGE_KEYS) or not all(
            isinstance(body[side], str) and body[side] in types for side in ("source_system", "target_system")
        ):
            # A missing key, or an unknown system (`generate_config.get_type`: KeyError).
            raise DDIProblem(400, _invalid("Input is not valid. Please check source and target information"))
        for flag in ("encryption", "compression"):
            if body[flag] not in ("yes", "no"):
                raise DDIProblem(400, _invalid(f"Input is not valid. Check {flag} values. Allowed values are yes or no"))
        source, target = types[body["source_system"]], types[body["target_system"]]
        if "HPC" in (source, target):
            if any(key not in body for key in HPC_KEYS):
                raise DDIProblem(400, _invalid("Input is not valid. HEAppE job and task id are required"))
        elif target == "iRODS":  # `elif`: metadata is not checked when a side is HPC
            if "metadata" not in body:
                raise DDIProblem(400, _invalid("Input is not valid. Metadata are required"))
            error = _verify_metadata(body["metadata"])
            if error is not None:
                raise DDIProblem(400, f"Malformed request. {error}")
        return body

    def validate_delete(self, body: Any) -> dict[str, Any]:
        """DDI validate_input.py `validate_deletion_input_body`; views.py `delete_copy` answers every
        KeyError "Malformed request. Required parameters not provided" and lets anything else be a 500."""
        if not isinstance(body, dict):
            raise ServerError("data['token'] assignment")
        types = self.system_types()
        missing = any(key not in body for key in ("target_system", "target_path"))
        if missing or not isinstance(body["target_system"], str) or body["target_system"] not in types:
            raise DDIProblem(400, "Malformed request. Required parameters not provided")
        if types[body["target_system"]] == "HPC" and any(key not in body for key in HPC_KEYS):
            raise DDIProblem(400, "Malformed request. Required parameters not provided")
        return body

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
        partial: dict[str, Any] = {}
        try:
            result = await asyncio.to_thread(work, partial)  # file copies: off the event loop
        except (_StageFailed, OSError) as exc:
            entry["status"] = f"{FAILED_PREFIX}{exc}"
            result = partial
        except Exception as exc:  # a sandbox bug must show as a failed request, not a silent hang
            logger.exception("staging request %s crashed", request_id)
            entry["status"] = f"{FAILED_PREFIX}internal sandbox error: {exc!r}"
            result = partial
        # The registry changes here, on the loop, never from the copying thread.
        if "dataset" in result:
            dataset = result.pop("dataset")
            self.datasets[dataset["id"]] = dataset
        for dataset_id in result.pop("forget", []):
            self.datasets.pop(dataset_id, None)
        if not entry["status"].startswith(FAILED_PREFIX):
            entry.update(result)
        self.dirty = True

    def stage_work(self, body: dict[str, Any], user: str) -> Any:
        types = self.system_types()
        source_system, target_system = body["source_system"], body["target_system"]

        def side(system: str, path: Any) -> Path:
            if types[system] == "HPC":
                return self._hpc_path(body, system, user, path)
            if not isinstance(path, str):
                raise _StageFailed(f"can only concatenate str (not {type(path).__name__!r}) to str")
            return self._resolve(system, path)

        def work(partial: dict[str, Any]) -> dict[str, Any]:
            source = side(source_system, body["source_path"])
            target_path = body["target_path"]
            if types[target_system] == "iRODS":
                if "metadata" not in body:
                    # staging_api.py `nfs_to_irods` reads `input_data["metadata"]` inside the task:
                    # an HPC -> iRODS request without it fails there (validate_input.py does not check it).
                    raise _StageFailed("'metadata'")
                return self._to_irods(body, source, partial)
            if not source.exists():
                raise _StageFailed(
                    "Dataset doesn't exist or wrong target path" if types[source_system] == "iRODS" else "Source path doesn't exist"
                )
            target = side(target_system, target_path)
            _copy(source, target)
            if types[target_system] == "HPC":
                # staging_api.py `nfs_to_local_hpc`: `heappe_target + ":/" + target_path`.
                location = next(loc for loc in self.config.locations if loc.ddi_system == target_system)
                return {"status": "Transfer completed", "target_path": f"{self.heappe.login_host(location)}:/{target_path}"}
            return {"status": "Transfer completed", "target_path": target_path}

        return work

    def _to_irods(self, body: dict[str, Any], source: Path, partial: dict[str, Any]) -> dict[str, Any]:
        """DDI irods_transfer.py `initiate_staging_zone_to_irods_transfer`.

        `/<zone>/` + target_path of exactly 4 `/`-parts (`/<zone>/project/proj<md5>`): a new
        collection `<uuid1>` below it, with the metadata, created BEFORE the copy (so a failed copy
        leaves it behind, as there); else the target collection itself, created if missing. The
        answer is the absolute collection path, plus `/<file name>` for a single-file source.
        """
        system, target_path = body["target_system"], body["target_path"]
        if not isinstance(target_path, str):
            raise _StageFailed(f"can only concatenate str (not {type(target_path).__name__!r}) to str")
        full = f"/{self.zone(system)}/" + target_path
        if len(full.split("/")) == 4:
            dataset_id = str(uuid.uuid1())
            relative, answer = f"{target_path}/{dataset_id}", f"{full}/{dataset_id}"
        else:
            relative, answer = target_path, full
        folder = self._resolve(system, relative)
        folder.mkdir(parents=True, exist_ok=True)
        metadata = body.get("metadata")
        entry = {
            "id": folder.name,
            "system": system,
            "path": "/".join(_segments(relative)),
            "metadata": metadata if isinstance(metadata, dict) else {},
            "created": time.time(),
        }
        known = self.datasets.get(entry["id"])
        if self.location(entry) is not None and (known is None or known["path"] != entry["path"]):
            partial["dataset"] = entry  # a new dataset: listed even if the copy below fails
        if not source.exists():
            raise _StageFailed("Source path doesn't exist")
        _copy(source, folder)
        if source.is_file():
            answer = f"{answer}/{source.name}"
        return {"status": "Transfer completed", "target_path": answer, **partial}

    def delete_work(self, body: dict[str, Any], user: str) -> Any:
        system, target_path = body["target_system"], body["target_path"]
        kind = self.system_types()[system]

        def work(partial: dict[str, Any]) -> dict[str, Any]:
            if not isinstance(target_path, str):
                raise _StageFailed(f"can only concatenate str (not {type(target_path).__name__!r}) to str")
            if kind == "HPC":
                target = self._hpc_path(body, system, user, target_path)
                doomed_ids: list[str] = []
            else:
                if kind == "iRODS" and len(f"/{self.zone(system)}/{target_path}".split("/")) <= 4:
                    # staging_api.py `delete_irods`: only paths of more than 4 parts may go.
                    raise _StageFailed("You have no rights to delete this directory")
                doomed = "/".join(_segments(target_path))
                if not doomed:  # [I] sandbox safety: `delete_nfs` has no such check
                    raise _StageFailed("You have no rights to delete this directory")
                target = self._resolve(system, target_path)
                doomed_ids = [  # the deleted path and everything below it
                    dataset_id
                    for dataset_id, entry in list(self.datasets.items())
                    if entry["system"] == system and f"{entry['path'].strip('/')}/".startswith(f"{doomed}/")
                ]
            if not target.exists():
                raise _StageFailed(f"{target_path!r} does not exist")
            shutil.rmtree(target) if target.is_dir() else target.unlink()
            return {"status": "Data deleted", "forget": doomed_ids}

        return work


def _verify_metadata(metadata: Any) -> str | None:
    """DDI staging/staging/verifyMetadata.py `verifyMetadataForUpload` (None: valid).

    [I] CustomMetadata is not validated against CustomMetadataSchema here (the real one uses jsonschema).
    """
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        return f"'{type(metadata).__name__}' object has no attribute 'get'"  # `metadata.get(...)`
    schemas, custom = metadata.get("CustomMetadataSchema"), metadata.get("CustomMetadata")
    if (custom is not None or schemas is not None) and not isinstance(schemas, (list, str, dict)):
        return f"'{type(schemas).__name__}' object is not iterable"  # `enumerate(schemas)`
    for key in SINGLE_VALUED:
        value = metadata.get(key)
        if value is not None and not isinstance(value, str):
            return f"Metadata is not valid: Metadata {key} is not a string"
    for key in MULTI_VALUED:
        value = metadata.get(key)
        if value is not None and not isinstance(value, list):
            return f"Metadata is not valid: Metadata {key} is not an array"
    for pair in metadata.get("AlternateIdentifier") or []:
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            return "Metadata is not valid: Metadata AlternateIdentifier should be an array of pairs of strings"
    return None


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _copy(source: Path, target: Path) -> None:
    """Copy a file into a folder, or a folder's content into a folder (merging)."""
    target.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target / source.name)


def ddi_router(state: DDIState) -> APIRouter:
    router = APIRouter(prefix="/staging")

    @router.get("/", response_class=PlainTextResponse)
    async def welcome() -> str:
        return "Welcome to the staging api"  # DDI views.py `index`

    @handler
    async def info(request: Request) -> tuple[int, Any]:
        return 200, sorted(state.system_types())  # DDI views.py `get_targets`: no auth at all

    @handler
    async def stage(request: Request) -> tuple[int, Any]:
        raw = await json_body(request)  # views.py: the body is parsed before the token is read
        user = bearer_user(state.aai, request, stage=True)
        body = state.validate(raw)
        return 201, {"request_id": state.submit("stage", user, state.stage_work(body, user))}

    @handler
    async def delete(request: Request) -> tuple[int, Any]:
        raw = await json_body(request)
        user = bearer_user(state.aai, request)
        body = state.validate_delete(raw)
        return 201, {"request_id": state.submit("delete", user, state.delete_work(body, user))}

    @handler
    async def delete_other_method(request: Request) -> tuple[int, Any]:
        # views.py `delete_copy`: `if request.method == 'DELETE':` and no else, so the view
        # returns None and Django answers 500.
        raise ServerError("delete_copy returned None")

    @handler
    async def stage_other_method(request: Request) -> tuple[int, Any]:
        raise DDIProblem(405, "Method Not Allowed")  # views.py `stage`: `return errors.E405()`

    def status_of(operation: str, completed: str) -> Any:
        @handler
        async def status(request: Request, request_id: str) -> tuple[int, Any]:
            # DDI views.py `check_status` / `check_deletion_status`: no token is read; an unknown
            # id is a PENDING Celery task; completed is worded per endpoint.
            entry = state.requests.get(request_id)
            if entry is None:
                return 200, {"status": QUEUED}
            answer = {"status": completed if entry["status"] in COMPLETED_STATUSES else entry["status"]}
            if operation == "stage" and entry["status"] in COMPLETED_STATUSES and entry.get("target_path") is not None:
                answer["target_path"] = entry["target_path"]
            return 200, answer

        return status

    router.add_api_route("/info", info, methods=["GET"])
    router.add_api_route("/stage", stage, methods=["POST"])
    router.add_api_route("/stage", stage_other_method, methods=["GET", "PUT", "PATCH", "DELETE"])
    router.add_api_route("/stage/{request_id}", status_of("stage", "Transfer completed"), methods=["GET"])
    router.add_api_route("/delete", delete, methods=["DELETE"])
    router.add_api_route("/delete", delete_other_method, methods=["POST", "GET", "PUT", "PATCH"])
    router.add_api_route("/delete/{request_id}", status_of("delete", "Data deleted"), methods=["GET"])
    return router
