"""``airflow.decorators`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.decorators import dag, task, task_group
from lexis_prefect.airflow.setup_teardown import setup, teardown

__all__ = ["dag", "setup", "task", "task_group", "teardown"]
