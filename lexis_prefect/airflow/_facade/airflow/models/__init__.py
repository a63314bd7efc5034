"""``airflow.models`` (lexis-prefect shim facade): the names of it the shim provides."""

from lexis_prefect._lazy import lazy_getattr

_LAZY = {
    "DAG": ("lexis_prefect.airflow.dag", "DAG"),
    "BaseOperator": ("lexis_prefect.airflow.baseoperator", "BaseOperator"),
    "Param": ("lexis_prefect.airflow.params", "Param"),
    "XComArg": ("lexis_prefect.airflow.xcom_arg", "XComArg"),
    "TaskInstance": ("lexis_prefect.airflow.execution.taskinstance", "TaskInstance"),
    "DagRun": ("lexis_prefect.airflow.execution.taskinstance", "DagRun"),
    "MappedOperator": ("lexis_prefect.airflow.mapping.operator", "MappedOperator"),
    "Variable": ("lexis_prefect.airflow.standard.variables", "Variable"),
    "Connection": ("lexis_prefect.airflow.standard.connections", "Connection"),
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(globals(), _LAZY)
