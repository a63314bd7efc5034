"""``airflow.sensors.time_delta`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.time_sensors import TimeDeltaSensor, TimeDeltaSensorAsync

__all__ = ["TimeDeltaSensor", "TimeDeltaSensorAsync"]
