"""``airflow.providers.standard.sensors.external_task`` (lexis-prefect shim facade): what ``airflow.sensors.external_task`` serves."""

from lexis_prefect.airflow._finder import serve_as

serve_as(globals(), "airflow.sensors.external_task")
