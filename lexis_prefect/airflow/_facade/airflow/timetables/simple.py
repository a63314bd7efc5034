"""``airflow.timetables.simple`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.scheduling.timetables import (
    ContinuousTimetable,
    DatasetTriggeredTimetable,
    NullTimetable,
    OnceTimetable,
)

__all__ = ["ContinuousTimetable", "DatasetTriggeredTimetable", "NullTimetable", "OnceTimetable"]
