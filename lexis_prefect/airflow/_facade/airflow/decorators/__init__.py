"""``airflow.decorators`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.decorators import dag, task, task_group

__all__ = ["dag", "task", "task_group"]
