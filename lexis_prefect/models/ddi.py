"""LEXIS DDI staging API payloads (lexis-api.md, section 2).

Field names are the wire names: the staging API is snake_case JSON, except the
DataCite-style metadata keys (`publicationYear`, `resourceType`, ...).
"""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "COMPLETED_STATUSES",
    "STAGE_OUT_MARKER_TYPE",
    "alternate_identifier_query",
    "dataset_path",
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


#: The identifier type of the marker a stage-out tags its new dataset with, in
#: `AlternateIdentifier` ([V] field name, a list of `[value, type]` pairs). The type is ours:
#: it tells our markers apart from any alternate identifier a user gives the dataset.
STAGE_OUT_MARKER_TYPE = "lexis-prefect-stage-out"


def alternate_identifier_query(value: str, kind: str = STAGE_OUT_MARKER_TYPE) -> dict[str, Any]:
    """The `POST /search/metadata` body that looks up the dataset tagged with the marker `value`.

    It is also the metadata to tag with: `{"AlternateIdentifier": [[value, kind]]}`. How the real
    search compares a query to a dataset's metadata is not known [I]; the sandbox matches a query
    key only when it equals the dataset's value for that key, so the marker should be the only
    alternate identifier of a stage-out (or the query should carry the dataset's whole list).
    """
    if not value:
        raise ValueError("the marker value must not be empty: an empty query could match any dataset")
    return {"AlternateIdentifier": [[value, kind]]}


class DatasetLocation(BaseModel):
    """Where a dataset lives, as the dataset API names it: enough to address it again.

    `zone` is the iRODS zone, i.e. the staging system name [I]; `project` may be missing
    for user-access datasets [I]. Unknown further keys are kept (`extra="allow"`).
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

    When one side is an HPC cluster, its path is relative to the HEAppE job
    directory and `heappe_url` + `job_id` (+ `task_id`) say which job.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_system: str = Field(min_length=1)
    source_path: str
    target_system: str = Field(min_length=1)
    target_path: str | None = Field(default=None, description="Omitted when empty, as the real clients do.")
    encryption: YesNo = "no"
    compression: YesNo = "no"
    metadata: DatasetMetadata | None = None
    heappe_url: str | None = None
    job_id: int | None = Field(default=None, gt=0)
    task_id: int | None = Field(default=None, ge=0, description="Omitted when 0 or None, as the real clients do.")

    @model_validator(mode="after")
    def _hpc_side_names_its_job(self) -> StageRequest:
        if (self.job_id is None) != (self.heappe_url is None):
            raise ValueError("heappe_url and job_id go together: both name the HEAppE job of the HPC side")
        if self.task_id and self.job_id is None:
            raise ValueError("task_id needs job_id and heappe_url")
        return self

    def payload(self) -> dict[str, object]:
        """The JSON body: unset optional fields are left out, metadata by its DataCite names."""
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not self.target_path:
            body.pop("target_path", None)
        if not self.task_id:
            body.pop("task_id", None)
        return body


class DeleteRequest(BaseModel):
    """`POST /delete`: remove a path from a system."""

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
    """The DDI directory that holds a project's (or user's) datasets of one access level.

    [V] project datasets live under `project/proj<md5(project)>` (yorc-ddi-plugin);
    [I] `public/proj<md5>` and `user/<username>` follow the same pattern by analogy.
    """
    if access == "user":
        if not username:
            raise ValueError("user-access datasets live under the user's name: pass username")
        return f"user/{username}"
    return f"{access}/proj{hashlib.md5(project.encode()).hexdigest()}"


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
