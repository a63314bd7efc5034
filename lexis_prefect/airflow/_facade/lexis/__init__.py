"""``lexis`` (the LEXIS Airflow operators' package) as the lexis-prefect Airflow shim serves it.

Only the package skeleton exists so far; a module it lacks (``lexis.operators.aai``...) fails
with a ModuleNotFoundError that says so (coverage: docs/airflow-compat.md).
"""

__lexis_prefect_shim__ = True
