"""``airflow.sensors.weekday`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.weekday import DayOfWeekSensor

__all__ = ["DayOfWeekSensor"]
