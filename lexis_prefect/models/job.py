"""`SingleHPCJob`: the job a LEXIS user writes (the seed's `job1` parameter).

The model is the single source of truth: the JSON schema that Airflow `Param`s,
the Prefect UI and `lexis-prefect schema` use is generated from it.

Decisions worth knowing:
- Unknown keys are **forbidden** at every level. A typo such as `walltime` for
  `walltime_limit` would otherwise be dropped silently and the job would run with
  a default the user never chose; for a job that holds a node for days that is
  the worse failure.
- Numbers and strings are **strict**: `"3600"` is not a walltime. This keeps the
  pydantic model and the exported JSON schema in agreement, so a value that
  passes the Prefect/Airflow form also passes here, and the other way round.
- Paths (`target_path`, `source_path`, `info.path`) are relative to the job's
  directory (or the dataset's root); a leading `/` means that root. A `..`
  segment is refused anywhere, which is what keeps a path from escaping it.
  On the cluster, the job's directory is its first task's working directory,
  `<SharedBasepath>/<task id>`, as the LEXIS Yorc DDI plugin maps it
  (docs/lexis-contract.md, DDI staging API).
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from lexis_prefect.exceptions import JobValidationError
from lexis_prefect.models.schema import inline_refs

__all__ = [
    "DataInput",
    "DataOutput",
    "DataSource",
    "DataTarget",
    "HPCTask",
    "JobRequirements",
    "Location",
    "OutputInfo",
    "SingleHPCJob",
    "SEED_JOB",
    "SourceInfo",
    "job_relative",
]

#: The seed DAG's default value of its `job1` parameter (shared/seed/lexis_hpc_simple.py),
#: verbatim: it must keep validating unchanged.
SEED_JOB: dict[str, Any] = {
    "requirements": {
        "job_name": "My HPC Job",
        "project_shortname": "myproject",
        "policy": "preferred",
        "locations": [{"location_name": "Karolina", "location_resource": "your-resource-name"}],
        "tasks": [
            {
                "command_template_name": "TestTemplate",
                "node_type_name": "qcpu_exp",
                "walltime_limit": 3600,
                "max_cores": 128,
                "template_parameter_values": {"input_param": "value"},
            }
        ],
    },
    "data_inputs": [
        {
            "source": {
                "location": "your-location",
                "resource": "your-resource",
                "info": {"dataset_id": "your-dataset-uuid", "path": "/"},
            },
            "target_path": "/",
        }
    ],
    "data_outputs": [
        {
            "target": {
                "location": "your-location",
                "resource": "your-resource",
                "info": {"access": "project", "path": "/", "title": "My Workflow Output", "dataset_type": "dataset"},
            },
            "source_path": "/",
        }
    ],
}

# JSON-schema twin of `_no_parent_segments`: no `..` path segment, no NUL. ECMA and Python
# regexes both accept it, so the Prefect UI, the server and jsonschema (the shim) agree.
_NO_PARENT_PATTERN = r"^(?!(.*/)?\.\.(/.*)?$)[^\u0000]*$"


def _no_parent_segments(path: str) -> str:
    if "\x00" in path:
        raise ValueError("path must not contain a NUL character")
    if ".." in path.split("/"):
        raise ValueError(f"path {path!r} has a '..' segment; paths must stay inside the job directory")
    return path


def job_relative(path: str) -> str:
    """The path as a normalised relative path, `.` for the root: `'/a//b/'` -> `'a/b'`."""
    return posixpath.normpath("/" + path).lstrip("/") or "."


Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
RelativePath = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=4096,
        json_schema_extra={"pattern": _NO_PARENT_PATTERN},
        description="Path relative to the root it refers to; '/' is that root. No '..' segments.",
    ),
    AfterValidator(_no_parent_segments),
]
PositiveInt = Annotated[StrictInt, Field(gt=0)]
TemplateValue = StrictStr | StrictBool | StrictInt | StrictFloat


class _JobModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_JobModel):
    """One place where the job may run."""

    location_name: Name = Field(description="HPC site or cluster, e.g. 'Karolina'.")
    location_resource: Name = Field(description="Computing resource at that location.")


class HPCTask(_JobModel):
    """One task of the job: which command template runs on which node type."""

    command_template_name: Name = Field(description="HEAppE command template, e.g. 'TestTemplate'.")
    node_type_name: Name = Field(description="HEAppE node type (queue), e.g. 'qcpu_exp'.")
    walltime_limit: PositiveInt = Field(description="Wall-time limit in seconds.")
    max_cores: PositiveInt = Field(description="Number of cores to allocate.")
    template_parameter_values: dict[Annotated[str, Field(min_length=1)], TemplateValue] = Field(
        default_factory=dict,
        json_schema_extra={"default": {}},  # as data_inputs: not nullable on the server
        description="Values of the command template's parameters, by parameter identifier.",
    )


class JobRequirements(_JobModel):
    """What to run, for which project, and where."""

    job_name: Name = Field(description="Name of the HPC job.")
    project_shortname: Name = Field(description="LEXIS project the computing time is charged to.")
    policy: Literal["preferred", "failover"] = Field(
        default="preferred",
        description=(
            "preferred: run on the first location, fail if it is unavailable; "
            "failover: try the locations in order until one accepts the job."
        ),
    )
    locations: list[Location] = Field(min_length=1, description="Candidate locations, in order of preference.")
    tasks: list[HPCTask] = Field(min_length=1, description="The job's tasks.")


class SourceInfo(_JobModel):
    """Which DDI dataset, and which path inside it, to stage in."""

    dataset_id: Name = Field(description="DDI dataset id (internalID).")
    path: RelativePath = Field(default="/", description="Path inside the dataset; '/' is the whole dataset.")


class _DDIPlace(_JobModel):
    location: Name = Field(description="DDI location, e.g. 'iRODS IT4I'.")
    resource: Name = Field(description="DDI storage resource at that location.")


class DataSource(_DDIPlace):
    """Where an input dataset lives."""

    info: SourceInfo


class DataInput(_JobModel):
    """A dataset to stage from DDI into the job's directory before the job runs."""

    source: DataSource
    target_path: RelativePath = Field(description="Where to place the data, relative to the job directory.")


