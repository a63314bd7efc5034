"""``airflow.sensors.date_time`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.time_sensors import DateTimeSensor, DateTimeSensorAsync

__all__ = ["DateTimeSensor", "DateTimeSensorAsync"]
