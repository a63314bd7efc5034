"""``airflow.providers.standard.operators.latest_only`` (lexis-prefect shim facade): what ``airflow.operators.latest_only`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.operators.latest_only")
