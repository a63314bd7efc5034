"""``airflow.models.variable`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.variables import Variable

__all__ = ["Variable"]
