"""``airflow.models.param`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.params import Param, ParamsDict

__all__ = ["Param", "ParamsDict"]
