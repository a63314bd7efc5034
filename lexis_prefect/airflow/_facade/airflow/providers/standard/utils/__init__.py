"""``airflow.providers.standard.utils`` (lexis-prefect shim facade)."""
