"""``airflow.providers.standard.sensors.date_time`` (lexis-prefect shim facade): what ``airflow.sensors.date_time`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.sensors.date_time")
