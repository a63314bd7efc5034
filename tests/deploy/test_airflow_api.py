"""LEXIS's own clients, unchanged, against the Airflow REST API face that `deployments/stack.py` starts
beside the server and the worker: Py4Lexis's `Airflow` class (vendored from its repository,
tests/api/py4lexis_vendor) and Airflow's generated client for the 2.x API (apache-airflow-client).
Both trigger the seed DAG's deployment (`lexis_hpc_simple/seed-dag`) and watch it to `success` on the
sandbox; then: a bad conf, missing/expired/foreign tokens, a second user, a cancel, and the token
searched for everywhere it could leak.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter, FlowRunFilterTags

from lexis_prefect.models.heappe import JobState
from tests.deploy.conftest import Stack
from tests.deploy.test_deployments import (
    artifacts,
    final,
    flow_run,
    job_in_state,
    job_named,
    log_lines,
    sandbox_job,
    task_states,
    wait_for,
)

VENDOR = Path(__file__).parents[1] / "api" / "py4lexis_vendor"
DAG_ID = "lexis_hpc_simple"  # the seed DAG file's deployment; the native flow of that name is lexis_hpc_simple.native


def login(stack: Stack, user: str = "demo") -> dict[str, Any]:
    """A user's token answer from the sandbox AAI (as Py4Lexis's password log-in gets it)."""
    answer = httpx.post(f"{stack.sandbox.aai_url()}/protocol/openid-connect/token", timeout=30,
                        data={"grant_type": "password", "client_id": "lexis-prefect", "username": user, "password": user})
    answer.raise_for_status()
    return answer.json()


def face(stack: Stack) -> str:
    return stack.info["airflow_api_url"]


def call(stack: Stack, method: str, path: str, token: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"{face(stack)}{path}", headers=headers, timeout=60, **kwargs)


def runs_tagged(stack: Stack, tag: str) -> list[Any]:
    async def read(client: PrefectClient) -> list[Any]:
        return await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))

    return stack.api(read)


def seed_dag_runs(stack: Stack) -> int:
    async def count(client: PrefectClient) -> int:
        return await client.count_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["seed-dag"])))

    return stack.api(count)


def the_run(stack: Stack, dag_run_id: str) -> Any:
    (run,) = runs_tagged(stack, f"airflow.dag_run_id:{dag_run_id}")
    return run


@pytest.fixture(scope="module")
def py4lexis() -> Iterator[Any]:
    """Py4Lexis's `Airflow` class and the session it is handed (see the vendored session.py)."""
    sys.path.insert(0, str(VENDOR))
    try:
        from py4lexis.session import LexisSession
        from py4lexis.workflows.airflow import Airflow

        yield Airflow, LexisSession
    finally:
        sys.path.remove(str(VENDOR))
        for name in [m for m in sys.modules if m == "py4lexis" or m.startswith("py4lexis.")]:
            del sys.modules[name]


def assert_nowhere_in_clear(stack: Stack, token: str, run_id: UUID, *answers: str) -> None:
    """The token is not in the answers, the run's stored parameters, its logs, nor any stack log."""
    for answer in answers:
        assert token not in answer
    run = flow_run(stack, str(run_id))
    assert token not in json.dumps(run.parameters, default=str)
    assert all(token not in line for line in log_lines(stack, str(run_id)))
    for name, path in stack.info["logs"].items():
        assert token not in Path(path).read_text(errors="replace"), f"the token is in the {name} log"


