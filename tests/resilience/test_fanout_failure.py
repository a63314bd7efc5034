"""A fan-out whose one job fails: the run fails with that job's error, and the other steps are cancelled at once.

`lexis_hpc_fanout` runs three steps; the tests swap one value's command template for the sandbox's
`FailingTemplate` (exit 3 after ~1 s) while the other two would run for a minute.

1. All three jobs are held in the sandbox's queue until all are submitted, then released together,
   so the failure always comes while the other two steps wait for their jobs.
2. The failing step starts only once the other two are staging their inputs in (a stage-in that
   takes minutes), so the failure always comes before their jobs are submitted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from lexis_prefect.exceptions import HpcJobFailedError
from lexis_prefect.hpc import recorded_jobs, run_job_name
from lexis_prefect.models.heappe import JobState
from lexis_prefect.models.job import SEED_JOB, SingleHPCJob
from lexis_prefect.sandbox import SandboxProcess
from tests.e2e.conftest import demo_token, load_flow_module
from tests.e2e.test_job_step import RunRecord, dataset_ids, run_error
from tests.e2e.test_resilience import stop, wait_for

multi = load_flow_module("lexis_hpc_multi")

JOB_NAME = SEED_JOB["requirements"]["job_name"]
LONG_JOB_SECONDS = 60
#: From the release to the run's end: the failure (~1 s of job, a poll or two), cancelling the other two
#: jobs, the keeper's stop. Generous for a loaded machine, and still far below LONG_JOB_SECONDS.
ENDS_WITHIN_SECONDS = 25


def failing_for(failing_group: str, after: Callable[[], Awaitable[Any]] | None = None, inputs: bool = True):
    """`build_hpc_job_step`, with `FailingTemplate` as the command template of step `failing_group` only.

    That step starts once `after()` has returned, and stages nothing in if not `inputs`.
    """
    real_step = multi.build_hpc_job_step

    async def step(job: SingleHPCJob, keeper_id: str, group_id: str = "job") -> Any:
        if group_id == failing_group:
            if after is not None:
                await after()
            task = job.requirements.tasks[0].model_copy(update={"command_template_name": "FailingTemplate"})
            changes = {"requirements": job.requirements.model_copy(update={"tasks": [task]})}
            job = job.model_copy(update=changes if inputs else {**changes, "data_inputs": []})
        return await real_step(job, keeper_id, group_id=group_id)

    return step


def jobs_by_value(sandbox: SandboxProcess, run_key: str, values: list[str]) -> dict[str, dict[str, Any]]:
    """The run's HEAppE jobs in the sandbox, by parameter value."""
    names = {run_job_name(JOB_NAME, run_key, f"job-{value}"): value for value in values}
    return {names[j["name"]]: j for j in sandbox.jobs() if j["name"] in names}


