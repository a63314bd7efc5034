"""``airflow.timetables.trigger`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.scheduling.cron import CronTriggerTimetable

__all__ = ["CronTriggerTimetable"]
