"""``airflow.operators.latest_only`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.latest_only import LatestOnlyOperator

__all__ = ["LatestOnlyOperator"]
