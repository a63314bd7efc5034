"""Airflow 2.10's stable REST API (v1) over a Prefect server: `lexis-prefect api`.

An outer layer, like the CLI: nothing in lexis_prefect's core imports it. Modules: `app` (the
FastAPI app, /health, /version), `dags`, `dag_runs`, `task_instances`, `conf` (conf against the
DAG's params), `secrets` (the run's token as a Secret block), `auth` (LEXIS AAI bearer tokens),
`states` (Prefect -> Airflow), `paging`, `errors` (Airflow's problem bodies), `context`.
"""

from lexis_prefect.api.app import create_app, serve
from lexis_prefect.api.context import ApiConfig

__all__ = ["ApiConfig", "create_app", "serve"]
