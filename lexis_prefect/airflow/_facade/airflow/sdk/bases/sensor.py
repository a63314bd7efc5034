"""``airflow.sdk.bases.sensor`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.sensors import BaseSensorOperator, PokeReturnValue

__all__ = ["BaseSensorOperator", "PokeReturnValue"]
