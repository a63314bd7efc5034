"""The FastAPI app of Airflow 2.10's stable REST API v1 over a Prefect server (`lexis-prefect api`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from prefect.client.orchestration import get_client

from lexis_prefect.api import dag_runs, dags, task_instances
from lexis_prefect.api.context import ApiConfig, ApiContext
from lexis_prefect.api.errors import install_error_handlers

__all__ = ["AIRFLOW_API_VERSION", "create_app", "serve"]

#: The Airflow release whose REST API (v1) is served.
AIRFLOW_API_VERSION = "2.10.5"
PREFIX = "/api/v1"


def _meta_router() -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    async def health() -> dict[str, Any]:
        """Airflow's HealthInfo. Unauthenticated, as in Airflow. The Prefect server stands for the
        metadatabase and the scheduler (it schedules the deployments' runs)."""
        async with get_client() as client:
            failure = await client.api_healthcheck()
        status = "healthy" if failure is None else "unhealthy"
        return {
            "metadatabase": {"status": status},
            "scheduler": {"status": status, "latest_scheduler_heartbeat": None},
            "triggerer": {"status": None, "latest_triggerer_heartbeat": None},
            "dag_processor": {"status": None, "latest_dag_processor_heartbeat": None},
        }

    @router.get("/version")
    async def version() -> dict[str, Any]:
        """The Airflow API version served; `git_version` says what serves it."""
        import prefect

        from lexis_prefect import __version__

        return {"version": AIRFLOW_API_VERSION, "git_version": f"lexis-prefect {__version__} on Prefect {prefect.__version__}"}

    return router


def create_app(config: ApiConfig | None = None) -> FastAPI:
    app = FastAPI(
        title="Airflow API (Stable) on lexis-prefect",
        version=AIRFLOW_API_VERSION,
        description="Airflow 2.10's REST API v1 over Prefect deployments, for LEXIS's own clients (docs/airflow-rest-api.md).",
        docs_url=f"{PREFIX}/ui",
        openapi_url=f"{PREFIX}/openapi.json",
        redoc_url=None,
    )
    app.state.lexis = ApiContext(config or ApiConfig())
    install_error_handlers(app)
    for router in (_meta_router(), dags.router, dag_runs.router, task_instances.router):
        app.include_router(router, prefix=PREFIX)
    return app


def serve(host: str, port: int, config: ApiConfig | None = None) -> None:
    import uvicorn

    # No access log: it would print query strings; tokens travel in a header, but be safe anyway.
    uvicorn.run(create_app(config), host=host, port=port, access_log=False, log_level="info")
