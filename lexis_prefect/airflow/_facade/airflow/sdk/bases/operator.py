"""``airflow.sdk.bases.operator`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.baseoperator import BaseOperator, chain, cross_downstream

__all__ = ["BaseOperator", "chain", "cross_downstream"]
