"""``airflow.providers`` (lexis-prefect shim facade): only ``airflow.providers.standard`` (docs/airflow-compat.md)."""
