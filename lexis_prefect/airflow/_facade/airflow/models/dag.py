"""``airflow.models.dag`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.dag import DAG

__all__ = ["DAG"]
