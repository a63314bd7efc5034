"""``airflow.exceptions`` (lexis-prefect shim facade): every exception and warning class of
:mod:`lexis_prefect.airflow.exceptions`, so ``except AirflowSkipException`` in a DAG file
catches what the shim raises."""

from lexis_prefect.airflow import exceptions as _shim

__all__ = sorted(
    name
    for name, value in vars(_shim).items()
    if not name.startswith("_") and isinstance(value, type) and issubclass(value, BaseException)
)
globals().update({name: getattr(_shim, name) for name in __all__})
del _shim
