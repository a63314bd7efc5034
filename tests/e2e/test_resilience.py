"""End to end resilience of the native `lexis_hpc_simple` flow against a real sandbox subprocess.

- the token keeper carries a job that outlives the access token many times;
- a run killed with SIGKILL and started again with the same `run_key` re-attaches
  to its HEAppE job (and a different `run_key` does not);
- cancelling a run (in-process, or through the hooks from another process)
  cancels its HEAppE job;
- injected 5xx and dropped connections are survived, with one HEAppE job per run,
  including a fault on each non-idempotent call (create, submit, stage).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_API_URL

from lexis_prefect.hpc import cancel_hpc_jobs, cancel_recorded_jobs, run_job_name
from lexis_prefect.models.heappe import JobState
from lexis_prefect.models.job import SEED_JOB
from lexis_prefect.sandbox import SandboxProcess
from lexis_prefect.sandbox.config import FaultConfig
from lexis_prefect.sandbox.faults import FaultPlan
from tests.e2e.conftest import demo_token, load_flow_module, logging_sandbox

flow_module = load_flow_module("lexis_hpc_simple")
lexis_hpc_simple = flow_module.lexis_hpc_simple

SCRIPT = Path(__file__).with_name("run_flow_script.py")
REPO = Path(__file__).parents[2]
JOB_NAME = SEED_JOB["requirements"]["job_name"]


# -- helpers -------------------------------------------------------------------------------------


def job_name_for(run_key: str) -> str:
    return run_job_name(JOB_NAME, run_key, "job")


async def jobs_named(sandbox: SandboxProcess, name: str) -> list[dict[str, Any]]:
    return [j for j in await asyncio.to_thread(sandbox.jobs) if j["name"] == name]


async def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    """Poll an async `condition()` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def running_job(sandbox: SandboxProcess, name: str, timeout: float = 45, flow: FlowProcess | None = None) -> dict[str, Any]:
    async def find():
        if flow is not None:
            flow.check_alive()
        return next((j for j in await jobs_named(sandbox, name) if j["state"] == JobState.Running), None)

    return await wait_for(find, timeout, f"HEAppE job {name!r} to be Running")


async def stop(run: asyncio.Task) -> None:
    """Make sure a flow started as a task has ended (a test that failed early must not leave it running)."""
    if not run.done():
        run.cancel()
    await asyncio.wait([run], timeout=30)


def live_processes(group: int) -> list[str]:
    """The processes of a job task's process group that still run (zombies count as gone: they are dead)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        state, pgrp = rest[0], int(rest[2])
        if pgrp == group and state not in ("Z", "X"):
            alive.append(f"{stat.parent.name} {name} {state}")
    return alive


class FlowProcess:
    """`lexis_hpc_simple` in a subprocess, on this test's Prefect server and sandbox."""

    def __init__(self, sandbox: SandboxProcess, log_dir: Path, run_key: str | None) -> None:
        env = {
            **os.environ,
            **sandbox.environment(),
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "LEXIS_ACCESS_TOKEN": demo_token(sandbox).get_secret_value(),
            "LEXIS_RUN_KEY": run_key or "",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        env.pop("LEXIS_CREDENTIALS_BLOCK", None)
        self.log = log_dir / f"flow-{uuid.uuid4().hex[:8]}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(SCRIPT)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the flow's process ended early ({self.process.returncode}):\n{self.output()}")


async def flow_run_logs(flow_run_id: Any) -> list[str]:
    await APILogHandler.aflush()
    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def injected_faults(sandbox: SandboxProcess) -> int:
    """How many faults the sandbox has injected since it started (set_faults does not reset it)."""
    return sandbox.control("GET", "faults")["injected"]


def fault_outcomes(config: FaultConfig, count: int) -> list[tuple[str, bool] | None]:
    """What the sandbox's FaultInjector does to the next `count` matching requests: (kind, work_done) or None.

    Replays FaultPlan's random draws in the order the middleware makes them.
    """
    plan = FaultPlan(config)
    outcomes: list[tuple[str, bool] | None] = []
    for _ in range(count):
        kind = plan.pick()
        if kind is None:
            outcomes.append(None)
            continue
        work_done = kind != "rate_limit" and plan.random.random() < 0.5
        if kind == "error":
            plan.random.choice((502, 503, 504))
        outcomes.append((kind, work_done))
    return outcomes


