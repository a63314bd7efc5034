"""``airflow.models`` (lexis-prefect shim facade): the names of it the shim provides."""

_LAZY = {
    "DAG": ("lexis_prefect.airflow.dag", "DAG"),
    "BaseOperator": ("lexis_prefect.airflow.baseoperator", "BaseOperator"),
    "Param": ("lexis_prefect.airflow.params", "Param"),
}

__all__ = ["DAG", "BaseOperator", "Param"]


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    module, attribute = _LAZY[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value
