"""``lexis.operators.aai`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.lexis import LexisAAIOperator, LexisAAIStopKeeperOperator, LexisAAITokenKeeperSensor

__all__ = ["LexisAAIOperator", "LexisAAIStopKeeperOperator", "LexisAAITokenKeeperSensor"]