def seed_for(config: FaultConfig, wanted: list[tuple[str, bool] | None]) -> int:
    """A seed whose first matching requests meet the `wanted` faults (None: no fault), in that order."""
    for seed in range(20_000):
        if fault_outcomes(config.model_copy(update={"seed": seed}), len(wanted)) == wanted:
            return seed
    raise AssertionError(f"no seed gives {wanted}")


async def keeper_stop_lines(flow_run_id) -> list[str]:
    return [m for m in await flow_run_logs(flow_run_id) if "token keeper stopped after" in m]


# -- 1. the token keeper ---------------------------------------------------------------------------


async def test_token_keeper_carries_a_job_that_outlives_the_token(prefect_harness, monkeypatch):
    with SandboxProcess("--token-lifetime", "3", "--job-seconds", "20", "--log-requests") as sandbox:
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
        for name, value in sandbox.environment().items():
            monkeypatch.setenv(name, value)

        state = await lexis_hpc_simple(access_token=demo_token(sandbox), return_state=True)
        result = await state.result()
        files = sandbox.dataset_files(result.output_dataset_ids[0])
        request_log = sandbox.log_file.read_text()

    assert state.is_completed(), state
    assert result.state == "Finished"
    assert files.get("results/result.txt", "").strip() == "result for value"
    assert result.timings_seconds["running"] >= 18, result.timings_seconds  # ~6 token lifetimes (issue 8: 3 s, 20 s)
    logs = await wait_for(
        lambda: keeper_stop_lines(state.state_details.flow_run_id), 20, "the keeper's last log line in the API"
    )
    refreshes = int(re.search(r"after (\d+) refresh", logs[0]).group(1))
    assert refreshes >= 4, logs
    token_calls = re.findall(r"POST /auth/realms/LEXIS_AAI/protocol/openid-connect/token 200 ", request_log)
    assert len(token_calls) >= 1 + refreshes  # the exchange, then each refresh really went to the AAI
    refused = [line for line in request_log.splitlines() if re.search(r" /\S+ 401 ", line)]
    assert not refused, "calls refused as unauthorised:\n" + "\n".join(refused)
    heappe_and_staging = re.findall(r" (/heappe/\S+|/staging/\S+) (\d{3}) ", request_log)
    assert heappe_and_staging and all(status.startswith("2") for _, status in heappe_and_staging)


# -- 2. crash, then rerun with the same run_key -----------------------------------------------------


async def test_rerun_after_sigkill_reattaches_to_the_running_job(lexis_env, tmp_path):
    sandbox = lexis_env
    run_key = f"crash-{uuid.uuid4().hex[:8]}"
    name = job_name_for(run_key)
    sandbox.settings(job_seconds=8)
    datasets_before = {d["id"] for d in sandbox.control("GET", "datasets")}
    first = FlowProcess(sandbox, tmp_path, run_key)
    try:
        job = await running_job(sandbox, name, flow=first)
        first.kill()
        assert first.process.returncode == -signal.SIGKILL
        [after_kill] = await jobs_named(sandbox, name)
        assert after_kill["state"] == JobState.Running, "killing the flow's process must not end the HEAppE job"

        result = await lexis_hpc_simple(access_token=demo_token(sandbox), run_key=run_key)
    finally:
        first.kill()
        sandbox.settings(job_seconds=1)

    assert result.state == "Finished"
    assert result.job_id == job["id"]
    assert result.job_name == name
    [only] = await jobs_named(sandbox, name)  # re-attached: no second job for this run
    assert only["id"] == job["id"] and only["state"] == JobState.Finished
    assert only["submitted"] == job["submitted"], "the job was submitted again"
    [dataset] = result.output_dataset_ids
    new_datasets = [d["id"] for d in sandbox.control("GET", "datasets") if d["id"] not in datasets_before]
    assert new_datasets == [dataset], "outputs staged out once"
    files = sandbox.dataset_files(dataset)
    assert files.get("results/result.txt", "").strip() == "result for value"


