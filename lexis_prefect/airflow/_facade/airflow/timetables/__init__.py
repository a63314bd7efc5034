"""``airflow.timetables`` (lexis-prefect shim facade): ``base``, ``interval``, ``trigger``,
``simple``, ``events``, ``datasets``."""
