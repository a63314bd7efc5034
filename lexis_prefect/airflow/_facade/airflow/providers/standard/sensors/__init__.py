"""``airflow.providers.standard.sensors`` (lexis-prefect shim facade)."""
