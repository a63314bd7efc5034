"""``airflow.utils.helpers`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.baseoperator import chain, cross_downstream

__all__ = ["chain", "cross_downstream"]
