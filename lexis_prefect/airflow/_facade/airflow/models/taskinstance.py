"""``airflow.models.taskinstance`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.execution.taskinstance import TaskInstance

__all__ = ["TaskInstance"]
