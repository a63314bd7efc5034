"""``airflow.sensors.python`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.sensors import PythonSensor

__all__ = ["PythonSensor"]
