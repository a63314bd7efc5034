"""``airflow.operators.python`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.operators import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
    get_current_context,
)

__all__ = ["BranchPythonOperator", "PythonOperator", "ShortCircuitOperator", "get_current_context"]
