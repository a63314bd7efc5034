"""``airflow.sdk.timezone`` (lexis-prefect shim facade): what ``airflow.utils.timezone`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.utils.timezone")
