"""``airflow.providers.standard.operators.branch`` (lexis-prefect shim facade): what ``airflow.operators.branch`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.operators.branch")
