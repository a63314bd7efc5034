"""``airflow.providers.standard.sensors.filesystem`` (lexis-prefect shim facade): what ``airflow.sensors.filesystem`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.sensors.filesystem")
