"""``airflow.utils.task_group`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.mapping.task_group import MappedTaskGroup
from lexis_prefect.airflow.task_group import TaskGroup

__all__ = ["MappedTaskGroup", "TaskGroup"]
