"""``lexis.operators.hpc`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.lexis import HpcJobStepOperator, build_hpc_job_step

__all__ = ["HpcJobStepOperator", "build_hpc_job_step"]
