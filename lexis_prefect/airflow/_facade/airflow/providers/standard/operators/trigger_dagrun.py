"""``airflow.providers.standard.operators.trigger_dagrun`` (lexis-prefect shim facade): what ``airflow.operators.trigger_dagrun`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.operators.trigger_dagrun")
