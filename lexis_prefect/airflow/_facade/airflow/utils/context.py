"""``airflow.utils.context`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.decorators import KNOWN_CONTEXT_KEYS
from lexis_prefect.airflow.majors import Context
from lexis_prefect.airflow.operators import get_current_context

__all__ = ["KNOWN_CONTEXT_KEYS", "Context", "get_current_context"]
