"""``airflow.sensors.time_sensor`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.time_sensors import TimeSensor, TimeSensorAsync

__all__ = ["TimeSensor", "TimeSensorAsync"]