def test_py4lexis_airflow_class_lists_triggers_and_watches_the_seed_dag(stack: Stack, py4lexis: Any):
    Airflow, LexisSession = py4lexis
    tokens = login(stack)
    session = LexisSession(tokens, face(stack), f"{stack.sandbox.aai_url()}/protocol/openid-connect/token", "lexis-prefect")
    airflow = Airflow(session)

    listed, status = airflow.get_workflows_list()
    assert status == 200 and DAG_ID in [d["dag_id"] for d in listed["dags"]]
    assert listed["total_entries"] == len(listed["dags"])
    info, status = airflow.get_workflow_info(DAG_ID)
    assert status == 200 and info["dag_id"] == DAG_ID and info["is_paused"] is False
    details, status = airflow.get_workflow_details(DAG_ID)
    assert status == 200 and set(details["params"]) == {"access_token", "job1"}
    params, status = airflow.get_workflow_params(DAG_ID)
    assert status == 200 and params["job1"]["requirements"]["job_name"] == "My HPC Job"  # the DAG file's default

    params["job1"] = job_named("py4lexis through the api")  # what a user edits: the job, on the sandbox's names
    started, status = airflow.execute_workflow(DAG_ID, params, "py4lexis_exec_e2e")
    assert status == 200, started
    assert started == {"status": 200, "workflow_id": DAG_ID, "workflow_run_id": "py4lexis_exec_e2e", "State": "queued"}

    def succeeded() -> Any:
        states, _ = airflow.get_workflow_states(DAG_ID)
        mine = [s for s in states if s["workflow_run_id"] == "py4lexis_exec_e2e"]
        assert mine and mine[0]["state"] in ("queued", "running", "success"), mine
        return mine[0]["state"] == "success" and mine[0]

    wait_for(succeeded, 300, "the DAG run to succeed (as Py4Lexis sees it)", stack, interval=1)
    table, status = airflow.get_workflow_states(DAG_ID, content_as_pandas=True)  # Py4Lexis's DataFrame too
    assert status == 200 and "py4lexis_exec_e2e" in list(table["workflow_run_id"])
    dags_table, status = airflow.get_workflows_list(content_as_pandas=True)
    assert status == 200 and DAG_ID in list(dags_table["dag_id"])
    assert sandbox_job(stack, "py4lexis through the api")["state"] == JobState.Finished

    run = the_run(stack, "py4lexis_exec_e2e")
    assert "lexis.user:demo" in run.tags and run.state.type.value == "COMPLETED"
    assert "airflow-lexis-hpc-simple" in artifacts(stack, str(run.id))  # an ordinary run: the same artifacts
    instances = call(stack, "GET", f"/dags/{DAG_ID}/dagRuns/py4lexis_exec_e2e/taskInstances", tokens["access_token"]).json()
    by_task = {ti["task_id"]: ti for ti in instances["task_instances"]}
    prefect_states = task_states(stack, str(run.id))
    assert set(by_task) <= set(prefect_states)
    assert by_task["refresh_token_task"]["state"] == "success" and by_task["refresh_token_task"]["map_index"] == -1
    assert instances["total_entries"] == len(instances["task_instances"]) >= 3
    one = call(stack, "GET", f"/dags/{DAG_ID}/dagRuns/py4lexis_exec_e2e/taskInstances/refresh_token_task",
               tokens["access_token"]).json()
    assert one == by_task["refresh_token_task"]
    log = call(stack, "GET", f"/dags/{DAG_ID}/dagRuns/py4lexis_exec_e2e/taskInstances/refresh_token_task/logs/1",
               tokens["access_token"])
    assert log.status_code == 200 and log.json()["content"]

    listing = call(stack, "GET", f"/dags/{DAG_ID}/dagRuns", tokens["access_token"]).text
    assert_nowhere_in_clear(stack, tokens["access_token"], run.id, listing, json.dumps(instances), log.text)


def test_py4lexis_refreshes_a_refused_token_on_inactive_token_and_goes_on(stack: Stack, py4lexis: Any):
    """Py4Lexis refreshes its token and retries on LEXIS's 401 `{"errorString": "Inactive token"}`."""
    Airflow, LexisSession = py4lexis
    stack.sandbox.settings(token_lifetime_seconds=1)
    try:
        tokens = login(stack, "alice")
    finally:
        stack.sandbox.settings(token_lifetime_seconds=300)
    stale = tokens["access_token"]
    wait_for(lambda: call(stack, "GET", "/dags", stale).status_code == 401, 30, "the 1 s token to expire", stack,
             interval=0.5)
    # The session believes its token still lives (it does not look at the clock again before the call).
    session = LexisSession({**tokens, "expires_in": 3600}, face(stack),
                           f"{stack.sandbox.aai_url()}/protocol/openid-connect/token", "lexis-prefect")
    listed, status = Airflow(session).get_workflows_list()
    assert status == 200 and DAG_ID in [d["dag_id"] for d in listed["dags"]]
    assert session.TOKEN != stale


