"""``airflow.operators.datetime`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.datetime_branch import BranchDateTimeOperator, target_times_as_dates

__all__ = ["BranchDateTimeOperator", "target_times_as_dates"]
