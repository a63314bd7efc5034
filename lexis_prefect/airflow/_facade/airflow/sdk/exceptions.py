"""``airflow.sdk.exceptions`` (lexis-prefect shim facade): Airflow 3's home of ``airflow.exceptions``."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.exceptions")
