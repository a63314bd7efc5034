"""``airflow.models.xcom_arg`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.xcom_arg import XComArg

__all__ = ["XComArg"]
