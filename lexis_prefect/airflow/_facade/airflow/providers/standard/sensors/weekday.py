"""``airflow.providers.standard.sensors.weekday`` (lexis-prefect shim facade): what ``airflow.sensors.weekday`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.sensors.weekday")
