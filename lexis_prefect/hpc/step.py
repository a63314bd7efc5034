"""`build_hpc_job_step`, the subflow: create_job -> stage_input -> submit_job -> wait_for_job -> stage_output."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect import flow
from prefect.exceptions import Pause
from prefect.logging import get_run_logger

from lexis_prefect.config import PollPolicy
from lexis_prefect.exceptions import (
    AuthenticationError,
    HpcJobCancelledError,
    HpcJobFailedError,
    LexisAPIError,
    LexisTransportError,
    NoLocationError,
)
from lexis_prefect.hpc.calls import _session
from lexis_prefect.hpc.fanout import _end_turn
from lexis_prefect.hpc.jobs import _abandon, _candidates, _validated, create_job, submit_job
from lexis_prefect.hpc.results import HpcJobRef, HpcJobResult
from lexis_prefect.hpc.staging import stage_input, stage_output
from lexis_prefect.hpc.summary import job_summary
from lexis_prefect.hpc.suspend import RunWaits, run_waits
from lexis_prefect.hpc.waiting import wait_for_job
from lexis_prefect.keeper import RUN_STOPPING
from lexis_prefect.locations import LocationSession
from lexis_prefect.models.heappe import JobState
from lexis_prefect.models.job import SingleHPCJob
from lexis_prefect.resolve import JobRejected


@flow(
    name="build_hpc_job_step",
    flow_run_name="{group_id}",
    description="Stage a LEXIS job's inputs in, run it through HEAppE, stage its outputs out.",
)
async def build_hpc_job_step(
    # The dict alternative lets an invalid job through Prefect's own parameter check,
    # so that it is validated first and reported as JobValidationError, naming fields as `tasks[0]`.
    job: SingleHPCJob | dict[str, Any],
    keeper_id: str,
    group_id: str = "job",
    poll: PollPolicy | None = None,
    suspend: bool | None = None,
) -> HpcJobResult:
    """One HPC job with its data, as a subflow; each step shows as a task `<group_id>.<step>`.

    Args:
        job: the job (a `SingleHPCJob` or a dict of one; validated first).
        keeper_id: the run's token keeper, from `refresh_token`; the step uses its credentials.
        group_id: the step's name, prefixed to its task names (the seed's `group_id`).
        poll: how often to poll the job's state; defaults to `JOB_POLL`, 0.5 s growing by a tenth to 30 s.
        suspend: whether, in a deployment run, the run may suspend while this step waits for its job
            (`hpc.suspend`); None follows `LEXIS_SUSPEND` (default on). Off, the step polls in process.

    Raises:
        JobValidationError, NoLocationError, StagingFailedError,
        HpcJobFailedError, HpcJobCancelledError (with the tail of stderr).
    """
    started = time.monotonic()
    job = _validated(job)
    waits = await run_waits(keeper_id)
    waits.step_started()
    if waits.enabled and waits.resumed:  # a first attempt has none: no read for it
        await _close_earlier_attempts(keeper_id, group_id)
    try:
        return await _locate_and_run(job, keeper_id, group_id, poll, suspend, started, waits)
    finally:
        waits.step_ended()


async def _locate_and_run(
    job: SingleHPCJob, keeper_id: str, group_id: str, poll: PollPolicy | None, suspend: bool | None, started: float, waits: RunWaits
) -> HpcJobResult:
    reasons: dict[str, str] = {}
    candidates = _candidates(job, keeper_id)
    for location in candidates:
        # With another location to go to, a failing one is left at once; the last one is retried.
        create = create_job if location == candidates[-1] else create_job.with_options(retries=0)
        async with _session(keeper_id, location) as session:  # held to the end: the step's tasks share it
            try:
                ref = await create(job, location, keeper_id, group_id)
            except AuthenticationError:
                raise  # the user's token is refused: another location will not change that
            except (LexisTransportError, LexisAPIError, JobRejected) as exc:
                reasons[location] = str(exc)
                get_run_logger().warning("location %s cannot take the job: %s", location, exc)
                continue
            _end_turn()
            try:
                return await _run(job, ref, keeper_id, group_id, poll, suspend, started, session)
            except RUN_STOPPING:
                if waits.stopping_for_suspension:
                    raise  # stopped because the run suspends: the job runs on, the run comes back to it
                # Cancelled (the run, or a failed sibling in a fan-out), from stage-in on: the job
                # goes too. A failure leaves it alone: a retried or restarted run re-attaches to it.
                await asyncio.shield(_abandon(session, keeper_id, ref))
                raise
    raise NoLocationError(job.requirements.policy, reasons)


async def _run(
    job: SingleHPCJob,
    ref: HpcJobRef,
    keeper_id: str,
    group_id: str,
    poll: PollPolicy | None,
    suspend: bool | None,
    started: float,
    session: LocationSession,
) -> HpcJobResult:
    """The created job's life: stage in, submit, wait, stage out."""
    mark = time.monotonic()
    if await _submitted(session, ref):
        # Re-attached (a resumed or rerun run): its inputs are in, and the job may be reading them.
        get_run_logger().info("HEAppE job %s was submitted by an earlier attempt: inputs are staged", ref.job_id)
    else:
        await asyncio.gather(*(stage_input(job, ref, i, keeper_id, group_id) for i in range(len(job.data_inputs))))
    timings = {"stage_in": time.monotonic() - mark}
    await submit_job(ref, keeper_id, group_id)
    mark = time.monotonic()
    outcome = await wait_for_job(ref, keeper_id, group_id, poll, suspend)
    if outcome.suspended:  # Prefect stops the run at the next task boundary; this is the same stop
        raise Pause()
    timings["running"] = outcome.running_seconds
    timings["queued"] = max(0.0, time.monotonic() - mark - outcome.running_seconds)
    if outcome.state is not JobState.Finished:
        error = HpcJobFailedError if outcome.state is JobState.Failed else HpcJobCancelledError
        await job_summary(group_id, ref, outcome.state.name, [], timings, outcome.reason)
        raise error(ref.job_id, ref.location, outcome.state.name, outcome.reason, outcome.stderr_tail)
    mark = time.monotonic()
    outputs = list(
        await asyncio.gather(*(stage_output(job, ref, i, keeper_id, group_id) for i in range(len(job.data_outputs))))
    )
    timings["stage_out"] = time.monotonic() - mark
    timings["total"] = time.monotonic() - started
    timings = {k: round(v, 3) for k, v in timings.items()}
    await job_summary(group_id, ref, outcome.state.name, outputs, timings, None)
    return HpcJobResult(
        group_id=group_id,
        location=ref.location,
        job_id=ref.job_id,
        job_name=ref.name,
        state=outcome.state.name,
        output_datasets=outputs,
        output_dataset_ids=[path.rsplit("/", 1)[-1] for path in outputs],
        timings_seconds=timings,
    )


async def _close_earlier_attempts(keeper_id: str, group_id: str) -> None:
    """A suspended attempt of this step may have left its subflow run Running: Prefect reuses it when
    the resumed run calls the step again from the same place, but the Airflow shim's task runs call
    it from a new one each time. Such a run ends `Suspended` (type Cancelled: no hook runs for it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterName, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.context import FlowRunContext
    from prefect.states import Cancelled

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[build_hpc_job_step.name])),
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[group_id]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PAUSED])),
            ),
            limit=50,
        )
        for run in runs:
            if run.id != context.flow_run.id and run.parameters.get("keeper_id") == keeper_id:
                message = f"the run suspended while this step waited; the step went on in subflow run {context.flow_run.id}"
                await client.set_flow_run_state(run.id, Cancelled(name="Suspended", message=message), force=True)


async def _submitted(session: LocationSession, ref: HpcJobRef) -> bool:
    """Whether the job is past Configuring, as the list read that found it showed (no new call)."""
    info = (await session.jobs(since=session.opened_at)).get(ref.job_id)
    return info is not None and info.state not in (JobState.Configuring, JobState.Deleted)
