"""The HEAppE job's own tasks: choose locations, create (or re-attach), submit, and stop it."""

from __future__ import annotations
import time
from typing import Any
from prefect.logging import get_run_logger
from lexis_prefect.heappe import HEAppEClient
from lexis_prefect.keeper import keeper
from lexis_prefect.locations import LocationSession
from lexis_prefect.models.heappe import JobState, SubmittedJobInfo
from lexis_prefect.models.job import SingleHPCJob
from lexis_prefect.resolve import legacy_job_name, resolve_specification, run_job_name
from lexis_prefect.hpc.calls import _first_try, _session, _step_task, _unsure
from lexis_prefect.hpc.records import _record, _unrecord, read_record, save_record
from lexis_prefect.hpc.suspend import run_waits
from lexis_prefect.hpc.results import HpcJobRef


def _validated(job: SingleHPCJob | dict[str, Any]) -> SingleHPCJob:
    """Fail before any HTTP call if the job does not validate, naming each bad field."""
    return job if isinstance(job, SingleHPCJob) else SingleHPCJob.model_validate(job)


def _candidates(job: SingleHPCJob, keeper_id: str) -> list[str]:
    """The locations to try, in order: the first only (`preferred`) or all of them (`failover`)."""
    endpoints = keeper(keeper_id).credentials.endpoints
    names = [loc.location_name for loc in job.requirements.locations]
    candidates = names[:1] if job.requirements.policy == "preferred" else names
    for name in candidates:
        endpoints.heappe_url(name)  # unknown locations fail here, with the configuration to fix
    get_run_logger().info("policy %s: trying %s", job.requirements.policy, ", ".join(candidates))
    return candidates


@_step_task("create_job", "{group_id}.create_job[{location}]")
async def create_job(job: SingleHPCJob, location: str, keeper_id: str, group_id: str) -> HpcJobRef:
    """Create the HEAppE job, or find the one this run already created (re-attach).

    The lookup is one `ListJobsForCurrentUser` shared by the run's steps at this location:
    any read sent since the session opened shows the jobs of earlier attempts of the run;
    a retried task (whose own create may have landed) and an unsure create need a newer one.
    """
    log = get_run_logger()
    name = run_job_name(job.requirements.job_name, keeper_id, group_id)
    names = {name, legacy_job_name(job.requirements.job_name, keeper_id, group_id)}
    async with _session(keeper_id, location) as session:
        async def ours(since: float | None = None) -> SubmittedJobInfo | None:
            jobs = await session.jobs(since=time.monotonic() if since is None else since)
            return next((j for j in jobs.values() if j.name in names and j.state is not JobState.Deleted), None)

        info = await ours(session.opened_at if _first_try() else None)
        if info is not None:
            log.info("re-attached to HEAppE job %s (%s), created by an earlier attempt", info.id, info.state.name)
        else:
            spec = resolve_specification(job, location, await session.clusters(), name)
            info = await _unsure(lambda: session.heappe.create_job(spec), f"creating job {name!r}", done=ours)
            log.info("created HEAppE job %s %r at %s", info.id, name, location)
    ref = HpcJobRef(
        location=location,
        heappe_url=keeper(keeper_id).credentials.endpoints.heappe_url(location),
        job_id=info.id,
        task_ids=[t.id for t in info.tasks],
        name=info.name or name,
    )
    if await read_record(keeper_id, ref) is None:  # a re-attached job's record holds what its wait saw
        await _record(keeper_id, ref, group_id=group_id, **(await run_waits(keeper_id)).record_fields())
    return ref


@_step_task("submit_job", "{group_id}.submit_job")
async def submit_job(ref: HpcJobRef, keeper_id: str, group_id: str) -> None:
    """Submit the job, unless an earlier attempt already did."""
    async with _session(keeper_id, ref.location) as session:
        heappe = session.heappe
        info = await heappe.job_info(ref.job_id)
        if info.state is not JobState.Configuring:
            get_run_logger().info("HEAppE job %s is already %s: not submitting again", ref.job_id, info.state.name)
            return
        async def submitted() -> SubmittedJobInfo | None:
            info = await heappe.job_info(ref.job_id)
            return None if info.state is JobState.Configuring else info

        await _unsure(lambda: heappe.submit_job(ref.job_id), f"submitting job {ref.job_id}", done=submitted)
    get_run_logger().info("submitted HEAppE job %s", ref.job_id)


async def _stop_job(heappe: HEAppEClient, job_id: int) -> bool:
    """Make sure the job does not run on: cancel it, or delete it if it was never submitted.

    HEAppE cancels only submitted, queued or running jobs; one still Configuring (a run stopped
    during stage-in) is deleted instead, which also removes its job directory. False if the job
    had already ended.
    """
    info = await heappe.job_info(job_id)
    if info.is_terminal:
        return False
    if info.state is JobState.Configuring:
        await heappe.delete_job(job_id)
    else:
        await heappe.cancel_job(job_id)
    return True


async def _abandon(session: LocationSession, keeper_id: str, ref: HpcJobRef) -> None:
    """The step is being cancelled: its job must not run on, whatever point it had reached.

    Configuring (stage-in) jobs are deleted, submitted or running ones cancelled, ended ones
    left alone. Once that is done the job is unrecorded; if it could not be done, the record
    stays, marked `cancel_requested`, for the run's cancellation or crash hook to try again
    (a crash hook leaves the jobs of a killed run running, but not one the run meant to cancel).
    """
    log = get_run_logger()
    try:
        if await _stop_job(session.heappe, ref.job_id):
            log.warning("cancelled HEAppE job %s at %s", ref.job_id, ref.location)
        await _unrecord(keeper_id, ref)
    except Exception as exc:  # best effort: the exception being raised is the cancellation
        log.error("could not cancel HEAppE job %s: %s", ref.job_id, exc)
        try:
            if (record := await read_record(keeper_id, ref)) is not None:
                await save_record(record.model_copy(update={"cancel_requested": True}))
        except Exception as again:
            log.error("could not mark HEAppE job %s for its run's hooks to cancel: %s", ref.job_id, again)
