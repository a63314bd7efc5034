"""The routes of the API face against a real Prefect server (the test harness) and the sandbox AAI.

Bodies and status codes are Airflow 2.10.5's (apache-airflow 2.10.5, airflow/api_connexion):
each test names the endpoint module it follows.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

from lexis_prefect.api.secrets import BLOCK_PREFIX
from lexis_prefect.models.job import SEED_JOB
from tests.api.conftest import bearer

PROBLEM_KEYS = {"type", "title", "status", "detail"}


async def dag_id_of(face: httpx.AsyncClient, token: str, deployment: Any) -> str:
    listed = (await face.get("/dags", headers=bearer(token), params={"limit": 100})).json()["dags"]
    return next(d["dag_id"] for d in listed if d["file_token"] == str(deployment.id))


async def runs_of(deployment: Any) -> list[Any]:
    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        )


async def api_blocks() -> list[str]:
    async with get_client() as client:
        documents = await client.read_block_documents()
    return [d.name for d in documents if d.name and d.name.startswith(BLOCK_PREFIX)]


def job(name: str, walltime: int = 600) -> dict[str, Any]:
    value = copy.deepcopy(SEED_JOB)
    value["requirements"]["job_name"] = name
    value["requirements"]["tasks"][0]["walltime_limit"] = walltime
    return value


# -- authentication (airflow/api_connexion/security.py: Unauthenticated, PermissionDenied) --------


@pytest.mark.parametrize("header", [None, "Basic ZGVtbzpkZW1v", "Bearer", "Bearer not-a-token"])
async def test_no_valid_bearer_token_is_401_in_airflows_shape(face: httpx.AsyncClient, header: str | None):
    answer = await face.get("/dags", headers={"Authorization": header} if header else {})
    assert answer.status_code == 401
    body = answer.json()
    # a token sent but refused also says LEXIS's "Inactive token" (Py4Lexis refreshes and retries on it)
    assert set(body) == PROBLEM_KEYS | ({"errorString"} if header == "Bearer not-a-token" else set())
    assert body.get("errorString", "Inactive token") == "Inactive token"
    assert body["title"] == "Unauthorized" and body["status"] == 401
    assert body["type"].endswith("#section/Errors/Unauthenticated")
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "not-a-token" not in answer.text


async def test_an_expired_token_is_401_and_not_echoed(face: httpx.AsyncClient, tokens: dict[str, str]):
    head, _, sig = tokens["demo"].split(".")
    expired = ".".join([head, _b64({"sub": "demo", "exp": 1}), sig])
    answer = await face.get("/dags", headers=bearer(expired))
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"] and answer.json()["errorString"] == "Inactive token"
    assert expired not in answer.text


async def test_a_logged_out_token_is_401(face: httpx.AsyncClient, aai_transport: httpx.ASGITransport):
    from tests.api.conftest import REALM, login

    tokens = await login(aai_transport, "demo")
    async with httpx.AsyncClient(transport=aai_transport) as aai:
        ended = await aai.post(f"{REALM}/protocol/openid-connect/logout",
                               data={"client_id": "lexis-prefect", "refresh_token": tokens["refresh_token"]})
    assert ended.status_code == 204
    answer = await face.get("/dags", headers=bearer(tokens["access_token"]))
    assert answer.status_code == 401


def _b64(claims: dict[str, Any]) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


async def test_health_and_version_need_no_token(face: httpx.AsyncClient):
    health = (await face.get("/health")).json()
    assert health["metadatabase"] == {"status": "healthy"}
    assert health["scheduler"]["status"] == "healthy"
    version = (await face.get("/version")).json()
    assert version["version"] == "2.10.5" and "lexis-prefect" in version["git_version"]


# -- DAGs (endpoints/dag_endpoint.py, schemas/dag_schema.py) --------------------------------------


async def test_dags_are_the_deployments_with_paging_and_pattern(face: httpx.AsyncClient, tokens: dict[str, str],
                                                                seed_deployment: Any):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    assert dag_id.startswith("lexis_hpc_simple")
    listed = (await face.get("/dags", headers=bearer(tokens["demo"]), params={"dag_id_pattern": "HPC_simple"})).json()
    assert dag_id in [d["dag_id"] for d in listed["dags"]]
    assert listed["total_entries"] == len(listed["dags"])
    dag = next(d for d in listed["dags"] if d["dag_id"] == dag_id)
    assert dag["is_paused"] is False and dag["is_active"] is True
    assert dag["fileloc"] == "flows/dags/lexis_hpc_simple.py"
    assert {"name": "airflow"} in dag["tags"]
    none = (await face.get("/dags", headers=bearer(tokens["demo"]), params={"dag_id_pattern": "no-such-dag"})).json()
    assert none == {"dags": [], "total_entries": 0}
    first = (await face.get("/dags", headers=bearer(tokens["demo"]), params={"limit": 1})).json()
    assert len(first["dags"]) == 1 and first["total_entries"] >= 1
    beyond = (await face.get("/dags", headers=bearer(tokens["demo"]), params={"offset": 1000})).json()
    assert beyond["dags"] == [] and beyond["total_entries"] == first["total_entries"]
    negative = await face.get("/dags", headers=bearer(tokens["demo"]), params={"limit": -1})
    assert negative.status_code == 400 and negative.json()["title"] == "Page limit must be a positive integer"


async def test_an_unknown_dag_is_airflows_404(face: httpx.AsyncClient, tokens: dict[str, str]):
    answer = await face.get("/dags/no_such_dag", headers=bearer(tokens["demo"]))
    assert answer.status_code == 404
    assert answer.json() == {
        "detail": "The DAG with dag_id: no_such_dag was not found",
        "status": 404,
        "title": "DAG not found",
        "type": "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html#section/Errors/NotFound",
    }


async def test_details_give_each_params_value_description_and_schema(face: httpx.AsyncClient, tokens: dict[str, str],
                                                                      seed_deployment: Any):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    details = (await face.get(f"/dags/{dag_id}/details", headers=bearer(tokens["demo"]))).json()
    params = details["params"]
    assert set(params) == {"access_token", "job1"}
    assert params["job1"]["__class"] == "airflow.models.param.Param"
    assert params["job1"]["value"]["requirements"]["job_name"] == "My HPC Job"  # the DAG file's default
    assert params["job1"]["schema"]["type"] == "object"
    assert params["access_token"] == {"__class": "airflow.models.param.Param", "value": "",
                                      "description": "A Secret block holding the DAG param 'access_token'",
                                      "schema": {"type": "string"}}
    assert "secret/lexis-access-token" not in json.dumps(details)  # the deployment's own token stays unseen


async def test_patch_is_paused_pauses_the_deployment(face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    try:
        paused = await face.patch(f"/dags/{dag_id}", json={"is_paused": True}, headers=bearer(tokens["demo"]))
        assert paused.status_code == 200 and paused.json()["is_paused"] is True
        async with get_client() as client:
            assert (await client.read_deployment(seed_deployment.id)).paused is True
        masked = await face.patch(f"/dags/{dag_id}", params={"update_mask": "description"}, json={"is_paused": False},
                                  headers=bearer(tokens["demo"]))
        assert masked.status_code == 400
        assert masked.json()["detail"] == "Only `is_paused` field can be updated through the REST API"
    finally:
        resumed = await face.patch(f"/dags/{dag_id}", json={"is_paused": False}, headers=bearer(tokens["demo"]))
    assert resumed.json()["is_paused"] is False


# -- DAG runs (endpoints/dag_run_endpoint.py, schemas/dag_run_schema.py) ----------------------------


async def test_a_bad_conf_is_400_naming_the_param_and_starts_nothing(face: httpx.AsyncClient, tokens: dict[str, str],
                                                                     seed_deployment: Any):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    before, blocks = len(await runs_of(seed_deployment)), await api_blocks()
    body = {"conf": {"job1": job("never runs", walltime=-1), "access_token": tokens["demo"]}, "dag_run_id": "bad_conf"}
    answer = await face.post(f"/dags/{dag_id}/dagRuns", json=body, headers=bearer(tokens["demo"]))
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert problem["title"] == "Bad Request"
    assert problem["detail"].startswith("Invalid input for param job1: ")
    assert "walltime_limit" in problem["detail"] or "-1" in problem["detail"]
    assert tokens["demo"] not in answer.text
    unknown = await face.post(f"/dags/{dag_id}/dagRuns", json={"conf": {"jobb": {}}}, headers=bearer(tokens["demo"]))
    assert unknown.status_code == 400 and unknown.json()["detail"].startswith("Invalid input for param jobb: ")
    assert len(await runs_of(seed_deployment)) == before
    assert await api_blocks() == blocks


async def test_trigger_keeps_the_run_id_and_keeps_the_token_as_a_secret_block(
    face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any
):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    body = {"conf": {"job1": job("api trigger"), "access_token": tokens["demo"]}, "dag_run_id": "py4lexis_exec_1"}
    answer = await face.post(f"/dags/{dag_id}/dagRuns", json=body, headers=bearer(tokens["demo"]))
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["dag_id"] == dag_id and run["dag_run_id"] == "py4lexis_exec_1" and run["state"] == "queued"
    assert run["execution_date"] == run["logical_date"] and run["run_type"] == "manual"
    assert tokens["demo"] not in answer.text
    reference = run["conf"]["access_token"]["$ref"]["block_document_slug"]
    assert reference.startswith(f"secret/{BLOCK_PREFIX}")
    async with get_client() as client:
        flow_run = next(r for r in await runs_of(seed_deployment) if "airflow.dag_run_id:py4lexis_exec_1" in r.tags)
        assert "lexis.user:demo" in flow_run.tags
        assert flow_run.name == f"manual__{run['logical_date']}"
        assert tokens["demo"] not in json.dumps(flow_run.parameters)
        assert flow_run.parameters["job1"]["requirements"]["job_name"] == "api trigger"
        saved = await client.read_block_document_by_name(reference.split("/", 1)[1], "secret", include_secrets=True)
    kept = saved.data["value"]
    assert kept != tokens["demo"] and json.loads(_claims(kept))["typ"] == "Offline"  # an offline token, as save-token
    again = await face.post(f"/dags/{dag_id}/dagRuns", json=body, headers=bearer(tokens["demo"]))
    assert again.status_code == 409
    assert again.json()["detail"] == f"DAGRun with DAG ID: '{dag_id}' and DAGRun ID: 'py4lexis_exec_1' already exists"
    got = await face.get(f"/dags/{dag_id}/dagRuns/py4lexis_exec_1", headers=bearer(tokens["demo"]))
    assert got.json() == run
    listed = (await face.get(f"/dags/{dag_id}/dagRuns", headers=bearer(tokens["demo"]))).json()
    assert run in listed["dag_runs"] and listed["total_entries"] == len(listed["dag_runs"])
    queued = (await face.get(f"/dags/{dag_id}/dagRuns", params={"state": "success"}, headers=bearer(tokens["demo"]))).json()
    assert run not in queued["dag_runs"]


def _claims(token: str) -> str:
    import base64

    payload = token.split(".")[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()


async def test_without_conf_token_the_run_acts_with_the_bearer_token_and_a_foreign_one_is_refused(
    face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any
):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    plain = await face.post(f"/dags/{dag_id}/dagRuns", json={"conf": {"job1": job("no conf token")}},
                            headers=bearer(tokens["demo"]))
    assert plain.status_code == 200, plain.text
    assert plain.json()["dag_run_id"].startswith("manual__")
    assert plain.json()["conf"]["access_token"]["$ref"]["block_document_slug"].startswith(f"secret/{BLOCK_PREFIX}")
    before = len(await runs_of(seed_deployment))
    foreign = await face.post(f"/dags/{dag_id}/dagRuns", json={"conf": {"access_token": tokens["alice"]}},
                              headers=bearer(tokens["demo"]))
    assert foreign.status_code == 403
    assert tokens["alice"] not in foreign.text and tokens["demo"] not in foreign.text
    assert len(await runs_of(seed_deployment)) == before


async def test_a_second_user_can_neither_see_nor_cancel_nor_delete_the_first_ones_run(
    face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any
):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    started = await face.post(f"/dags/{dag_id}/dagRuns", json={"dag_run_id": "demo_only"}, headers=bearer(tokens["demo"]))
    assert started.status_code == 200
    alice = bearer(tokens["alice"])
    listed = (await face.get(f"/dags/{dag_id}/dagRuns", headers=alice)).json()
    assert "demo_only" not in [r["dag_run_id"] for r in listed["dag_runs"]]
    everywhere = (await face.get("/dags/~/dagRuns", headers=alice)).json()
    assert "demo_only" not in [r["dag_run_id"] for r in everywhere["dag_runs"]]
    for answer in (
        await face.get(f"/dags/{dag_id}/dagRuns/demo_only", headers=alice),
        await face.patch(f"/dags/{dag_id}/dagRuns/demo_only", json={"state": "failed"}, headers=alice),
        await face.delete(f"/dags/{dag_id}/dagRuns/demo_only", headers=alice),
        await face.get(f"/dags/{dag_id}/dagRuns/demo_only/taskInstances", headers=alice),
    ):
        assert answer.status_code == 403, answer.text
        assert answer.json()["title"] == "Forbidden"
    still = await face.get(f"/dags/{dag_id}/dagRuns/demo_only", headers=bearer(tokens["demo"]))
    assert still.json()["state"] == "queued"


async def test_patch_failed_cancels_and_delete_removes_the_run_and_its_secret(
    face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any
):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    demo = bearer(tokens["demo"])
    started = (await face.post(f"/dags/{dag_id}/dagRuns", json={"dag_run_id": "to_cancel"}, headers=demo)).json()
    block = started["conf"]["access_token"]["$ref"]["block_document_slug"].split("/", 1)[1]
    running = await face.delete(f"/dags/{dag_id}/dagRuns/to_cancel", headers=demo)
    assert running.status_code == 400  # not ended yet
    success = await face.patch(f"/dags/{dag_id}/dagRuns/to_cancel", json={"state": "success"}, headers=demo)
    assert success.status_code == 400
    bogus = await face.patch(f"/dags/{dag_id}/dagRuns/to_cancel", json={"state": "bogus"}, headers=demo)
    assert bogus.json()["detail"] == "'bogus' is not one of ['success', 'failed', 'queued'] - 'state'"
    cancelled = await face.patch(f"/dags/{dag_id}/dagRuns/to_cancel", json={"state": "failed"}, headers=demo)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "failed"
    async with get_client() as client:
        flow_run = await client.read_flow_run(UUID(str(next(
            r.id for r in await runs_of(seed_deployment) if "airflow.dag_run_id:to_cancel" in r.tags))))
        assert flow_run.state.type.value in ("CANCELLING", "CANCELLED")
        if flow_run.state.type.value == "CANCELLING":  # no worker here: what the worker does when its process ends
            from prefect.states import Cancelled

            await client.set_flow_run_state(flow_run.id, Cancelled(), force=True)
    gone = await face.delete(f"/dags/{dag_id}/dagRuns/to_cancel", headers=demo)
    assert gone.status_code == 204
    assert block not in await api_blocks()
    missing = await face.get(f"/dags/{dag_id}/dagRuns/to_cancel", headers=demo)
    assert missing.status_code == 404 and missing.json()["title"] == "DAGRun not found"
    patch_missing = await face.patch(f"/dags/{dag_id}/dagRuns/to_cancel", json={"state": "failed"}, headers=demo)
    assert patch_missing.json()["title"] == f"Dag Run id to_cancel not found in dag {dag_id}"


async def test_a_bad_run_id_or_dates_are_400(face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    demo = bearer(tokens["demo"])
    bad_id = await face.post(f"/dags/{dag_id}/dagRuns", json={"dag_run_id": "has space"}, headers=demo)
    assert bad_id.status_code == 400 and "has space" in bad_id.json()["detail"]
    naive = await face.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": "2026-01-01T00:00:00"}, headers=demo)
    assert naive.status_code == 400
    clash = await face.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": "2026-01-01T00:00:00Z",
                                                              "execution_date": "2026-01-02T00:00:00Z"}, headers=demo)
    assert clash.status_code == 400 and clash.json()["title"] == "logical_date conflicts with execution_date"
    missing = await face.post("/dags/no_such_dag/dagRuns", json={}, headers=demo)
    assert missing.status_code == 404 and missing.json()["detail"] == "DAG with dag_id: 'no_such_dag' not found"


async def test_two_posts_of_one_run_id_start_one_run_and_keep_one_token_block(
    face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any
):
    import asyncio

    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    blocks = set(await api_blocks())
    answers = await asyncio.gather(*[
        face.post(f"/dags/{dag_id}/dagRuns", json={"dag_run_id": "raced"}, headers=bearer(tokens["demo"]))
        for _ in range(2)
    ])
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert len([r for r in await runs_of(seed_deployment) if "airflow.dag_run_id:raced" in r.tags]) == 1
    assert len(set(await api_blocks()) - blocks) == 1


async def test_task_instances_of_a_run_not_started_yet_are_none_and_unknown_ones_404(
    face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any
):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    demo = bearer(tokens["demo"])
    await face.post(f"/dags/{dag_id}/dagRuns", json={"dag_run_id": "not_started"}, headers=demo)
    listed = await face.get(f"/dags/{dag_id}/dagRuns/not_started/taskInstances", headers=demo)
    assert listed.json() == {"task_instances": [], "total_entries": 0}
    missing = await face.get(f"/dags/{dag_id}/dagRuns/not_started/taskInstances/stage_in", headers=demo)
    assert missing.status_code == 404 and missing.json()["title"] == "Task instance not found"
    log = await face.get(f"/dags/{dag_id}/dagRuns/not_started/taskInstances/stage_in/logs/1", headers=demo)
    assert log.status_code == 404 and log.json()["title"] == "TaskInstance not found"
    unknown_path = await face.get("/no/such/path", headers=demo)
    assert unknown_path.status_code == 404 and unknown_path.json()["title"] == "Not Found"
