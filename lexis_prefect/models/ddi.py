"""LEXIS DDI staging API payloads (lexis-api.md, section 2).

Field names are the wire names: the staging API is snake_case JSON, except the
DataCite-style metadata keys (`publicationYear`, `resourceType`, ...).
"""

from __future__ import annotations

import hashlib
import re
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "COMPLETED_STATUSES",
    "STAGE_OUT_MARKER_TYPE",
    "alternate_identifier_metadata",
    "alternate_identifier_query",
    "dataset_path",
    "within_zone",
    "zone_path",
    "FAILED_PREFIX",
    "IN_PROGRESS",
    "QUEUED",
    "DatasetHit",
    "DatasetLocation",
    "DatasetMetadata",
    "DeleteRequest",
    "StagingRequestId",
    "StagingState",
    "StagingStatus",
    "StageRequest",
]

# Status strings exactly as the staging API words them [V ddi-service-apis views.py].
QUEUED = "Task still in the queue, or task does not exist"
IN_PROGRESS = "In progress"
FAILED_PREFIX = "Task Failed, reason: "
COMPLETED_STATUSES = frozenset(
    {
        "Transfer completed",
        "Replication completed",
        "Data deleted",
        "Done",
        "Duplication completed",
        "PID assigned successfully",
        "cloud nfs export added",
        "cloud nfs export deleted",
    }
)
YesNo = Literal["yes", "no"]


class StagingState(str, Enum):
    """What a status string means to a caller that waits for it."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"


class DatasetMetadata(BaseModel):
    """DataCite-style metadata of a dataset created in DDI (required when the target is iRODS).

    Open to further DataCite keys (`extra="allow"`): the staging API validates
    them itself and their full list is not pinned down [I].
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    title: str = Field(min_length=1)
    creator: list[str] = Field(default_factory=list)
    contributor: list[str] = Field(default_factory=list)
    publisher: list[str] = Field(default_factory=list)
    owner: list[str] = Field(default_factory=list)
    resource_type: str | None = Field(default=None, alias="resourceType")
    publication_year: str | None = Field(default=None, alias="publicationYear")
    identifier: str | None = None


#: The identifier type of the marker a stage-out tags its new dataset with, in `AlternateIdentifier`:
#: a list of `[type, identifier]` pairs, type first (ddi-service-apis 9e96c41
#: irodsapi/demo/dataset.py `CollChecks`: `re.search(ait, pair[0]) and re.search(ai, pair[1])`).
#: The type is ours: it tells our markers apart from any alternate identifier a user gives the dataset.
STAGE_OUT_MARKER_TYPE = "lexis-prefect-stage-out"


def _marker(value: str, kind: str) -> tuple[str, str]:
    if not value or not kind:
        raise ValueError("the marker value and type must not be empty: an empty query could match any dataset")
    return kind, value


def alternate_identifier_metadata(value: str, kind: str = STAGE_OUT_MARKER_TYPE) -> dict[str, Any]:
    """The dataset metadata that tags a dataset with the marker `value`: `{"AlternateIdentifier": [[kind, value]]}`.

    Pairs are `[type, identifier]` (ddi-service-apis 9e96c41 irodsapi/demo/dataset.py `CollChecks`
    reads `pair[0]` as the type), and must be pairs of strings (staging/staging/verifyMetadata.py:
    "Metadata AlternateIdentifier should be an array of pairs of strings").
    """
    kind, value = _marker(value, kind)
    return {"AlternateIdentifier": [[kind, value]]}


def alternate_identifier_query(value: str, kind: str = STAGE_OUT_MARKER_TYPE) -> dict[str, str]:
    """The `POST /search/metadata` body that finds the datasets tagged by `alternate_identifier_metadata(value, kind)`.

    The dataset API takes every query value as a regular expression and matches it with `re.search`
    (ddi-service-apis 9e96c41 irodsapi/demo/dataset.py `CollChecks`); the two keys
    `AlternateIdentifier` (the identifier) and `AlternateIdentifierType` (the type) are matched
    together against one stored pair, case-sensitively. So both are escaped and anchored: only
    the exact marker matches. A list value would make the server's `re.search` raise (HTTP 500).
    """
    kind, value = _marker(value, kind)
    return {"AlternateIdentifier": "^" + re.escape(value) + "$", "AlternateIdentifierType": "^" + re.escape(kind) + "$"}


class DatasetLocation(BaseModel):
    """Where a dataset lives, as the dataset API names it: enough to address it again.

    `zone` is the iRODS zone name (e.g. `IT4ILexisZone`), not the staging system name;
    `project` is the project's short name; `access` is `public`, `user` or `project`
    (ddi-service-apis 9e96c41 irodsapi/demo/dataset.py `gatherDataC`, `findColsAll`).
    Unknown further keys are kept (`extra="allow"`).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    internal_id: str = Field(alias="internalID", min_length=1)
    access: str
    project: str | None = None
    zone: str


class DatasetHit(BaseModel):
    """One answer of `POST /search/metadata`: a dataset's location and its whole metadata."""

    model_config = ConfigDict(extra="allow", frozen=True)

    location: DatasetLocation
    metadata: dict[str, Any] = Field(default_factory=dict)


