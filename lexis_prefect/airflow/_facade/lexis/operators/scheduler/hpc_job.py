"""``lexis.operators.scheduler.hpc_job`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.lexis import FinishOperator

__all__ = ["FinishOperator"]
