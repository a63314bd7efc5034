"""``airflow.sensors.external_task`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.external_task import ExternalTaskMarker, ExternalTaskSensor

__all__ = ["ExternalTaskMarker", "ExternalTaskSensor"]