def test_apache_airflow_client_lists_triggers_and_watches_the_seed_dag(stack: Stack):
    import airflow_client.client as airflow_client
    from airflow_client.client.api import dag_api, dag_run_api, monitoring_api, task_instance_api
    from airflow_client.client.model.dag_run import DAGRun
    from airflow_client.client.model.dag_state import DagState

    token = login(stack)["access_token"]
    configuration = airflow_client.Configuration(host=face(stack))
    with airflow_client.ApiClient(configuration, header_name="Authorization", header_value=f"Bearer {token}") as api:
        assert monitoring_api.MonitoringApi(api).get_health().metadatabase.status.value == "healthy"
        dags = dag_api.DAGApi(api).get_dags(dag_id_pattern="hpc_simple")
        assert DAG_ID in [d.dag_id for d in dags.dags]
        assert dag_api.DAGApi(api).get_dag(DAG_ID).fileloc == "flows/dags/lexis_hpc_simple.py"
        details = dag_api.DAGApi(api).get_dag_details(DAG_ID)
        assert details.params["job1"]["value"]["requirements"]["job_name"] == "My HPC Job"

        runs = dag_run_api.DAGRunApi(api)
        conf = {"job1": job_named("airflow client through the api"), "access_token": token}
        started = runs.post_dag_run(DAG_ID, DAGRun(dag_run_id="airflow_client_e2e", conf=conf))
        assert started.dag_run_id == "airflow_client_e2e" and started.state == DagState("queued")

        def succeeded() -> Any:
            run = runs.get_dag_run(DAG_ID, "airflow_client_e2e")
            assert run.state.value in ("queued", "running", "success"), run.state
            return run.state == DagState("success") and run

        ended = wait_for(succeeded, 300, "the DAG run to succeed (as the Airflow client sees it)", stack, interval=1)
        assert ended.end_date is not None and ended.execution_date == ended.logical_date
        listed = runs.get_dag_runs(DAG_ID, state=["success"])
        assert "airflow_client_e2e" in [r.dag_run_id for r in listed.dag_runs]
        instances = task_instance_api.TaskInstanceApi(api).get_task_instances(DAG_ID, "airflow_client_e2e")
        assert {ti.task_id for ti in instances.task_instances} >= {"refresh_token_task"}
        assert all(ti.state.value in ("success", "skipped") for ti in instances.task_instances)
        tasks = task_instance_api.TaskInstanceApi(api)
        one = tasks.get_task_instance(DAG_ID, "airflow_client_e2e", "refresh_token_task")
        assert one.map_index == -1 and one.try_number == 1
        log = tasks.get_log(DAG_ID, "airflow_client_e2e", "refresh_token_task", 1)
        assert log.content
    assert sandbox_job(stack, "airflow client through the api")["state"] == JobState.Finished
    assert_nowhere_in_clear(stack, token, the_run(stack, "airflow_client_e2e").id, str(started), str(ended))


def test_a_bad_conf_is_400_naming_the_param_with_no_run_and_no_heappe_job(stack: Stack):
    token = login(stack)["access_token"]
    jobs, runs = len(stack.sandbox.jobs()), seed_dag_runs(stack)
    bad = job_named("never runs through the api", walltime=-1)
    refused = call(stack, "POST", f"/dags/{DAG_ID}/dagRuns", token, json={"conf": {"job1": bad, "access_token": token}})
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("Invalid input for param job1: ")
    assert token not in refused.text
    assert (len(stack.sandbox.jobs()), seed_dag_runs(stack)) == (jobs, runs)


