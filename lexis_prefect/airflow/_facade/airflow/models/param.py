"""``airflow.models.param`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.decorators import DagParam
from lexis_prefect.airflow.params import Param, ParamsDict

__all__ = ["DagParam", "Param", "ParamsDict"]
