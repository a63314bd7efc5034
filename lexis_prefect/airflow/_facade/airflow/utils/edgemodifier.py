"""``airflow.utils.edgemodifier`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.edgemodifier import EdgeModifier, Label

__all__ = ["EdgeModifier", "Label"]
