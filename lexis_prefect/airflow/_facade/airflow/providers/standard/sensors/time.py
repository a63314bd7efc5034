"""``airflow.providers.standard.sensors.time`` (lexis-prefect shim facade): what ``airflow.sensors.time_sensor`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.sensors.time_sensor")
