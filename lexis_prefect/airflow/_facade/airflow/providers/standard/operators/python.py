"""``airflow.providers.standard.operators.python`` (lexis-prefect shim facade): what ``airflow.operators.python`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.operators.python")
