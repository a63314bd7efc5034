"""``airflow.sdk.bases`` (lexis-prefect shim facade)."""
