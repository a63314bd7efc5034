"""``airflow.hooks.base`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.connections import BaseHook

__all__ = ["BaseHook"]
