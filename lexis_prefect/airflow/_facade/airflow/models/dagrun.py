"""``airflow.models.dagrun`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.taskinstance import DagRun

__all__ = ["DagRun"]
