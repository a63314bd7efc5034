"""``airflow.utils.weekday`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.weekday import WeekDay

__all__ = ["WeekDay"]
