"""``lexis.datatypes.hpc`` (lexis-prefect shim facade): ``SingleHPCJob`` is the job's JSON schema."""

from lexis_prefect.airflow.lexis import SingleHPCJob

__all__ = ["SingleHPCJob"]
