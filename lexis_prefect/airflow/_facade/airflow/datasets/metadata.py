"""``airflow.datasets.metadata`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.scheduling.events import Metadata

__all__ = ["Metadata"]
