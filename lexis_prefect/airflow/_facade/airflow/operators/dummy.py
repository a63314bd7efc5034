"""``airflow.operators.dummy`` (lexis-prefect shim facade): deprecated in Airflow 2, warns on import."""

from lexis_prefect.airflow.operators import DummyOperator

__all__ = ["DummyOperator"]
