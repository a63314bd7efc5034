"""``airflow.providers.standard.operators`` (lexis-prefect shim facade)."""
