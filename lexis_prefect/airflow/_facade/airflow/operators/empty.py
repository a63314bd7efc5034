"""``airflow.operators.empty`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.operators import EmptyOperator

__all__ = ["EmptyOperator"]