def test_missing_invalid_and_expired_tokens_are_401_and_nothing_leaks(stack: Stack):
    assert call(stack, "GET", "/dags", None).status_code == 401
    assert call(stack, "GET", "/dags", "not-a-token").status_code == 401
    stack.sandbox.settings(token_lifetime_seconds=1)
    try:
        short = login(stack, "alice")["access_token"]
    finally:
        stack.sandbox.settings(token_lifetime_seconds=300)
    expired = wait_for(lambda: (r := call(stack, "GET", "/dags", short)).status_code == 401 and r, 30,
                       "the 1 s token to expire", stack, interval=0.5)
    assert expired.json()["title"] == "Unauthorized" and short not in expired.text
    assert short not in Path(stack.info["logs"]["api"]).read_text(errors="replace")


def test_a_second_user_cannot_see_or_cancel_the_first_ones_run_and_patch_failed_cancels_the_heappe_job(stack: Stack):
    demo, alice = login(stack)["access_token"], login(stack, "alice")["access_token"]
    stack.sandbox.settings(job_seconds=120)  # long enough to be cancelled while it runs
    try:
        conf = {"job1": job_named("cancelled through the api"), "access_token": demo}
        started = call(stack, "POST", f"/dags/{DAG_ID}/dagRuns", demo, json={"conf": conf, "dag_run_id": "to_cancel_e2e"})
        assert started.status_code == 200, started.text
        wait_for(job_in_state(stack, "cancelled through the api", JobState.Running), 180, "the HEAppE job to run", stack)

        assert "to_cancel_e2e" not in call(stack, "GET", f"/dags/{DAG_ID}/dagRuns", alice).text
        for method, body in (("GET", None), ("PATCH", {"state": "failed"}), ("DELETE", None)):
            refused = call(stack, method, f"/dags/{DAG_ID}/dagRuns/to_cancel_e2e", alice, json=body)
            assert refused.status_code == 403 and refused.json()["title"] == "Forbidden"
        assert sandbox_job(stack, "cancelled through the api")["state"] == JobState.Running

        cancelled = call(stack, "PATCH", f"/dags/{DAG_ID}/dagRuns/to_cancel_e2e", demo, json={"state": "failed"})
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "failed"
        wait_for(job_in_state(stack, "cancelled through the api", JobState.Canceled), 90, "the HEAppE job to be Canceled",
                 stack, interval=0.2)
        run = the_run(stack, "to_cancel_e2e")
        ended = wait_for(lambda: final(stack, str(run.id)), 90, "the flow run to end", stack)
    finally:
        stack.sandbox.settings(job_seconds=2)
    assert ended.state.type.value == "CANCELLED"
    assert call(stack, "GET", f"/dags/{DAG_ID}/dagRuns/to_cancel_e2e", demo).json()["state"] == "failed"
    assert_nowhere_in_clear(stack, demo, run.id, started.text, cancelled.text)


def test_a_mapped_task_group_shows_its_task_instances_with_their_map_index(stack: Stack):
    """The sweep DAG maps a task group over `values`: one task instance per map index."""
    token = login(stack)["access_token"]
    conf = {"job": job_named("sweep through the api"), "values": ["0.5", "2"]}
    started = call(stack, "POST", "/dags/lexis_hpc_sweep/dagRuns", token, json={"conf": conf, "dag_run_id": "sweep_e2e"})
    assert started.status_code == 200, started.text

    def ended() -> Any:
        state = call(stack, "GET", "/dags/lexis_hpc_sweep/dagRuns/sweep_e2e", token).json()["state"]
        assert state in ("queued", "running", "success"), state
        return state == "success"

    wait_for(ended, 300, "the sweep DAG run to succeed", stack, interval=1)
    instances = call(stack, "GET", "/dags/lexis_hpc_sweep/dagRuns/sweep_e2e/taskInstances", token).json()["task_instances"]
    mapped: dict[str, set[int]] = {}
    for ti in instances:
        if ti["map_index"] >= 0:
            mapped.setdefault(ti["task_id"], set()).add(ti["map_index"])
    assert {0, 1} in mapped.values(), instances
    task_id = next(t for t, indexes in mapped.items() if indexes == {0, 1})
    one = call(stack, "GET", f"/dags/lexis_hpc_sweep/dagRuns/sweep_e2e/taskInstances/{task_id}/1", token)
    assert one.status_code == 200 and one.json()["map_index"] == 1 and one.json()["state"] == "success"
