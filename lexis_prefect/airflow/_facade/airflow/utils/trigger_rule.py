"""``airflow.utils.trigger_rule`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.trigger_rule import TriggerRule

__all__ = ["TriggerRule"]
