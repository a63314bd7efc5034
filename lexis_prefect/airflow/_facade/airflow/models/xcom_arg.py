"""``airflow.models.xcom_arg`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.mapping.xcom_args import ConcatXComArg, MapXComArg, ZipXComArg
from lexis_prefect.airflow.xcom_arg import XComArg

PlainXComArg = XComArg  # Airflow's class for a plain task output; the shim has one class for it

__all__ = ["ConcatXComArg", "MapXComArg", "PlainXComArg", "XComArg", "ZipXComArg"]
