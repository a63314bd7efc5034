"""Cancelling a run mid-staging and mid-job: its HEAppE job ends Canceled (never submitted: Deleted), nothing is staged out, the keeper stops.

The run is cancelled the way `tests/e2e/test_resilience.py::test_cancelling_the_flow_cancels_the_heappe_job`
does it (the flow's asyncio task is cancelled; its `on_cancellation` hooks then run in this process).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator

import pytest

from lexis_prefect import keeper as keeper_module
from lexis_prefect.hpc import recorded_jobs
from lexis_prefect.models.heappe import JobState
from lexis_prefect.sandbox import SandboxProcess
from tests.e2e.conftest import demo_token, load_flow_module
from tests.e2e.test_resilience import job_name_for, jobs_named, live_processes, running_job, stop, wait_for

lexis_hpc_simple = load_flow_module("lexis_hpc_simple").lexis_hpc_simple

#: wait_for_job's first poll interval (PollPolicy(interval_seconds=1, ...)): "within two polls" is at most this twice.
POLL_SECONDS = 1.0


@pytest.fixture(scope="module")
def slow_sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess("--job-seconds", "20", "--log-requests") as sandbox:
        yield sandbox


@pytest.fixture
def env(slow_sandbox, monkeypatch, prefect_harness) -> SandboxProcess:
    monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
    for name, value in slow_sandbox.environment().items():
        monkeypatch.setenv(name, value)
    slow_sandbox.settings(queue_seconds=0.1, staging_seconds=0.1, job_seconds=20)
    return slow_sandbox


def staging_posts(sandbox: SandboxProcess) -> int:
    return len(re.findall(r"POST /staging/stage 2\d\d ", sandbox.log_file.read_text()))


def datasets(sandbox: SandboxProcess) -> set[str]:
    return {d["id"] for d in sandbox.control("GET", "datasets")}


async def _cancel(run: asyncio.Task) -> float:
    started = time.monotonic()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 30)  # returns once the flow's hooks have run
    return started


async def _canceled(sandbox: SandboxProcess, name: str, timeout: float) -> dict:
    async def canceled():
        [current] = await jobs_named(sandbox, name)
        return current if current["state"] == JobState.Canceled else None

    return await wait_for(canceled, timeout, f"HEAppE job {name!r} to be Canceled", interval=0.05)


async def test_cancelling_mid_staging_deletes_the_unsubmitted_job_and_stages_nothing_out(env):
    sandbox = env
    sandbox.settings(staging_seconds=6)  # stage-in takes ~12 s: queued, then in progress
    run_key = f"cancel-staging-{uuid.uuid4().hex[:8]}"
    name = job_name_for(run_key)
    before_datasets, before_posts = datasets(sandbox), staging_posts(sandbox)
    run = asyncio.create_task(lexis_hpc_simple(access_token=demo_token(sandbox), run_key=run_key))
    try:
        await wait_for(lambda: asyncio.sleep(0, staging_posts(sandbox) > before_posts), 45, "the stage-in request")
        await asyncio.sleep(1)  # well inside the staging
        [job] = await jobs_named(sandbox, name)
        assert job["state"] == JobState.Configuring, "cancelled before the job was submitted"
        await _cancel(run)
        await asyncio.sleep(2 * POLL_SECONDS + 1)  # time for anything that would still happen
        after = await jobs_named(sandbox, name)
    finally:
        await stop(run)
        sandbox.settings(staging_seconds=0.1)

    assert [j["id"] for j in after] == [job["id"]], "one HEAppE job"
    [current] = after
    # HEAppE cancels only submitted jobs: one never submitted is deleted (its directory with it).
    assert not current["submitted"] and current["state"] == JobState.Deleted, current
    assert not current["tasks"][0]["pid"], "the job's process was started"
    assert staging_posts(sandbox) == before_posts + 1, "only the one stage-in; no stage-out"
    assert datasets(sandbox) == before_datasets, "a dataset was staged out"
    assert run_key not in keeper_module._KEEPERS, "the token keeper still runs"
    assert not await recorded_jobs(run_key), "still recorded for the hooks"


async def test_cancelling_mid_job_cancels_it_within_two_polls(env):
    sandbox = env
    run_key = f"cancel-job-{uuid.uuid4().hex[:8]}"
    name = job_name_for(run_key)
    before_datasets = datasets(sandbox)
    run = asyncio.create_task(lexis_hpc_simple(access_token=demo_token(sandbox), run_key=run_key))
    try:
        job = await running_job(sandbox, name)
        await asyncio.sleep(1)
        posts = staging_posts(sandbox)
        # Watched while the run winds down: the job must end within two polls of the cancel,
        # whatever the run's own ending (subflow, keeper, hooks) takes after that.
        seen: list[float] = []
        watch = asyncio.create_task(_canceled(sandbox, name, 2 * POLL_SECONDS))
        watch.add_done_callback(lambda _: seen.append(time.monotonic()))
        started = await _cancel(run)
        ended = time.monotonic() - started
        current = await watch
        took = seen[0] - started
        await asyncio.sleep(2)
    finally:
        await stop(run)

    print(f"\ncancel -> Canceled in {took:.2f} s (poll interval {POLL_SECONDS} s); the run ended {ended:.2f} s after the cancel")
    assert took <= 2 * POLL_SECONDS, took
    assert current["id"] == job["id"]
    assert not live_processes(current["tasks"][0]["pid"])
    assert staging_posts(sandbox) == posts, "a stage-out was requested"
    assert datasets(sandbox) == before_datasets, "a dataset was staged out"
    assert run_key not in keeper_module._KEEPERS, "the token keeper still runs"
