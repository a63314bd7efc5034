"""``airflow.hooks`` (lexis-prefect shim facade): only the submodules listed in docs/airflow-compat.md."""