class OutputInfo(_JobModel):
    """How the new output dataset is stored and described."""

    # [I] DDI datasets live under user/, project/ or public/ zones; these three
    # access levels are inferred from the LEXIS DDI docs, not from a schema.
    access: Literal["user", "project", "public"] = Field(description="Who can read the new dataset.")
    path: RelativePath = Field(default="/", description="Path inside the new dataset.")
    title: Name = Field(description="Title of the new dataset.")
    dataset_type: Name = Field(default="dataset", description="DataCite resource type of the dataset.")


class DataTarget(_DDIPlace):
    """Where an output dataset goes."""

    info: OutputInfo


class DataOutput(_JobModel):
    """A path of the job's directory to stage out into a new DDI dataset after the job ends."""

    source_path: RelativePath = Field(description="Path of the results, relative to the job directory.")
    target: DataTarget


class SingleHPCJob(_JobModel):
    """One LEXIS HPC job with the datasets it reads and writes."""

    # `model_validate` raises JobValidationError (a pydantic ValidationError)
    # naming each bad field as `requirements.tasks[0].walltime_limit: ...`;
    # plain `SingleHPCJob(**data)` raises pydantic's own error.
    model_config = ConfigDict(title="SingleHPCJob")

    requirements: JobRequirements
    # The schema states the defaults: without one, Prefect's server makes an optional field
    # nullable and would accept `null`, which only the model (on the worker) then refuses.
    data_inputs: list[DataInput] = Field(
        default_factory=list, json_schema_extra={"default": []}, description="Datasets to stage in."
    )
    data_outputs: list[DataOutput] = Field(
        default_factory=list, json_schema_extra={"default": []}, description="Results to stage out."
    )

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> SingleHPCJob:  # type: ignore[override]
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise JobValidationError.from_validation_error(exc) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> SingleHPCJob:  # type: ignore[override]
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            raise JobValidationError.from_validation_error(exc) from None

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The JSON schema with every `$ref` inlined.

        Self-contained on purpose: it is embedded as one property of larger
        schemas (an Airflow `Param`, a Prefect flow's parameters), where a
        `#/$defs/...` reference would point at the wrong document root.
        """
        return inline_refs(super().model_json_schema(*args, **kwargs))
