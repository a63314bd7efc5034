"""``airflow.providers.standard`` (lexis-prefect shim facade).

Airflow 3 moved the core operators and sensors into this provider; each module here serves what
the Airflow 2 path it came from serves (``_finder.serve_as``), so both grow together.
"""