async def test_rerun_with_another_run_key_creates_a_new_job(lexis_env):
    sandbox = lexis_env
    key_a, key_b = f"key-a-{uuid.uuid4().hex[:8]}", f"key-b-{uuid.uuid4().hex[:8]}"
    # Side by side in one process: each run keeps to its own job.
    first, second = await asyncio.gather(
        lexis_hpc_simple(access_token=demo_token(sandbox), run_key=key_a),
        lexis_hpc_simple(access_token=demo_token(sandbox), run_key=key_b),
    )
    again = await lexis_hpc_simple(access_token=demo_token(sandbox), run_key=key_a)

    assert first.state == second.state == again.state == "Finished"
    assert second.job_id != first.job_id
    assert second.job_name == job_name_for(key_b) != first.job_name
    assert again.job_id == first.job_id  # the same key finds its (finished) job again
    assert again.output_dataset_ids == first.output_dataset_ids  # and its stage-out, not a second dataset
    assert [j["id"] for j in await jobs_named(sandbox, job_name_for(key_a))] == [first.job_id]
    assert [j["id"] for j in await jobs_named(sandbox, job_name_for(key_b))] == [second.job_id]


# -- 3. cancellation ------------------------------------------------------------------------------


async def test_cancelling_the_flow_cancels_the_heappe_job(lexis_env):
    sandbox = lexis_env
    run_key = f"cancel-{uuid.uuid4().hex[:8]}"
    name = job_name_for(run_key)
    sandbox.settings(job_seconds=20)
    run = asyncio.create_task(lexis_hpc_simple(access_token=demo_token(sandbox), run_key=run_key))
    try:
        job = await running_job(sandbox, name)
        await asyncio.sleep(1)  # let the job's process get going
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 30)

        async def canceled():
            [current] = await jobs_named(sandbox, name)
            return current if current["state"] == JobState.Canceled else None

        current = await wait_for(canceled, 5, f"HEAppE job {job['id']} to be Canceled")
    finally:
        sandbox.settings(job_seconds=1)
        await stop(run)
    [task] = current["tasks"]
    assert task["state"] == JobState.Canceled
    assert task["pid"] and not live_processes(task["pid"])
    assert current["ended"] - job["started"] < 15, "cancelled long before the job would have finished"


async def test_hook_retries_a_cancel_that_failed_during_the_run(lexis_env):
    sandbox = lexis_env
    run_key = f"cancel-retry-{uuid.uuid4().hex[:8]}"
    name = job_name_for(run_key)
    # wait_for_job's own cancel meets 5xx on all 4 attempts (before HEAppE acts); the next CancelJob works.
    config = FaultConfig(error_rate=0.6, paths=["*/JobManagement/CancelJob"])
    config = config.model_copy(update={"seed": seed_for(config, [("error", False)] * 4 + [None] * 2)})
    token = demo_token(sandbox)
    sandbox.settings(job_seconds=20)
    run = asyncio.create_task(lexis_hpc_simple(access_token=token, run_key=run_key))
    job = None
    try:
        job = await running_job(sandbox, name)
        before = injected_faults(sandbox)
        sandbox.set_faults(**config.model_dump())
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 30)  # returns once the flow's hooks have run
        injected = injected_faults(sandbox) - before
        [current] = await jobs_named(sandbox, name)
    finally:
        sandbox.set_faults()
        sandbox.settings(job_seconds=1)
        await stop(run)
        if job is not None:
            await _cancel_directly(sandbox, job["id"])
    if injected != 4:  # not an AssertionError: a broken set-up must not pass for the expected failure
        pytest.fail(f"wait_for_job's cancel should have met 4 faults, met {injected}")
    assert current["state"] == JobState.Canceled, f"HEAppE job {job['id']} left {JobState(current['state']).name}"


async def _cancel_directly(sandbox: SandboxProcess, job_id: int) -> None:
    from lexis_prefect import HEAppEClient

    async with HEAppEClient(sandbox.heappe_url(), demo_token(sandbox)) as heappe:
        if not (await heappe.job_info(job_id)).is_terminal:
            await heappe.cancel_job(job_id)


async def test_hooks_cancel_the_job_of_a_killed_run_from_another_process(lexis_env, tmp_path):
    sandbox = lexis_env
    sandbox.settings(job_seconds=20)
    flow = FlowProcess(sandbox, tmp_path, run_key=None)  # keeper id = the flow run's id, as deployments run it
    try:
        async with get_client() as client:

            async def killed_run():
                flow.check_alive()
                runs = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["lexis_hpc_simple"])))
                jobs = {j["name"]: j for j in await asyncio.to_thread(sandbox.jobs) if j["state"] == JobState.Running}
                return next(((run, jobs[job_name_for(str(run.id))]) for run in runs if job_name_for(str(run.id)) in jobs), None)

            flow_run, job = await wait_for(killed_run, 45, "the subprocess's flow run and its Running job")
            flow.kill()
            flow_run = await client.read_flow_run(flow_run.id)
        assert flow_run.parameters.get("run_key") is None
        [before] = await jobs_named(sandbox, job["name"])
        assert before["state"] == JobState.Running, "killing the flow's process must not end the HEAppE job"

        # What Prefect does when it finds the run crashed or cancels it: the flow's hooks, here in this process.
        await cancel_hpc_jobs(lexis_hpc_simple, flow_run, flow_run.state)

        [current] = await jobs_named(sandbox, job["name"])
        assert current["state"] == JobState.Canceled
        assert not live_processes(current["tasks"][0]["pid"])
        # Idempotent: nothing is left to cancel.
        assert await cancel_recorded_jobs(str(flow_run.id)) == []
    finally:
        flow.kill()
        sandbox.settings(job_seconds=1)