async def test_a_failed_step_cancels_the_other_steps_and_their_jobs(lexis_env, monkeypatch):
    sandbox = lexis_env
    monkeypatch.setattr(multi, "build_hpc_job_step", failing_for("job-bad"))
    values = ["long1", "bad", "long2"]
    run_key = f"fanout-fail-{uuid.uuid4().hex[:8]}"
    datasets_before = dataset_ids(sandbox)

    def ours() -> dict[str, dict[str, Any]]:
        return jobs_by_value(sandbox, run_key, values)

    async def all_queued() -> bool:
        jobs = await asyncio.to_thread(ours)
        return len(jobs) == 3 and all(j["state"] in (JobState.Submitted, JobState.Queued) for j in jobs.values())

    sandbox.settings(queue_seconds=600, job_seconds=LONG_JOB_SECONDS)
    run = asyncio.create_task(
        multi.lexis_hpc_fanout(access_token=demo_token(sandbox), input_params=values, run_key=run_key, return_state=True)
    )
    try:
        await wait_for(all_queued, 60, "the three jobs to wait in the queue together")
        sandbox.settings(queue_seconds=0.1)  # released together: `bad` fails while the others run
        released = time.monotonic()
        state = await asyncio.wait_for(asyncio.shield(run), LONG_JOB_SECONDS)
        took = time.monotonic() - released
    finally:
        sandbox.settings(queue_seconds=0.1, job_seconds=1)
        await stop(run)
    jobs = ours()
    print(f"\nrelease -> run ended {state.name} in {took:.1f} s; jobs: { {v: JobState(j['state']).name for v, j in jobs.items()} }")

    # The run fails with the failing job's own error, not a secondary one.
    error = await run_error(state)
    assert isinstance(error, HpcJobFailedError), repr(error)
    assert error.job_id == jobs["bad"]["id"] and error.state == "Failed", repr(error)
    assert "simulated failure: input_param=bad" in str(error)
    assert f"HPC job {jobs['bad']['id']}" in (state.message or ""), state.message
    # The others were cancelled, not left to run (nor to finish): well before their minute was up.
    assert jobs["bad"]["state"] == JobState.Failed, jobs["bad"]
    for value in ("long1", "long2"):
        assert jobs[value]["state"] == JobState.Canceled, (value, jobs[value])
    assert took < ENDS_WITHIN_SECONDS, took
    assert dataset_ids(sandbox) == datasets_before, "a dataset was staged out"

    record = await RunRecord.read(state)
    steps = {run.name: run.state for run in record.flow_runs if run.id != record.flow_run_id}
    assert set(steps) == {"job-long1", "job-bad", "job-long2"}, steps
    assert steps["job-bad"].is_failed(), steps["job-bad"]
    for value in ("long1", "long2"):
        # Prefect ends a subflow whose coroutine is cancelled Crashed ("cancelled by the runtime environment").
        assert steps[f"job-{value}"].is_crashed() or steps[f"job-{value}"].is_cancelled(), steps[f"job-{value}"]
    task_states = record.task_states()
    assert "job-long1.stage_output[0]" not in task_states and "job-long2.stage_output[0]" not in task_states
    # The keeper outlived the steps: no step ran into its absence.
    texts = [log.message for log in record.logs] + [s.message or "" for s in steps.values()]
    assert not [t for t in texts if "no token keeper" in t], [t for t in texts if "no token keeper" in t]
    assert task_states["ref_token_stop"] == "Completed", task_states
    assert any("cancelled HEAppE job" in m for m in record.messages), "the steps' own cancel was not logged"
    assert not await recorded_jobs(run_key), "jobs still recorded after the steps stopped them"


async def test_a_failure_during_the_others_stage_in_removes_their_unsubmitted_jobs(lexis_env, monkeypatch):
    sandbox = lexis_env
    values = ["long1", "bad", "long2"]
    run_key = f"fanout-early-{uuid.uuid4().hex[:8]}"

    async def others_staging_in() -> None:
        async def created() -> bool:
            jobs = await asyncio.to_thread(jobs_by_value, sandbox, run_key, values)
            return {"long1", "long2"} <= set(jobs)

        await wait_for(created, 60, "the other two jobs to be created")
        await asyncio.sleep(1)  # their stage-in requests are out (and take minutes)

    monkeypatch.setattr(multi, "build_hpc_job_step", failing_for("job-bad", after=others_staging_in, inputs=False))
    sandbox.settings(staging_seconds=300, job_seconds=LONG_JOB_SECONDS)
    try:
        state = await asyncio.wait_for(
            multi.lexis_hpc_fanout(access_token=demo_token(sandbox), input_params=values, run_key=run_key, return_state=True),
            LONG_JOB_SECONDS,
        )
    finally:
        sandbox.settings(staging_seconds=0.1, job_seconds=1)
    jobs = jobs_by_value(sandbox, run_key, values)
    print(f"\nrun ended {state.name}; jobs: { {v: JobState(j['state']).name for v, j in jobs.items()} }")

    assert isinstance(await run_error(state), HpcJobFailedError)
    for value in ("long1", "long2"):
        # HEAppE cancels only submitted jobs: one never submitted is deleted (as a cancelled run's are).
        assert not jobs[value]["submitted"], (value, jobs[value])
        assert jobs[value]["state"] == JobState.Deleted, (value, jobs[value])
    assert not await recorded_jobs(run_key), "jobs still recorded for hooks that will not run"
