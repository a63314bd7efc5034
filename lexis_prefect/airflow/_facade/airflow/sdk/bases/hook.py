"""``airflow.sdk.bases.hook`` (lexis-prefect shim facade): what ``airflow.hooks.base`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.hooks.base")
