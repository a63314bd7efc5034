"""``airflow.timetables.interval`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.scheduling.cron import CronDataIntervalTimetable, DeltaDataIntervalTimetable

__all__ = ["CronDataIntervalTimetable", "DeltaDataIntervalTimetable"]
