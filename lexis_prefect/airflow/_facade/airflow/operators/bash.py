"""``airflow.operators.bash`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.operators import BashOperator

__all__ = ["BashOperator"]
