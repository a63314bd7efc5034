"""``airflow.operators.python`` (lexis-prefect shim facade)."""

from lexis_prefect._lazy import lazy_getattr
from lexis_prefect.airflow.operators import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
    get_current_context,
)

_VIRTUALENV = "lexis_prefect.airflow.standard.virtualenv"
# loaded on first use: the virtualenv operators bring the TaskFlow decorators with them
_LAZY = {
    name: (_VIRTUALENV, name)
    for name in (
        "BranchExternalPythonOperator",
        "BranchPythonVirtualenvOperator",
        "ExternalPythonOperator",
        "PythonVirtualenvOperator",
    )
}

__all__ = [
    "BranchPythonOperator",
    "PythonOperator",
    "ShortCircuitOperator",
    "get_current_context",
    *_LAZY,
]

__getattr__ = lazy_getattr(globals(), _LAZY)
