"""``airflow.models.connection`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.connections import Connection, sanitize_conn_id

__all__ = ["Connection", "sanitize_conn_id"]
