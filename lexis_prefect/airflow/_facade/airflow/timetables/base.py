"""``airflow.timetables.base`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.scheduling.timetables import DagRunInfo, DataInterval, TimeRestriction, Timetable

__all__ = ["DagRunInfo", "DataInterval", "TimeRestriction", "Timetable"]
