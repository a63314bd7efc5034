"""``airflow.operators.weekday`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.weekday import BranchDayOfWeekOperator

__all__ = ["BranchDayOfWeekOperator"]
