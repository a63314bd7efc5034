"""`prefect deploy --all` + `prefect deployment run` on a real server and worker (see conftest.py).

The native flow and the unchanged seed DAG run as deployments to completion; the server refuses a
bad `job1` and a token in clear before any run exists; `prefect flow-run cancel` cancels the HEAppE
job. Timings (deployment run -> HPC submission, total) are printed and written to
`test-output/deployments-<database>.json`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)

from lexis_prefect.models.heappe import JobState
from lexis_prefect.models.job import SEED_JOB
from lexis_prefect.resolve import run_job_name
from tests.deploy.conftest import REPO, Stack, dumps, run_id_of

DEPLOYMENTS = {
    "lexis_hpc_simple/native",
    "lexis_hpc_simple/seed-dag",
    "lexis_hpc_chain/chain",
    "lexis_hpc_fanout/fanout",
    "lexis_hpc_two_jobs/dag",
    "lexis_hpc_sweep/sweep-dag",
}
SWEEP_VALUES = ["0.5", "2"]
#: The HEAppE job name each run of `finished` gives its (first) job.
JOB_NAMES = {"native": "deployed native", "seed-dag": "deployed seed dag", "sweep-dag": "deployed sweep 0.5"}
OUTPUT = Path(os.environ.get("LEXIS_PREFECT_TEST_OUTPUT") or REPO / "test-output")


def job_named(name: str, walltime: int = 600) -> dict[str, Any]:
    job = copy.deepcopy(SEED_JOB)
    job["requirements"]["job_name"] = name
    job["requirements"]["tasks"][0]["walltime_limit"] = walltime
    return job


def sandbox_job(stack: Stack, name: str) -> dict[str, Any] | None:
    # `<job name made legal for HEAppE> <10-hex digest of run and step>` (resolve.run_job_name)
    legal = run_job_name(name, "", "")[:-10]
    mine = re.compile(re.escape(legal) + r"[0-9a-f]{10}")
    return next((j for j in stack.sandbox.jobs() if mine.fullmatch(j["name"])), None)


def wait_for(condition: Any, timeout: float, what: str, stack: Stack, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{stack.logs()}")
        time.sleep(interval)


def flow_run(stack: Stack, run_id: str) -> Any:
    async def read(client: PrefectClient) -> Any:
        return await client.read_flow_run(UUID(run_id))

    return stack.api(read)


def final(stack: Stack, run_id: str) -> Any:
    run = flow_run(stack, run_id)
    return run if run.state and run.state.is_final() else None


def run_tree(stack: Stack, run_id: str) -> list[UUID]:
    """The run and its subflow runs (each `build_hpc_job_step` is one), recursively."""

    async def children(client: PrefectClient, ids: list[UUID]) -> list[UUID]:
        found: list[UUID] = []
        while ids:
            found += ids
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=ids))
            )
            ids = [r.id for r in runs if r.id not in found]
        return found

    return stack.api(children, [UUID(run_id)])


def log_lines(stack: Stack, run_id: str) -> list[str]:
    async def read(client: PrefectClient, ids: list[UUID]) -> list[str]:
        logs, offset = [], 0
        while True:
            page = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)), offset=offset)
            logs += [entry.message for entry in page]
            if len(page) < 200:
                return logs
            offset += len(page)

    return stack.api(read, run_tree(stack, run_id))


def artifacts(stack: Stack, run_id: str) -> dict[str, str]:
    async def read(client: PrefectClient, ids: list[UUID]) -> dict[str, str]:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
        return {a.key: str(a.data) for a in found if a.key}

    return stack.api(read, run_tree(stack, run_id))


def state_times(stack: Stack, run_id: str) -> dict[str, float]:
    """When the run first entered each state (Pending: a worker took it; Running: its process started)."""

    async def read(client: PrefectClient) -> list[Any]:
        return await client.read_flow_run_states(UUID(run_id))

    times: dict[str, float] = {}
    for state in stack.api(read):
        times.setdefault(state.name, state.timestamp.timestamp())
    return {name: times[name] for name in ("Pending", "Running") if name in times}


def task_run_states(stack: Stack, run_id: str) -> list[tuple[str, str]]:
    """(name, state) of every task run of the run and its subflows, repeated names included."""

    async def read(client: PrefectClient, ids: list[UUID]) -> list[tuple[str, str]]:
        runs = await client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=ids))
        )
        return [(r.name, r.state.name) for r in runs]

    return stack.api(read, run_tree(stack, run_id))


def task_states(stack: Stack, run_id: str) -> dict[str, str]:
    return dict(task_run_states(stack, run_id))


def access_token(stack: Stack) -> str:
    async def read(client: PrefectClient) -> str:
        document = await client.read_block_document_by_name("lexis-access-token", "secret", include_secrets=True)
        return document.data["value"]

    return stack.api(read)


@pytest.fixture(scope="session")
def finished(stack: Stack) -> dict[str, dict[str, Any]]:
    """The native flow, the seed DAG and the sweep DAG, each run once with `prefect deployment run`,
    to the end (at once: the sweep's two jobs and the others' wait together)."""
    runs = {
        "native": ("lexis_hpc_simple/native", ["--param", f"job1={dumps(job_named('deployed native'))}"]),
        "seed-dag": ("lexis_hpc_simple/seed-dag", ["--params", dumps({"job1": job_named("deployed seed dag")})]),
        "sweep-dag": ("lexis_hpc_sweep/sweep-dag", ["--params", dumps({"job": job_named("deployed sweep"), "values": SWEEP_VALUES})]),
    }
    started: dict[str, dict[str, Any]] = {}
    for key, (deployment, params) in runs.items():
        t0 = time.time()
        output = stack.cli("prefect", "deployment", "run", deployment, *params).stdout
        started[key] = {"deployment": deployment, "run_id": run_id_of(output), "t0": t0}
    for key, run in started.items():
        ended = wait_for(lambda: final(stack, run["run_id"]), 300, f"{key} to end", stack)
        job = sandbox_job(stack, JOB_NAMES[key])
        run.update(
            state=ended.state.type.value,
            job=job,
            to_submission_s=round(job["submitted"] - run["t0"], 2) if job else None,
            total_s=round(ended.end_time.timestamp() - run["t0"], 2) if ended.end_time else None,
            engine_run_s=round(ended.total_run_time.total_seconds(), 2),
            **{f"to_{name.lower()}_s": round(at - run["t0"], 2) for name, at in state_times(stack, run["run_id"]).items()},
        )
    report = {key: {k: v for k, v in run.items() if k != "job"} for key, run in started.items()}
    report["database"] = stack.info.get("database")
    report["deploy_all_s"] = round(stack.info["deploy_seconds"], 2)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / f"deployments-{report['database']}.json").write_text(json.dumps(report, indent=2))
    print("deployment timings:", json.dumps(report))
    return started


def test_prefect_deploy_all_creates_every_deployment_on_the_pool(stack: Stack):
    assert DEPLOYMENTS <= set(stack.deployments), sorted(stack.deployments)
    for name in DEPLOYMENTS:
        deployment = stack.deployments[name]
        assert deployment.work_pool_name == "lexis-hpc"
        assert deployment.enforce_parameter_schema is True
        assert deployment.parameters["access_token"] == {"$ref": {"block_document_slug": "secret/lexis-access-token"}}


@pytest.mark.parametrize("name", ["lexis_hpc_simple/native", "lexis_hpc_simple/seed-dag"])
def test_the_parameter_schema_is_the_full_job_schema(stack: Stack, name: str):
    schema = stack.deployments[name].parameter_openapi_schema
    job1 = schema["properties"]["job1"]
    if "$ref" in job1:  # the native flow's pydantic model lives in definitions
        job1 = {**schema["definitions"][job1["$ref"].rsplit("/", 1)[1]], **job1}
    assert job1["default"]["requirements"]["job_name"] == SEED_JOB["requirements"]["job_name"]
    text = json.dumps(schema)
    for part in ("walltime_limit", "job_name", "data_inputs", "location_name", '"enum"', '"description"'):
        assert part in text, part
    assert schema["properties"]["access_token"]["block_type_slug"] == "secret"


@pytest.mark.parametrize("key", ["native", "seed-dag", "sweep-dag"])
def test_deployment_runs_complete_with_their_hpc_job(stack: Stack, finished: dict, key: str):
    run = finished[key]
    assert run["state"] == "COMPLETED", f"{run}\n{stack.logs()}"
    assert run["job"] is not None and run["job"]["state"] == JobState.Finished, run["job"]


def test_the_sweep_dag_runs_one_job_and_one_output_per_value(stack: Stack, finished: dict):
    run = finished["sweep-dag"]
    jobs = [sandbox_job(stack, f"deployed sweep {value}") for value in SWEEP_VALUES]
    assert all(job and job["state"] == JobState.Finished for job in jobs), jobs
    assert len({job["id"] for job in jobs}) == len(SWEEP_VALUES)
    # a run that suspended and resumed has earlier task runs of the same names: one must complete
    completed = {name for name, state in task_run_states(stack, run["run_id"]) if state == "Completed"}
    assert {"sweep.point.hpc_job[0]", "sweep.point.hpc_job[1]"} <= completed, completed
    outputs = {name for name in completed if name.startswith("sweep.point[") and ".stage_output[" in name}
    assert outputs == {"sweep.point[0].stage_output[0]", "sweep.point[1].stage_output[0]"}, completed
    lines = "\n".join(log_lines(stack, run["run_id"]))
    for value in SWEEP_VALUES:
        assert f"TestTemplate started with input_param={value}" in lines


@pytest.mark.parametrize("key", ["native", "seed-dag"])
def test_the_job_summary_artifact_and_the_hpc_output_reach_the_api(stack: Stack, finished: dict, key: str):
    run = finished[key]
    found = artifacts(stack, run["run_id"])
    assert "job-summary" in found, sorted(found)
    assert f"HEAppE job | {run['job']['id']}" in found["job-summary"]
    assert "Finished" in found["job-summary"] or "finished" in found["job-summary"].lower()
    lines = "\n".join(log_lines(stack, run["run_id"]))
    assert "TestTemplate started with input_param=value" in lines
    assert "TestTemplate finished" in lines


def test_the_stored_parameters_hold_only_the_secret_reference(stack: Stack, finished: dict):
    token = access_token(stack)
    for run in finished.values():
        stored = json.dumps(flow_run(stack, run["run_id"]).parameters)
        assert token not in stored and token.split(".")[1] not in stored
        assert "secret/lexis-access-token" in stored


def _jobs_and_runs(stack: Stack) -> tuple[int, int]:
    async def count(client: PrefectClient) -> int:
        return await client.count_flow_runs()

    return len(stack.sandbox.jobs()), stack.api(count)


def test_the_server_refuses_an_invalid_job1_naming_the_field(stack: Stack):
    before = _jobs_and_runs(stack)
    bad = job_named("never runs", walltime=-1)
    for deployment in ("lexis_hpc_simple/native", "lexis_hpc_simple/seed-dag"):
        refused = stack.cli("prefect", "deployment", "run", deployment, "--param", f"job1={dumps(bad)}", check=False)
        assert refused.returncode != 0, refused.stdout
        assert "walltime_limit" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert _jobs_and_runs(stack) == before


def test_the_server_refuses_a_token_in_clear(stack: Stack):
    before = _jobs_and_runs(stack)
    token = access_token(stack)
    refused = stack.cli("prefect", "deployment", "run", "lexis_hpc_simple/seed-dag", "--param", f"access_token={token}",
                        check=False)
    assert refused.returncode != 0
    assert "access_token" in refused.stdout + refused.stderr
    assert _jobs_and_runs(stack) == before


@contextlib.contextmanager
def long_job(stack: Stack) -> Iterator[None]:
    """Jobs of 2 minutes: long enough to be cancelled while they run."""
    stack.sandbox.settings(job_seconds=120)
    try:
        yield
    finally:
        stack.sandbox.set_available("Karolina", True)
        stack.sandbox.settings(job_seconds=2)


#: A run that polls its job in its own process instead of suspending (test_suspend.py covers that).
IN_PROCESS = dumps({"LEXIS_SUSPEND": "false", "LEXIS_CREDENTIALS_BLOCK": "lexis"})


def run_until_its_job_runs(stack: Stack, job_name: str) -> tuple[str, dict[str, Any]]:
    """`prefect deployment run` of the native flow, polling in process; its flow run id and its HEAppE job, Running."""
    output = stack.cli("prefect", "deployment", "run", "lexis_hpc_simple/native", "--job-variable", f"env={IN_PROCESS}",
                       "--param", f"job1={dumps(job_named(job_name))}").stdout

    def running() -> dict[str, Any] | None:
        job = sandbox_job(stack, job_name)
        return job if job and job["state"] == JobState.Running else None

    return run_id_of(output), wait_for(running, 180, "the HEAppE job to run", stack)


def job_in_state(stack: Stack, job_name: str, state: JobState) -> Any:
    return lambda: (job := sandbox_job(stack, job_name)) and job["state"] == state and job


def test_prefect_flow_run_cancel_cancels_the_heappe_job(stack: Stack):
    with long_job(stack):
        run_id, job = run_until_its_job_runs(stack, "cancelled by prefect")
        cancel_at = time.time()
        stack.cli("prefect", "flow-run", "cancel", run_id)
        wait_for(job_in_state(stack, "cancelled by prefect", JobState.Canceled), 60, "the HEAppE job to be Canceled",
                 stack, interval=0.2)
        seconds = time.time() - cancel_at
        ended = wait_for(lambda: final(stack, run_id), 90, "the flow run to end", stack)
    print(f"HEAppE job {job['id']} Canceled {seconds:.1f} s after `prefect flow-run cancel`")
    assert ended.state.type.value == "CANCELLED", ended.state
    states = task_states(stack, run_id)
    assert not [name for name in states if "stage_output" in name], states  # nothing staged out
    assert states.get("ref_token_stop") == "Completed", states  # the keeper was stopped


def test_when_the_flow_cannot_cancel_its_job_the_worker_hook_does(stack: Stack):
    """The flow process's own cancel fails (Karolina's HEAppE answers 503 to everything); the
    `on_cancellation` hook, run by the worker after that process ended, finds the job id in the
    run's Variable and cancels the job once HEAppE answers again."""
    worker_log = Path(stack.info["logs"]["worker"])
    with long_job(stack):
        run_id, job = run_until_its_job_runs(stack, "cancelled by the hook")
        stack.sandbox.set_available("Karolina", False)  # refused before any work, unlike injected faults
        stack.cli("prefect", "flow-run", "cancel", run_id)
        failed = f"could not cancel HEAppE job {job['id']}"
        # A pass takes seconds; CI's PostgreSQL pass once timed out here at 90 s (cause not found: rerun,
        # it passed), so the bound is generous.
        wait_for(lambda: failed in worker_log.read_text(errors="replace"), 240, "the flow's own cancel to fail", stack,
                 interval=0.1)
        stack.sandbox.set_available("Karolina", True)
        wait_for(job_in_state(stack, "cancelled by the hook", JobState.Canceled), 90,
                 "the worker's hook to cancel the HEAppE job", stack, interval=0.2)
        ended = wait_for(lambda: final(stack, run_id), 90, "the flow run to end", stack)
    assert ended.state.type.value == "CANCELLED", ended.state
    lines = "\n".join(log_lines(stack, run_id))
    assert failed in lines  # the flow's attempt, in the run's logs
    assert f"cancelled HEAppE job(s) [{job['id']}]" in lines  # only the hook logs this
