"""``airflow.decorators`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.decorators import dag, task

__all__ = ["dag", "task"]
