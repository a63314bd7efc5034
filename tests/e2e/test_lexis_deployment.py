"""The unchanged seed DAG as a Prefect deployment: Prefect's runner (``flow.serve``) in a subprocess
loads ``flows/dags/lexis_hpc_simple.py:dag`` by entrypoint, and a run created through the API with
``run_deployment`` does the real work on the sandbox; cancelling such a run through the API
cancels its HEAppE job (the hook runs in the runner's process).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL
from prefect.states import Cancelling

from lexis_prefect.models.heappe import JobState
from tests.e2e.conftest import demo_token

REPO = Path(__file__).parents[2]
DAGS = REPO / "flows" / "dags"
SEED_STATES = {t: "Completed" for t in ("refresh_token_task", "ref_token_keeper", "job.hpc_job", "ref_token_stop", "finish")}

SERVE = textwrap.dedent(
    """
    import sys
    from prefect import flow
    flow.from_source(source=sys.argv[1], entrypoint="lexis_hpc_simple.py:dag").serve(name=sys.argv[2])
    """
)


class Runner:
    """``serve`` of the seed DAG in a subprocess, on this test's Prefect server and sandbox."""

    def __init__(self, sandbox: Any, log: Path, name: str) -> None:
        # The runner copies the flow's source into its working directory: a scratch one, not the repo.
        env = {
            **os.environ,
            **sandbox.environment(),
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            # These runs poll their job in process: no watcher runs beside this runner to resume them
            # (suspended runs are tests/deploy/test_suspend.py's).
            "LEXIS_SUSPEND": "false",
        }
        env.pop("LEXIS_CREDENTIALS_BLOCK", None)
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVE, str(DAGS), name],
                cwd=log.parent, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


async def _deployment(name: str, runner: Runner, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            try:
                return await client.read_deployment_by_name(f"lexis_hpc_simple/{name}")
            except Exception:
                if runner.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the runner did not register the deployment:\n{runner.output()}")
                await asyncio.sleep(0.5)


async def token_block(sandbox: Any) -> dict[str, Any]:
    """A deployment run takes the token only as a Secret block reference (the server refuses the text)."""
    await Secret(value=demo_token(sandbox).get_secret_value()).save("seed-deployment-token", overwrite=True)
    return {"$ref": {"block_document_slug": "secret/seed-deployment-token"}}


async def _task_states(flow_run_id: Any) -> dict[str, str]:
    async with get_client() as client:
        runs = await client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
        )
    return {r.name: r.state.name for r in runs}


@pytest.fixture
def runner(lexis_env, tmp_path):
    name = f"seed-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    started = Runner(lexis_env, tmp_path / "runner.log", name)
    try:
        yield name, started
    finally:
        started.stop()


async def test_seed_dag_runs_as_a_deployment(lexis_env, runner):
    name, process = runner
    deployment = await _deployment(name, process)
    assert deployment.entrypoint == "lexis_hpc_simple.py:dag"
    assert deployment.parameter_openapi_schema["properties"]["access_token"]["block_type_slug"] == "secret"
    assert "requirements" in deployment.parameter_openapi_schema["properties"]["job1"]["properties"]
    flow_run = await run_deployment(
        f"lexis_hpc_simple/{name}",
        parameters={"access_token": await token_block(lexis_env)},
        timeout=240,
    )
    assert flow_run.state.is_completed(), f"{flow_run.state!r}\n{process.output()}"
    states = await _task_states(flow_run.id)  # also holds the subflow's placeholder task run
    assert {task: states.get(task) for task in SEED_STATES} == SEED_STATES, states


async def test_cancelling_a_deployment_run_cancels_its_heappe_job(lexis_env, runner):
    sandbox = lexis_env
    name, process = runner
    await _deployment(name, process)
    sandbox.settings(job_seconds=30)
    try:
        flow_run = await run_deployment(
            f"lexis_hpc_simple/{name}",
            parameters={"access_token": await token_block(sandbox)},
            timeout=0,
        )
        job = await _wait(lambda: _running_job_of(sandbox, flow_run.id), 90, "the run's HEAppE job to be Running", process)
        async with get_client() as client:
            await client.set_flow_run_state(flow_run.id, Cancelling(), force=True)
        ended = await _wait(lambda: _job_if(sandbox, job["id"], JobState.Canceled), 60, "the HEAppE job to be Canceled", process)
        final = await _wait(lambda: _final_state(flow_run.id), 60, "the flow run to end", process)
    finally:
        sandbox.settings(job_seconds=1)
    assert ended["state"] == JobState.Canceled
    assert final.type.value in ("CANCELLED", "CRASHED"), final
    states = await _task_states(flow_run.id)
    assert states.get("finish") != "Completed", states


async def _running_job_of(sandbox: Any, flow_run_id: Any) -> dict[str, Any] | None:
    from lexis_prefect.hpc import run_job_name

    name = run_job_name("My HPC Job", str(flow_run_id), "job")
    return next((j for j in sandbox.jobs() if j["name"] == name and j["state"] == JobState.Running), None)


async def _job_if(sandbox: Any, job_id: int, state: JobState) -> dict[str, Any] | None:
    return next((j for j in sandbox.jobs() if j["id"] == job_id and j["state"] == state), None)


async def _final_state(flow_run_id: Any) -> Any:
    async with get_client() as client:
        state = (await client.read_flow_run(flow_run_id)).state
    return state if state.is_final() else None


async def _wait(condition: Any, timeout: float, what: str, process: Runner) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}:\n{process.output()}")
        await asyncio.sleep(0.5)

