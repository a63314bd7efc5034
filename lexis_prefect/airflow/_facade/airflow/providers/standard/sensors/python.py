"""``airflow.providers.standard.sensors.python`` (lexis-prefect shim facade): what ``airflow.sensors.python`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.sensors.python")
