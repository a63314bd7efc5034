"""Pydantic models: the user's `SingleHPCJob`, and the payloads of the AAI, DDI staging and HEAppE APIs.

The same models serve the clients and the sandbox, so neither can drift from
the other; the respx tests pin the wire JSON of `lexis-api.md` independently.
"""

from lexis_prefect.models.aai import TokenSet
from lexis_prefect.models.ddi import DatasetHit, DatasetLocation, DatasetMetadata, StageRequest, StagingState, StagingStatus
from lexis_prefect.models.heappe import (
    ClusterInfo,
    FileType,
    JobFileContent,
    JobSpecification,
    JobState,
    SubmittedJobInfo,
    SubmittedTaskInfo,
    TaskFileOffset,
    TaskSpecification,
    TaskState,
)
from lexis_prefect.models.job import (
    DataInput,
    DataOutput,
    DataSource,
    DataTarget,
    HPCTask,
    JobRequirements,
    Location,
    OutputInfo,
    SingleHPCJob,
    SourceInfo,
)

__all__ = [
    "ClusterInfo",
    "DataInput",
    "DataOutput",
    "DataSource",
    "DataTarget",
    "DatasetHit",
    "DatasetLocation",
    "DatasetMetadata",
    "FileType",
    "HPCTask",
    "JobFileContent",
    "JobRequirements",
    "JobSpecification",
    "JobState",
    "Location",
    "OutputInfo",
    "SingleHPCJob",
    "SourceInfo",
    "StageRequest",
    "StagingState",
    "StagingStatus",
    "SubmittedJobInfo",
    "SubmittedTaskInfo",
    "TaskFileOffset",
    "TaskSpecification",
    "TaskState",
    "TokenSet",
]
