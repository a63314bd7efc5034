"""``lexis`` (the LEXIS Airflow operators' package) as the lexis-prefect Airflow shim serves it.

``lexis.operators.aai``, ``lexis.operators.hpc``, ``lexis.operators.scheduler.hpc_job`` and
``lexis.datatypes.hpc`` re-export :mod:`lexis_prefect.airflow.lexis`; a module it lacks fails with
a ModuleNotFoundError that says so (coverage: docs/airflow-compat.md).
"""

__lexis_prefect_shim__ = True
