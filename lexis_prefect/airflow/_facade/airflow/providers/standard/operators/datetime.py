"""``airflow.providers.standard.operators.datetime`` (lexis-prefect shim facade): what ``airflow.operators.datetime`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.operators.datetime")
