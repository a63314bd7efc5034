"""``airflow.models.dagparam`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.decorators import DagParam

__all__ = ["DagParam"]
