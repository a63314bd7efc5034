"""``airflow.sdk.bases.skipmixin`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.operators import SkipMixin

__all__ = ["SkipMixin"]
