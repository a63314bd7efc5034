"""``airflow.providers.standard.utils.weekday`` (lexis-prefect shim facade): what ``airflow.utils.weekday`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.utils.weekday")
