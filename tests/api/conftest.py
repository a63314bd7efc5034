"""The API face in process (httpx's ASGI transport) over Prefect's test harness, with the sandbox's
AAI in process too: real token checks (userinfo) and token exchanges, two users (demo, alice)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lexis_prefect.api import ApiConfig, create_app
from lexis_prefect.blocks import LexisCredentials, LexisEndpoints
from lexis_prefect.sandbox.app import create_app as create_sandbox
from lexis_prefect.sandbox.config import SandboxConfig

REPO = Path(__file__).parents[2]
SANDBOX = "http://sandbox.test"
REALM = f"{SANDBOX}/auth/realms/LEXIS_AAI"
USERS = {"demo": "demo", "alice": "alice"}


@pytest.fixture(scope="session")
def aai_transport() -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_sandbox(SandboxConfig(users=USERS)))


@pytest.fixture(scope="session")
def credentials() -> LexisCredentials:
    return LexisCredentials(
        endpoints=LexisEndpoints(aai_url=REALM, staging_url=f"{SANDBOX}/staging"), client_id="lexis-prefect"
    )


async def login(transport: httpx.AsyncBaseTransport, user: str) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=transport) as client:
        answer = await client.post(
            f"{REALM}/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "lexis-prefect", "username": user, "password": USERS[user]},
        )
    answer.raise_for_status()
    return answer.json()


@pytest.fixture
async def tokens(aai_transport: httpx.ASGITransport) -> dict[str, str]:
    """A fresh access token of each sandbox user."""
    return {user: (await login(aai_transport, user))["access_token"] for user in USERS}


@pytest.fixture(scope="session")
def seed_deployment(prefect_harness: None) -> Any:
    """The seed DAG file's deployment, as `prefect deploy` makes it (its parameter schema is the
    shim's flow's), on the harness. No work pool: its runs stay scheduled."""
    from prefect.client.orchestration import get_client

    from lexis_prefect.airflow.loader import load_dag

    dag: Any = load_dag(REPO / "flows" / "dags" / "lexis_hpc_simple.py")

    async def create() -> Any:
        async with get_client() as client:
            flow_id = await client.create_flow_from_name(dag.name)
            deployment_id = await client.create_deployment(
                flow_id,
                "api-seed-dag",
                entrypoint="flows/dags/lexis_hpc_simple.py:dag",
                parameter_openapi_schema=dag.parameters.model_dump_for_openapi(),
                parameters={"access_token": {"$ref": {"block_document_slug": "secret/lexis-access-token"}}},
                tags=["lexis", "airflow"],
                description="The LEXIS seed Airflow DAG file, unchanged, through the Airflow-compat shim.",
                enforce_parameter_schema=True,
            )
            return await client.read_deployment(deployment_id)

    return asyncio.run(create())


@pytest.fixture
async def face(
    seed_deployment: Any, aai_transport: httpx.ASGITransport, credentials: LexisCredentials
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ApiConfig(credentials=credentials, aai_transport=aai_transport))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://face.test/api/v1") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
