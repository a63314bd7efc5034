"""``airflow.utils.dates`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.dates import *  # noqa: F403 - the module's __all__, as Airflow's
from lexis_prefect.airflow.standard.dates import __all__  # noqa: F401
