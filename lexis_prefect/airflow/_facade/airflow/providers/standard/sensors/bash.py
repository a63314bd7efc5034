"""``airflow.providers.standard.sensors.bash`` (lexis-prefect shim facade): what ``airflow.sensors.bash`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.sensors.bash")
