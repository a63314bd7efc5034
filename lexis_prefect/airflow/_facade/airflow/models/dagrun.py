"""``airflow.models.dagrun`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.execution.taskinstance import DagRun

__all__ = ["DagRun"]
