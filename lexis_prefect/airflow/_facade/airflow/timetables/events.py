"""``airflow.timetables.events`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.scheduling.timetables import EventsTimetable

__all__ = ["EventsTimetable"]
