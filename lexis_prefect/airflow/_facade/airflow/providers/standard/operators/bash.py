"""``airflow.providers.standard.operators.bash`` (lexis-prefect shim facade): what ``airflow.operators.bash`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.operators.bash")