class StageRequest(BaseModel):
    """`POST /stage`: copy `source_path` of one system to `target_path` of another.

    Every field the staging API reads is sent (ddi-service-apis 9e96c41
    staging/staging/validate_input.py `validate_staging_input_body`: `source_system`,
    `target_system`, `source_path`, `target_path`, `encryption`, `compression` are all required).
    An iRODS path is relative to the zone (the system's `base_path` is prepended,
    staging/staging/staging_api.py). An HPC path is an ABSOLUTE path on the cluster: the
    server copies to or from `<ServerHostname>:/<path>` and uses neither the system's base path
    nor the HEAppE job directory (staging_api.py `nfs_to_local_hpc`, `local_hpc_to_nfs`); give
    it `<SharedBasepath>/<task id>/...` from HEAppE's file transfer method, with its leading `/`
    (`host:/` + `/abs` splits into `host` and `/abs`, staging/staging/cp_ssh.py; without it the
    path would be relative to the cluster account's home). `heappe_url` + `job_id` (+ `task_id`)
    name the HEAppE job whose file transfer key the server borrows.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_system: str = Field(min_length=1)
    source_path: str
    target_system: str = Field(min_length=1)
    # Required by validate_input.py (a missing key is a 400), even for a stage-in.
    target_path: str = Field(min_length=1)
    # validate_input.py: exactly "yes" or "no".
    encryption: YesNo = "no"
    compression: YesNo = "no"
    # validate_input.py: required (and checked by verifyMetadata.py) when the target is iRODS and
    # neither side is HPC; a stage-out (HPC -> iRODS) needs it too: staging_api.py `nfs_to_irods`
    # reads `input_data["metadata"]` inside the copy task.
    metadata: DatasetMetadata | None = None
    # validate_input.py: `task_id`, `job_id`, `heappe_url` all required when a side is HPC.
    heappe_url: str | None = None
    job_id: int | None = Field(default=None, gt=0)
    task_id: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _hpc_side_names_its_job(self) -> StageRequest:
        named = [self.heappe_url is not None, self.job_id is not None, self.task_id is not None]
        if any(named) and not all(named):
            raise ValueError("heappe_url, job_id and task_id go together: the staging API requires all three for an HPC side")
        return self

    def payload(self) -> dict[str, object]:
        """The JSON body: unset optional fields are left out, metadata by its DataCite names."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class DeleteRequest(BaseModel):
    """`DELETE /delete` (JSON body): remove a path from a system.

    `target_path` is relative to the system's base path, like a stage path; on iRODS the server
    refuses paths of 4 or fewer `/`-parts once the base path is prepended, i.e. a dataset is
    `project/proj<md5>/<id>` (ddi-service-apis 9e96c41 staging/staging/staging_api.py `delete_irods`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_system: str = Field(min_length=1)
    target_path: str = Field(min_length=1)


class StagingRequestId(BaseModel):
    """The `201 {"request_id": ...}` answer of every submit endpoint."""

    model_config = ConfigDict(extra="allow", frozen=True)

    request_id: str = Field(min_length=1)


class StagingStatus(BaseModel):
    """`GET /<operation>/<request_id>`: a status string, plus where the data went once completed."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    status: str
    target_path: str | None = None
    pid: str | None = Field(default=None, alias="PID")

    @property
    def state(self) -> StagingState:
        if self.status == QUEUED:
            return StagingState.PENDING
        if self.status == IN_PROGRESS:
            return StagingState.RUNNING
        if self.status in COMPLETED_STATUSES:
            return StagingState.COMPLETED
        if self.status.startswith(FAILED_PREFIX):
            return StagingState.FAILED
        return StagingState.UNKNOWN

    @property
    def failure_reason(self) -> str | None:
        """The text after `Task Failed, reason: `, if the request failed."""
        return self.status.removeprefix(FAILED_PREFIX) if self.state is StagingState.FAILED else None


def zone_path(access: Literal["user", "project", "public"], project: str, username: str | None = None) -> str:
    """The DDI collection (relative to the zone) that holds a project's datasets of one access level.

    `project/proj<md5(project)>`, `public/proj<md5(project)>`, `user/proj<md5(project)>/<username>`
    (ddi-service-apis 9e96c41 irodsapi/demo/utils.py `getIrodsPathNoZone`, `projectHash`;
    yorc-ddi-plugin job/monitoring_jobs.go `projectPathPattern`).
    """
    digest = f"proj{hashlib.md5(project.encode()).hexdigest()}"
    if access == "user":
        if not username:
            raise ValueError("user-access datasets live under the user's name: pass username")
        return f"user/{digest}/{username}"
    return f"{access}/{digest}"


def within_zone(absolute: str) -> str:
    """`/<zone>/<path>` (how a stage-out answers) as the zone-relative `<path>` that `/delete` takes.

    The staging API prefixes the system's base path `/<zone>/` itself (ddi-service-apis 9e96c41
    staging/staging/staging_api.py `delete_irods`).
    """
    parts = [part for part in absolute.split("/") if part]
    if not absolute.startswith("/") or len(parts) < 2:
        raise ValueError(f"not an absolute DDI path /<zone>/<path>: {absolute!r}")
    return "/".join(parts[1:])


def dataset_path(
    dataset_id: str,
    project: str,
    path: str = "/",
    access: Literal["user", "project", "public"] = "project",
    username: str | None = None,
) -> str:
    """The staging-API path of `path` inside dataset `dataset_id`, e.g. `project/proj<md5>/<id>/data`."""
    inner = "/".join(part for part in path.split("/") if part not in ("", "."))
    base = f"{zone_path(access, project, username)}/{dataset_id}"
    return f"{base}/{inner}" if inner else base
