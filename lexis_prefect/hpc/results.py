"""What the job step hands around and returns: where a HEAppE job is, how it ended, the step's result."""

from __future__ import annotations
from pydantic import BaseModel, ConfigDict, Field
from lexis_prefect.models.heappe import JobState


class HpcJobRef(BaseModel):
    """Where a created HEAppE job is: enough to find it again, and nothing secret."""

    model_config = ConfigDict(frozen=True)

    location: str
    heappe_url: str
    job_id: int
    task_ids: list[int]
    name: str


class JobOutcome(BaseModel):
    """How the HEAppE job ended, as `wait_for_job` saw it."""

    state: JobState
    reason: str | None = None
    stderr_tail: str = ""
    running_seconds: float = 0.0
    suspended: bool = Field(default=False, description="The job runs on and the run suspends until it ends.")


class HpcJobResult(BaseModel):
    """What `build_hpc_job_step` returns."""

    group_id: str
    location: str
    job_id: int
    job_name: str
    state: str = Field(description="HEAppE job state name, e.g. 'Finished'.")
    output_datasets: list[str] = Field(
        description="Absolute iRODS paths of the new output datasets (/<zone>/project/proj<md5>/<dataset id>)."
    )
    output_dataset_ids: list[str]
    timings_seconds: dict[str, float] = Field(description="stage_in, queued, running, stage_out, total.")
