"""``airflow.providers.standard.operators.weekday`` (lexis-prefect shim facade): what ``airflow.operators.weekday`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.operators.weekday")
