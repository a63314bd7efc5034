"""``airflow`` as the lexis-prefect Airflow shim serves it (``lexis_prefect.airflow._finder``).

Not Apache Airflow: a facade that mirrors the Airflow 2.10 module paths a DAG file imports and
re-exports the shim's objects (coverage: docs/airflow-compat.md). ``__version__`` is the
Airflow release whose API the shim follows, so a DAG file that checks it takes its 2.10
branch; ``__lexis_prefect_shim__`` tells the shim from a real Airflow.
"""

from lexis_prefect._lazy import lazy_getattr

__version__ = "2.10.5"
__lexis_prefect_shim__ = True

# Loaded on first use, as Airflow itself does: ``import airflow.exceptions`` stays light.
_LAZY = {"DAG": ("lexis_prefect.airflow.dag", "DAG")}

__all__ = ["DAG", "__version__"]


__getattr__ = lazy_getattr(globals(), _LAZY)
