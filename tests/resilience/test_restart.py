"""The sandbox restarts (`--state-dir`) while the HEAppE job runs: the flow run rides it out and finishes.

`SandboxProcess` always passes `--port 0`; an explicit `--port N` among its arguments comes later on the
command line and wins (click keeps an option's last value), so the restarted sandbox listens where the
first one did and the run's LEXIS_* URLs stay valid.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

from lexis_prefect.models.heappe import JobState
from lexis_prefect.sandbox import SandboxProcess
from tests.e2e.conftest import demo_token, load_flow_module
from tests.e2e.test_resilience import job_name_for, running_job, stop

lexis_hpc_simple = load_flow_module("lexis_hpc_simple").lexis_hpc_simple


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_run_continues_across_a_sandbox_restart(prefect_harness, monkeypatch, tmp_path):
    state_dir, port = tmp_path / "sandbox-state", free_port()
    args = ("--job-seconds", "6", "--port", str(port))
    run_key = f"restart-{uuid.uuid4().hex[:8]}"
    name = job_name_for(run_key)
    first = SandboxProcess(*args, state_dir=state_dir).start()
    second = None
    run = None
    try:
        first.settings(queue_seconds=0.1, staging_seconds=0.1)
        monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
        for key, value in first.environment().items():
            monkeypatch.setenv(key, value)
        run = asyncio.create_task(lexis_hpc_simple(access_token=demo_token(first), run_key=run_key, return_state=True))
        job = await running_job(first, name)
        first.stop()  # like Ctrl-C: the job's process goes on, its record is in state_dir
        stopped_at = time.monotonic()
        await asyncio.sleep(2)  # some polls meet a closed port
        assert not run.done(), "the run ended while the sandbox was down"
        second = SandboxProcess(*args, state_dir=state_dir).start()
        restarted_at = time.monotonic()
        assert second.url == first.url
        second.settings(queue_seconds=0.1, staging_seconds=0.1)
        state = await asyncio.wait_for(run, 120)
        result = await state.result()
        jobs = [j for j in second.jobs() if j["name"] == name]
        files = second.dataset_files(result.output_dataset_ids[0])
    finally:
        if run is not None:
            await stop(run)
        first.stop()
        if second is not None:
            second.stop()

    print(f"\nsandbox down {restarted_at - stopped_at:.1f} s while job {job['id']} ran; run {state.name}")
    assert state.is_completed(), state
    assert result.state == "Finished" and result.job_id == job["id"]
    assert [j["id"] for j in jobs] == [job["id"]], "one HEAppE job, the one started before the restart"
    assert jobs[0]["state"] == JobState.Finished
    assert files.get("results/result.txt", "").strip() == "result for value"
