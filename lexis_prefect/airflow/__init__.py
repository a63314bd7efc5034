"""Airflow-compat shim: runs unchanged Airflow 2.10 DAG files on Prefect 3.

A DAG file keeps its imports (``from airflow import DAG``, ``from airflow.models.param import
Param``, ``from lexis.operators.aai import ...``): the import hook in
:mod:`lexis_prefect.airflow._finder`, installed at interpreter start by
``lexis_prefect_airflow.pth``, serves the top-level names ``airflow`` and ``lexis`` from
``_facade/`` unless a real installation of them wins (``LEXIS_PREFECT_AIRFLOW`` =
``fallback`` | ``force`` | ``off``). Coverage: ``docs/airflow-compat.md``.

This package is imported at every interpreter start (by the hook), so it imports nothing here:
the names below load on first use. The decorators ``dag`` and ``task`` are not among them
(``lexis_prefect.airflow.dag`` is a module); import them from ``lexis_prefect.airflow.decorators``.
"""

from lexis_prefect._lazy import lazy_getattr

# public name -> (submodule, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "DAG": ("dag", "DAG"),
    "BaseOperator": ("baseoperator", "BaseOperator"),
    "chain": ("baseoperator", "chain"),
    "cross_downstream": ("baseoperator", "cross_downstream"),
    "Param": ("params", "Param"),
    "ParamsDict": ("params", "ParamsDict"),
    "TriggerRule": ("trigger_rule", "TriggerRule"),
    "TaskGroup": ("task_group", "TaskGroup"),
    "EmptyOperator": ("operators", "EmptyOperator"),
    "PythonOperator": ("operators", "PythonOperator"),
    "BranchPythonOperator": ("operators", "BranchPythonOperator"),
    "ShortCircuitOperator": ("operators", "ShortCircuitOperator"),
    "BashOperator": ("operators", "BashOperator"),
    "get_current_context": ("operators", "get_current_context"),
    "BaseSensorOperator": ("sensors", "BaseSensorOperator"),
    "PythonSensor": ("sensors", "PythonSensor"),
    "PokeReturnValue": ("sensors", "PokeReturnValue"),
    # the import hook (see _finder)
    "install_import_hook": ("_finder", "install"),
    "uninstall_import_hook": ("_finder", "uninstall"),
    "import_hook_serves": ("_finder", "serves"),
    "describe_import": ("_finder", "describe"),
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(globals(), {name: (f"{__name__}.{m}", a) for name, (m, a) in _LAZY.items()})


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
