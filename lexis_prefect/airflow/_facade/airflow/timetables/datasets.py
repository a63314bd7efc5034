"""``airflow.timetables.datasets`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.scheduling.timetables import DatasetOrTimeSchedule

__all__ = ["DatasetOrTimeSchedule"]
