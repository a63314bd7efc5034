"""The face's answers against Airflow 2.10.5's own, recorded by airflow210/record.py (Airflow's
webserver app in process, a DAG whose params are shaped like the seed DAG's).

Shapes: the same keys, and the same JSON type wherever both sides have a value. Error bodies: equal,
but for the names in them (the recording's DAG is `api_conformance`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect import task
from prefect.client.orchestration import get_client

from tests.api.conftest import bearer
from tests.api.test_routes import dag_id_of, job, runs_of

RECORDED = json.loads((Path(__file__).parent / "airflow210" / "recorded.json").read_text())
AIRFLOW = RECORDED["answers"]
RECORDED_DAG = "api_conformance"


def test_the_recording_is_airflow_2_10():
    assert RECORDED["airflow_version"].startswith("2.10.")


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def assert_same_shape(ours: Any, theirs: Any, where: str = "") -> None:
    if ours is None or theirs is None:
        return
    assert kind(ours) == kind(theirs), f"{where}: {kind(ours)} here, {kind(theirs)} in Airflow ({ours!r} / {theirs!r})"
    if isinstance(ours, dict) and where.split(".")[-1] not in ("conf", "value", "schema", "rendered_fields"):
        assert sorted(ours) == sorted(theirs), f"{where}: keys differ: {set(ours) ^ set(theirs)}"
        for key in ours:
            assert_same_shape(ours[key], theirs[key], f"{where}.{key}")
    if isinstance(ours, list) and ours and theirs:
        assert_same_shape(ours[0], theirs[0], f"{where}[0]")


def named(body: dict[str, Any], dag_id: str) -> dict[str, Any]:
    """Airflow's body with the recording's DAG id made ours."""
    return json.loads(json.dumps(body).replace(RECORDED_DAG, dag_id))


async def test_dags_and_details_have_airflows_shape(face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any):
    demo = bearer(tokens["demo"])
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    assert_same_shape((await face.get("/dags", headers=demo)).json(), AIRFLOW["dags"]["body"], "dags")
    assert_same_shape((await face.get(f"/dags/{dag_id}", headers=demo)).json(), AIRFLOW["dag"]["body"], "dag")
    details = (await face.get(f"/dags/{dag_id}/details", headers=demo)).json()
    assert_same_shape(details, AIRFLOW["dag_details"]["body"], "details")
    theirs = AIRFLOW["dag_details"]["body"]["params"]
    assert sorted(details["params"]) == sorted(theirs)  # access_token and job1, as in the seed DAG
    for name in theirs:
        assert sorted(details["params"][name]) == sorted(theirs[name])
        assert kind(details["params"][name]["value"]) == kind(theirs[name]["value"])
        assert details["params"][name]["__class"] == theirs[name]["__class"]
    assert details["params"]["access_token"]["value"] == theirs["access_token"]["value"] == ""
    assert details["params"]["access_token"]["schema"] == theirs["access_token"]["schema"]
    for key in ("health", "version"):
        assert_same_shape((await face.get(f"/{key}")).json(), AIRFLOW[key]["body"], key)


async def test_dag_runs_and_task_instances_have_airflows_shape(face: httpx.AsyncClient, tokens: dict[str, str],
                                                               seed_deployment: Any):
    demo = bearer(tokens["demo"])
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    body = {"conf": {"job1": job("conformance"), "access_token": tokens["demo"]}, "dag_run_id": "conformance_run"}
    posted = await face.post(f"/dags/{dag_id}/dagRuns", json=body, headers=demo)
    assert posted.status_code == AIRFLOW["post"]["status"]
    assert_same_shape(posted.json(), AIRFLOW["post"]["body"], "post")
    assert_same_shape((await face.get(f"/dags/{dag_id}/dagRuns", headers=demo)).json(), AIRFLOW["dag_runs"]["body"], "runs")
    got = (await face.get(f"/dags/{dag_id}/dagRuns/conformance_run", headers=demo)).json()
    assert_same_shape(got, AIRFLOW["dag_run"]["body"], "run")
    assert got["state"] == AIRFLOW["dag_run"]["body"]["state"] == "queued"

    @task(name="start")
    def start() -> None: ...

    flow_run = next(r for r in await runs_of(seed_deployment) if "airflow.dag_run_id:conformance_run" in r.tags)
    async with get_client() as client:  # a task run as the shim's runner makes one, not started yet
        await client.create_task_run(start, UUID(str(flow_run.id)), "0", name="start")
    listed = (await face.get(f"/dags/{dag_id}/dagRuns/conformance_run/taskInstances", headers=demo)).json()
    assert_same_shape(listed, AIRFLOW["task_instances"]["body"], "task_instances")
    one = (await face.get(f"/dags/{dag_id}/dagRuns/conformance_run/taskInstances/start", headers=demo)).json()
    assert_same_shape(one, AIRFLOW["task_instance"]["body"], "task_instance")
    # (state: a task run always has one, Pending when made; Airflow's not-yet-scheduled TI has none)
    for key in ("map_index", "try_number", "hostname", "pool", "queue", "executor_config", "task_display_name"):
        assert one[key] == AIRFLOW["task_instance"]["body"][key], key

    cancelled = await face.patch(f"/dags/{dag_id}/dagRuns/conformance_run", json={"state": "failed"}, headers=demo)
    assert cancelled.status_code == AIRFLOW["patch_failed"]["status"]
    assert_same_shape(cancelled.json(), AIRFLOW["patch_failed"]["body"], "patch_failed")
    assert cancelled.json()["state"] == AIRFLOW["patch_failed"]["body"]["state"] == "failed"


@pytest.mark.parametrize(
    ("key", "method", "path", "body"),
    [
        ("dag_unknown", "GET", "/dags/no_such_dag", None),
        ("post_unknown_dag", "POST", "/dags/no_such_dag/dagRuns", {}),
        ("dags_negative_limit", "GET", "/dags?limit=-1", None),
        ("dags_pattern_none", "GET", "/dags?dag_id_pattern=no-such-dag", None),
        ("patch_dag_mask", "PATCH", "/dags/{dag}?update_mask=description", {"is_paused": False}),
        ("post_clash", "POST", "/dags/{dag}/dagRuns",
         {"logical_date": "2026-01-01T00:00:00+00:00", "execution_date": "2026-01-02T00:00:00+00:00"}),
        ("dag_run_unknown", "GET", "/dags/{dag}/dagRuns/no_such_run", None),
        ("patch_unknown", "PATCH", "/dags/{dag}/dagRuns/no_such_run", {"state": "failed"}),
        ("unknown_path", "GET", "/no/such/path", None),
    ],
)
async def test_error_answers_are_airflows(face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any,
                                          key: str, method: str, path: str, body: Any):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    answer = await face.request(method, path.replace("{dag}", dag_id), json=body, headers=bearer(tokens["demo"]))
    assert answer.status_code == AIRFLOW[key]["status"]
    assert answer.json() == named(AIRFLOW[key]["body"], dag_id)


async def test_the_conflict_and_bad_state_answers_are_airflows(face: httpx.AsyncClient, tokens: dict[str, str],
                                                               seed_deployment: Any):
    demo = bearer(tokens["demo"])
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    await face.post(f"/dags/{dag_id}/dagRuns", json={"dag_run_id": "recorded_run"}, headers=demo)
    again = await face.post(f"/dags/{dag_id}/dagRuns", json={"dag_run_id": "recorded_run"}, headers=demo)
    assert (again.status_code, again.json()) == (AIRFLOW["post_again"]["status"], named(AIRFLOW["post_again"]["body"], dag_id))
    bogus = await face.patch(f"/dags/{dag_id}/dagRuns/recorded_run", json={"state": "bogus"}, headers=demo)
    assert (bogus.status_code, bogus.json()) == (AIRFLOW["patch_bogus"]["status"], AIRFLOW["patch_bogus"]["body"])


async def test_a_bad_conf_is_refused_in_airflows_words(face: httpx.AsyncClient, tokens: dict[str, str], seed_deployment: Any):
    dag_id = await dag_id_of(face, tokens["demo"], seed_deployment)
    bad = job("bad", walltime=-1)
    answer = await face.post(f"/dags/{dag_id}/dagRuns", json={"conf": {"job1": bad}}, headers=bearer(tokens["demo"]))
    theirs = AIRFLOW["post_bad_conf"]["body"]
    assert answer.status_code == AIRFLOW["post_bad_conf"]["status"] == 400
    ours = answer.json()
    assert {k: v for k, v in ours.items() if k != "detail"} == {k: v for k, v in theirs.items() if k != "detail"}
    # jsonschema's message, in Airflow's frame: "Invalid input for param job1: -1 is less than ... the minimum of
    # 1" there; SingleHPCJob's walltime_limit has an exclusive minimum of 0 here.
    prefix = "Invalid input for param job1: -1 is less than "
    assert theirs["detail"].startswith(prefix) and ours["detail"].startswith(prefix)
    assert "\n\nFailed validating " in theirs["detail"] and "\n\nFailed validating " in ours["detail"]


async def test_401_and_403_bodies_are_airflows_but_for_a_detail(face: httpx.AsyncClient, tokens: dict[str, str],
                                                                seed_deployment: Any):
    answer = await face.get("/dags")
    theirs = AIRFLOW["unauthenticated"]["body"]
    assert answer.status_code == theirs["status"] == 401
    assert {k: v for k, v in answer.json().items() if k != "detail"} == {k: v for k, v in theirs.items() if k != "detail"}
    assert theirs["detail"] is None and answer.json()["detail"]  # Airflow says nothing; the face says why
    refused = await face.get("/dags", headers=bearer("not-a-token"))
    assert {k: v for k, v in refused.json().items() if k not in ("detail", "errorString")} == {
        k: v for k, v in theirs.items() if k != "detail"
    }