# -- 4. faults ------------------------------------------------------------------------------------

#: The paths whose faults this seed was chosen for (POST /staging/stage has its own test below).
SURVIVABLE_PATHS = ["/auth/*", "*/heappe/*", "/staging/stage/*"]
#: Found by trying seeds against the job step's request sequence (2222 served the one before the shared
#: HEAppE session): CreateJob meets three faults in a row, one landing after the job was created, so the
#: task's retry must re-attach to it; SubmitJob loses an answer too. Passed 5 runs out of 5.
#: 4 since the step asks HEAppE for the job directory (RequestFileTransfer/CloseFileTransfer) before
#: staging: 7 no longer struck SubmitJob.
FAULT_SEED = 4


async def test_flow_survives_injected_faults_with_one_job(prefect_harness, monkeypatch, fast_step_retries):
    run_key = f"faults-{uuid.uuid4().hex[:8]}"
    with logging_sandbox(monkeypatch) as sandbox:
        token = demo_token(sandbox)
        sandbox.set_faults(error_rate=0.2, drop_rate=0.05, paths=SURVIVABLE_PATHS, seed=FAULT_SEED)
        try:
            result = await lexis_hpc_simple(access_token=token, run_key=run_key)
            injected = sandbox.control("GET", "faults")["injected"]
        finally:
            sandbox.set_faults()
        jobs = await jobs_named(sandbox, job_name_for(run_key))
        files = sandbox.dataset_files(result.output_dataset_ids[0])
        request_log = sandbox.log_file.read_text()

    assert result.state == "Finished"
    assert [j["id"] for j in jobs] == [result.job_id]
    assert files.get("results/result.txt", "").strip() == "result for value"
    assert injected >= 5, injected
    fault_lines = re.findall(r"sandbox fault: (\w+) on (\w+) (\S+)", request_log)
    assert len(fault_lines) == injected
    assert {kind for kind, _, _ in fault_lines} == {"error", "drop"}, fault_lines
    # Both non-idempotent HEAppE calls lost their answer: the re-attach lookups had to find the job and its submit.
    assert any(path.endswith("/JobManagement/CreateJob") for _, _, path in fault_lines), fault_lines
    assert any(path.endswith("/JobManagement/SubmitJob") for _, _, path in fault_lines), fault_lines


GAPS = {
    "stage-in answer lost": ("/staging/stage", ("drop", True)),
    "CreateJob 5xx before the job exists": ("*/JobManagement/CreateJob", ("error", False)),
    "SubmitJob 5xx before the submit": ("*/JobManagement/SubmitJob", ("error", False)),
}


@pytest.mark.parametrize("gap", list(GAPS))
async def test_one_fault_on_a_non_idempotent_call_is_survived(lexis_env, gap):
    sandbox = lexis_env
    path, first = GAPS[gap]
    rates = {"error_rate": 0.3} if first[0] == "error" else {"drop_rate": 0.3}
    config = FaultConfig(paths=[path], **rates)
    config = config.model_copy(update={"seed": seed_for(config, [first] + [None] * 8)})
    run_key = f"gap-{uuid.uuid4().hex[:8]}"
    token = demo_token(sandbox)
    before = injected_faults(sandbox)
    sandbox.set_faults(**config.model_dump())
    try:
        outcome = await lexis_hpc_simple(access_token=token, run_key=run_key, return_state=True)
        injected = injected_faults(sandbox) - before
    finally:
        sandbox.set_faults()
    assert injected == 1, f"expected exactly one injected fault on {path}, got {injected}"
    result = await outcome.result()
    assert result.state == "Finished"
    assert [j["id"] for j in await jobs_named(sandbox, job_name_for(run_key))] == [result.job_id]
