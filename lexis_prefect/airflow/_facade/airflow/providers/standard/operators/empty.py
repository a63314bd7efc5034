"""``airflow.providers.standard.operators.empty`` (lexis-prefect shim facade): what ``airflow.operators.empty`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.operators.empty")
