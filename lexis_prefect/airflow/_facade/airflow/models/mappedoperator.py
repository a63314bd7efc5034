"""``airflow.models.mappedoperator`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.mapping.operator import MappedOperator, OperatorPartial

__all__ = ["MappedOperator", "OperatorPartial"]
