"""The HPC job step: `build_hpc_job_step`, a Prefect subflow of thin tasks over the LEXIS clients.

create_job -> stage_input (parallel) -> submit_job -> wait_for_job -> stage_output (parallel)
-> HpcJobResult; the job is validated and its locations chosen before any of them, as plain
calls (a task run each cost more than the work).

The steps of a run share one HEAppE client per location (`locations.LocationSession`):
one session code, one connection pool, and one list read serving the polls of many jobs.
A task that fails for want of an answer (each call already retried by its client) is
retried as a whole (`STEP_RETRIES`): every task can be repeated safely, as below.

Re-attaching instead of resubmitting: the HEAppE job gets a name derived from
the flow run and the step (`<job_name> [<digest>]`), and `create_job` first looks
for a job of that name. A retried or restarted run, or a create whose answer
was lost, finds its job again; submit is skipped when the job is past
Configuring, and a stage-out already done is served from Prefect's result
cache. A job that Failed stays failed for that run: start a new run to retry.
A non-idempotent call that got no answer (or a 5xx) is repeated only once the
server shows it did not happen (`_unsure`).

Failed or cancelled jobs: the subflow fails with the tail of stderr, outputs
are NOT staged out (partial results must not pass for results), and the job's
directory is left in HEAppE for inspection.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, TypeVar

from prefect import flow, task
from prefect.artifacts import acreate_markdown_artifact, acreate_progress_artifact, aupdate_progress_artifact
from prefect.context import SettingsContext, TaskRunContext, get_settings_context
from prefect.logging import get_run_logger
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY
from prefect.variables import Variable
from pydantic import BaseModel, ConfigDict, Field

from lexis_prefect.config import PollPolicy
from lexis_prefect.ddi import DDIDatasetClient, DDIStagingClient
from lexis_prefect.exceptions import (
    AuthenticationError,
    ConfigurationError,
    HpcJobCancelledError,
    HpcJobFailedError,
    LexisAPIError,
    LexisTransportError,
    NoLocationError,
    StagingFailedError,
)
from lexis_prefect.heappe import HEAppEClient
from lexis_prefect.keeper import RUN_STOPPING, forget_offline_token, keeper, restore_keeper, stop_keeper, storage_key
from lexis_prefect.locations import LocationSession, location_session
from lexis_prefect.models.ddi import (
    DatasetHit,
    DatasetMetadata,
    StageRequest,
    alternate_identifier_metadata,
    alternate_identifier_query,
    dataset_path,
    within_zone,
    zone_path,
)
from lexis_prefect.models.heappe import FileType, JobDirectory, JobState, SubmittedJobInfo, TaskFileOffset
from lexis_prefect.models.job import DataInput, DataOutput, SingleHPCJob, job_relative
from lexis_prefect.resolve import JobRejected, legacy_job_name, resolve_specification, run_job_name

__all__ = [
    "HpcJobRef",
    "HpcJobResult",
    "build_hpc_job_step",
    "cancel_hpc_jobs",
    "cancel_recorded_jobs",
    "hpc_flow",
    "recorded_jobs",
]

logger = logging.getLogger("lexis_prefect.hpc")
T = TypeVar("T")

#: Staging takes seconds to hours: poll soon, then less and less often.
STAGING_POLL = PollPolicy(interval_seconds=0.1, max_interval_seconds=30, backoff_factor=1.5)
#: Lines of one stream logged in one record at most: a chatty job cannot flood the server.
MAX_LINES_PER_RECORD = 200
MAX_CHARS_PER_RECORD = 16_000
STDERR_TAIL_CHARS = 2_000
#: Consecutive failed polls (each already retried by the client) before the wait gives up.
MAX_POLL_FAILURES = 10
#: Attempts at a non-idempotent call whose earlier attempts provably did not happen.
UNSURE_ATTEMPTS = 3
#: Longest wait for a lost stage-out's copy to show before duplicates are looked for.
MAX_DUPLICATE_GRACE_SECONDS = 60.0
#: Whole-task retries of a step's task after a passing failure (no answer, 5xx, 429), and the waits.
STEP_RETRIES = 2
STEP_RETRY_DELAYS = [5.0, 20.0]
#: The job's state polls: a job's end is seen within about a tenth of its age (x1.1), and within
#: 30 s once it is 5 minutes old. Against x1.5 that is ~30 more state reads in the first 5 minutes,
#: the same after; at many jobs per location one list read per second serves them all (`locations`).
JOB_POLL = PollPolicy(interval_seconds=0.5, max_interval_seconds=30, backoff_factor=1.1)
#: The job's stdout / stderr / progress reads while it runs: less often than its state (one call per
#: job each time, not shared), and once more when it ends, so no output is missed.
TAIL_POLL = PollPolicy(interval_seconds=1.0, max_interval_seconds=30, backoff_factor=1.5)
#: Job records read per request by `recorded_jobs`: Prefect's largest page (PREFECT_API_DEFAULT_LIMIT).
RECORDS_PAGE = 200
#: How many job steps of one fan-out (`in_turn`) may be starting at once: creating their
#: subflow run and HEAppE job. Measured in bench/README.md (fan-out, N=1000).
STEP_STARTS = 16


class HpcJobRef(BaseModel):
    """Where a created HEAppE job is: enough to find it again, and nothing secret."""

    model_config = ConfigDict(frozen=True)

    location: str
    heappe_url: str
    job_id: int
    task_ids: list[int]
    name: str


class JobOutcome(BaseModel):
    """How the HEAppE job ended, as `wait_for_job` saw it."""

    state: JobState
    reason: str | None = None
    stderr_tail: str = ""
    running_seconds: float = 0.0


class HpcJobResult(BaseModel):
    """What `build_hpc_job_step` returns."""

    group_id: str
    location: str
    job_id: int
    job_name: str
    state: str = Field(description="HEAppE job state name, e.g. 'Finished'.")
    output_datasets: list[str] = Field(
        description="Absolute iRODS paths of the new output datasets (/<zone>/project/proj<md5>/<dataset id>)."
    )
    output_dataset_ids: list[str]
    timings_seconds: dict[str, float] = Field(description="stage_in, queued, running, stage_out, total.")


def _session(keeper_id: str, location: str):
    """The run's shared HEAppE session at `location` (the run's credentials are its keeper's)."""
    return location_session(keeper(keeper_id), location)


def _ddi(keeper_id: str):
    kept = keeper(keeper_id)
    return kept.credentials.get_client("ddi", access_token=kept.access_token)


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """A step's task is retried whole when it failed for want of an answer: no response, 5xx, 429."""
    exc = state.data
    if isinstance(exc, LexisTransportError):
        return True
    return isinstance(exc, LexisAPIError) and not isinstance(exc, AuthenticationError) and (exc.status >= 500 or exc.status == 429)


def _step_task(name: str, run_name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """`@task` for a step's task: named `<group_id>.<step>`, retried after passing failures."""
    return task(
        name=name,
        task_run_name=run_name,
        retries=STEP_RETRIES,
        retry_delay_seconds=STEP_RETRY_DELAYS,
        retry_condition_fn=_transient,
        **options,
    )


# -- tasks -------------------------------------------------------------------------------------


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
    await _record(keeper_id, ref)
    return ref


async def _unsure(call: Callable[[], Awaitable[T]], what: str, done: Callable[[], Awaitable[T | None]] | None) -> T:
    """Make a non-idempotent call, which the client never repeats once it may have arrived.

    After an unsure failure (no answer, or 5xx), `done()` asks the server whether it
    happened anyway (and returns its outcome); if not, the call is made again, up to
    `UNSURE_ATTEMPTS` times. A 4xx is a clear no and is raised at once.
    """
    for attempt in range(1, UNSURE_ATTEMPTS + 1):
        try:
            return await call()
        except (LexisTransportError, LexisAPIError) as exc:
            if (isinstance(exc, LexisAPIError) and exc.status < 500) or attempt == UNSURE_ATTEMPTS:
                raise
            outcome = await done() if done is not None else None
            if outcome is not None:
                return outcome
            get_run_logger().warning("%s: %s; trying again (%d/%d)", what, exc, attempt + 1, UNSURE_ATTEMPTS)
            await asyncio.sleep(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _jobs_prefix(keeper_id: str) -> str:
    return f"lexis-job-{storage_key(keeper_id)}-"


def _job_variable(keeper_id: str, ref: HpcJobRef) -> str:
    """One Variable per job: steps running at once never write the same one (a shared list raced,
    and Prefect caps a Variable at 5,000 characters: about 40 jobs)."""
    return _jobs_prefix(keeper_id) + hashlib.sha1(f"{ref.heappe_url}|{ref.job_id}".encode()).hexdigest()[:12]


async def _record(keeper_id: str, ref: HpcJobRef) -> None:
    """Keep the job where a cancellation or crash hook (maybe in another process) can find it."""
    await Variable.aset(_job_variable(keeper_id, ref), ref.model_dump(mode="json"), overwrite=True)


async def _unrecord(keeper_id: str, ref: HpcJobRef) -> None:
    """The job has ended: hooks need not look after it any more."""
    await Variable.aunset(_job_variable(keeper_id, ref))


async def recorded_jobs(keeper_id: str) -> list[HpcJobRef]:
    """The run's jobs that may still be active (recorded at creation, unrecorded at their end)."""
    from prefect.client.orchestration import get_client

    found: list[HpcJobRef] = []
    mine, seen = re.compile(re.escape(_jobs_prefix(keeper_id)) + "[0-9a-f]{12}"), 0
    async with get_client() as client:
        while True:
            page = (
                await client.request(
                    "POST",
                    "/variables/filter",
                    json={"variables": {"name": {"like_": _jobs_prefix(keeper_id)}}, "offset": seen, "limit": RECORDS_PAGE},
                )
            ).json()
            seen += len(page)
            # `like_` matches anywhere in the name: run key "a" must not see run key "a-b"'s jobs.
            found += [HpcJobRef.model_validate(v["value"]) for v in page if mine.fullmatch(v["name"])]
            if len(page) < RECORDS_PAGE:
                return found


@_step_task("stage_input", "{group_id}.stage_input[{index}]")
async def stage_input(job: SingleHPCJob, ref: HpcJobRef, index: int, keeper_id: str, group_id: str) -> str:
    """Copy one input dataset from DDI into the job's directory; returns the absolute path on the cluster.

    The target is `<SharedBasepath>/<first task id>/<target_path>`: the staging API takes HPC
    paths as absolute paths on the cluster (see `_job_path`).
    """
    data: DataInput = job.data_inputs[index]
    credentials = keeper(keeper_id).credentials
    directory = await _job_directory(keeper_id, ref)
    target = _job_path(directory, ref, data.target_path)
    request = StageRequest(
        source_system=data.source.resource,
        source_path=dataset_path(data.source.info.dataset_id, job.requirements.project_shortname, data.source.info.path),
        target_system=credentials.endpoints.hpc_staging_system(ref.location),
        target_path=target,
        heappe_url=ref.heappe_url,
        job_id=ref.job_id,
        task_id=ref.task_ids[0],
    )
    async with _ddi(keeper_id) as ddi:
        # Copying the same data into the same place twice is harmless: an unsure submit is repeated.
        request_id = await _unsure(lambda: ddi.stage(request), f"staging input {index}", done=None)
        await ddi.wait(request_id, poll=STAGING_POLL)
    # The answer's target_path is `<ServerHostname>:/<target>` (ddi-service-apis 9e96c41
    # staging/staging/staging_api.py `nfs_to_local_hpc`): a remote spec, not a job path; not returned.
    get_run_logger().info("staged dataset %s into the job directory at %r (%s)", data.source.info.dataset_id, data.target_path, target)
    return target


def _job_path(directory: JobDirectory, ref: HpcJobRef, path: str) -> str:
    """The absolute cluster path of a job step's relative `path`: `<SharedBasepath>/<first task id>/<path>`.

    The staging API copies to and from `<ServerHostname>:/` + the path it is given, using neither
    the HPC system's base path nor the HEAppE job (ddi-service-apis 9e96c41 staging/staging/staging_api.py
    `nfs_to_local_hpc`, `local_hpc_to_nfs`), so the path must be absolute, with its leading `/`
    (cp_ssh.py splits `host:/` + `/abs` into `host` and `/abs`; without the `/` it would be relative to
    the cluster account's home). `SharedBasepath` is the HEAppE job directory, and the first task's
    directory is where the job's paths are relative to, as the Yorc DDI plugin does
    (yorc-ddi-plugin 03d54ff common/ddi_execution.go: `path.Join(<file_transfer.path>, taskID)`).
    `path` is normalised (`models.job.job_relative`: no `..`, no trailing `/`: a trailing `/` would
    make the server copy the directory itself instead of its content, local_hpc_to_nfs's basename).
    """
    relative = job_relative(path)
    absolute = directory.task_path(ref.task_ids[0], relative)
    if not absolute.startswith("/"):
        # HEAppE's SharedBasepath is built from an absolute storage path; anything else would be read
        # relative to the account's home by the staging API's scp: refuse rather than copy elsewhere.
        raise LexisAPIError(
            f"HEAppE job {ref.job_id}: SharedBasepath {directory.path!r} is not an absolute path",
            service="heappe",
            method="POST",
            path="FileTransfer/RequestFileTransfer",
            status=200,
        )
    return absolute


#: Job directories known to this process, by (HEAppE URL, job id, job name); bounded.
_JOB_DIRECTORIES: dict[tuple[str, int, str], JobDirectory] = {}
_JOB_DIRECTORY_LOCKS: dict[tuple[tuple[str, int, str], int], asyncio.Lock] = {}
_JOB_DIRECTORIES_KEPT = 1024


async def _job_directory(keeper_id: str, ref: HpcJobRef) -> JobDirectory:
    """The job's directory (HEAppE `RequestFileTransfer`), asked once per job and process.

    Each ask costs HEAppE a temporary key (V6.3.2 refuses a job's seventh, closed ones included:
    `HEAppEClient.job_directory`), so a step's parallel stage-ins and its stage-outs share one.
    Not stored in the run: a re-attached or restarted run (another process) asks again, which is
    always possible as long as the job exists; the job's directory never changes.
    """
    key = (ref.heappe_url, ref.job_id, ref.name)
    if (known := _JOB_DIRECTORIES.get(key)) is not None:
        return known
    lock = _JOB_DIRECTORY_LOCKS.setdefault((key, id(asyncio.get_running_loop())), asyncio.Lock())
    async with lock:
        if (known := _JOB_DIRECTORIES.get(key)) is not None:
            return known
        async with _session(keeper_id, ref.location) as session:
            directory = await session.heappe.job_directory(ref.job_id)
        if len(_JOB_DIRECTORIES) >= _JOB_DIRECTORIES_KEPT:
            _JOB_DIRECTORIES.pop(next(iter(_JOB_DIRECTORIES)))
        _JOB_DIRECTORIES[key] = directory
    _JOB_DIRECTORY_LOCKS.pop((key, id(asyncio.get_running_loop())), None)
    return directory


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


class _Tail:
    """Follows every task's stdout and stderr by offset, and the progress file."""

    def __init__(self, ref: HpcJobRef) -> None:
        self.offsets = {
            (task_id, file_type): 0
            for task_id in ref.task_ids
            for file_type in (FileType.StandardOutputFile, FileType.StandardErrorFile, FileType.ProgressFile)
        }
        self.stderr = ""
        self.progress: float | None = None

    async def read(self, heappe: HEAppEClient, job_id: int) -> dict[str, str]:
        """New text per stream since the last read, e.g. {'stdout (task 2)': '...'}."""
        request = [TaskFileOffset(submitted_task_info_id=t, file_type=f, offset=o) for (t, f), o in self.offsets.items()]
        fresh: dict[str, str] = {}
        for part in await heappe.download_file_parts(job_id, request):
            if not part.content:
                continue
            # HEAppE answers the offset it was sent, where the chunk starts; the file goes on after it.
            self.offsets[(part.submitted_task_info_id, part.file_type)] = part.offset + len(part.content.encode())
            if part.file_type is FileType.ProgressFile:
                numbers = re.findall(r"\d+(?:\.\d+)?", part.content)
                self.progress = min(100.0, float(numbers[-1])) if numbers else self.progress
                continue
            if part.file_type is FileType.StandardErrorFile:
                self.stderr = (self.stderr + part.content)[-STDERR_TAIL_CHARS:]
            stream = "stdout" if part.file_type is FileType.StandardOutputFile else "stderr"
            fresh[f"{stream} (task {part.submitted_task_info_id})"] = part.content
        return fresh


def _log_output(log: Any, stream: str, text: str) -> None:
    """One log record per stream per poll, capped in lines and characters."""
    lines = text.rstrip("\n").splitlines()
    shown, hidden = lines[:MAX_LINES_PER_RECORD], len(lines) - MAX_LINES_PER_RECORD
    body = "\n".join(shown)[:MAX_CHARS_PER_RECORD]
    more = f"\n... {hidden} more line(s) not shown (the whole file stays in the job directory)" if hidden > 0 else ""
    (log.warning if stream.startswith("stderr") else log.info)("%s:\n%s%s", stream, body, more)


@task(name="wait_for_job", task_run_name="{group_id}.wait_for_job")
async def wait_for_job(ref: HpcJobRef, keeper_id: str, group_id: str, poll: PollPolicy | None = None) -> JobOutcome:
    """Follow the job to its end: state changes and output in the logs, progress as an artifact.

    If this wait is cancelled, the step cancels the HEAppE job (`build_hpc_job_step`).
    Not retried as a task: it rides out up to `MAX_POLL_FAILURES` failed polls in a row itself.
    """
    log = get_run_logger()
    poll = poll or JOB_POLL
    progress_id = await acreate_progress_artifact(
        0.0, key=_artifact_key(group_id, "progress"), description=f"HEAppE job {ref.job_id} at {ref.location}"
    )
    async with _session(keeper_id, ref.location) as session:
        watch = _Watch(ref, log, progress_id)
        with session.watching(ref.job_id):
            info = await watch.follow(session, poll)
    await _unrecord(keeper_id, ref)
    if info.state is JobState.Finished:
        await aupdate_progress_artifact(progress_id, 100.0)
    return JobOutcome(
        state=info.state,
        reason=next((t.error_message for t in info.tasks if t.error_message), None),
        stderr_tail=watch.tail.stderr,
        running_seconds=0.0 if watch.running_since is None else round(time.monotonic() - watch.running_since, 3),
    )


class _Watch:
    """One job's wait: its polls, what it logged, and its progress."""

    def __init__(self, ref: HpcJobRef, log: Any, progress_id: Any) -> None:
        self.ref, self.log, self.progress_id = ref, log, progress_id
        self.tail = _Tail(ref)
        self.tail_waits = TAIL_POLL.intervals()
        self.tail_due = -math.inf
        self.shown_progress = 0.0
        self.last_state: JobState | None = None
        self.running_since: float | None = None

    async def follow(self, session: LocationSession, poll: PollPolicy) -> SubmittedJobInfo:
        """Poll until the job ends; returns its last info."""
        failures = 0
        for interval in poll.intervals():
            try:
                info = await session.job_info(self.ref.job_id)
                fresh = await self._read_tail(session, info)
                failures = 0
            except (LexisTransportError, LexisAPIError) as exc:
                # The job runs on whether or not we can see it: ride out an outage.
                failures += 1
                if failures >= MAX_POLL_FAILURES or (isinstance(exc, LexisAPIError) and exc.status < 500):
                    raise
                self.log.warning("cannot read HEAppE job %s (%d/%d): %s", self.ref.job_id, failures, MAX_POLL_FAILURES, exc)
                await asyncio.sleep(interval)
                continue
            await self._show(info, fresh)
            if info.is_terminal:
                return info
            await asyncio.sleep(interval)
        raise AssertionError("unreachable")  # pragma: no cover (the intervals never end)

    async def _read_tail(self, session: LocationSession, info: SubmittedJobInfo) -> dict[str, str]:
        """The job's new output, when it is due (`TAIL_POLL`) and always once the job has ended."""
        # Queued or submitted jobs have written nothing yet: their files are not read.
        if not _has_output(info.state) or (not info.is_terminal and time.monotonic() < self.tail_due):
            return {}
        fresh = await self.tail.read(session.heappe, self.ref.job_id)
        self.tail_due = time.monotonic() + next(self.tail_waits)
        return fresh

    async def _show(self, info: SubmittedJobInfo, fresh: dict[str, str]) -> None:
        if info.state is not self.last_state:
            self.log.info("HEAppE job %s: %s", self.ref.job_id, info.state.name)
            self.last_state = info.state
            if info.state is JobState.Running and self.running_since is None:
                self.running_since = time.monotonic()
        for stream, text in fresh.items():
            _log_output(self.log, stream, text)
        if self.tail.progress is not None and self.tail.progress != self.shown_progress:
            self.shown_progress = self.tail.progress
            await aupdate_progress_artifact(self.progress_id, self.shown_progress)


def _has_output(state: JobState) -> bool:
    return state in (JobState.Running, JobState.Finished, JobState.Failed, JobState.Canceled)


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
    stays for the run's cancellation or crash hooks to try again.
    """
    log = get_run_logger()
    try:
        if await _stop_job(session.heappe, ref.job_id):
            log.warning("cancelled HEAppE job %s at %s", ref.job_id, ref.location)
        await _unrecord(keeper_id, ref)
    except Exception as exc:  # best effort: the exception being raised is the cancellation
        log.error("could not cancel HEAppE job %s: %s", ref.job_id, exc)


@_step_task(
    "stage_output",
    "{group_id}.stage_output[{index}]",
    # A stage-out creates a dataset: a retried run must reuse the one it made, not make another.
    cache_key_fn=lambda context, parameters: _stage_out_key(parameters["ref"], parameters["index"]),
    persist_result=True,
)
async def stage_output(job: SingleHPCJob, ref: HpcJobRef, index: int, keeper_id: str, group_id: str) -> str:
    """Copy one result path of the job's directory into a new DDI dataset; returns the dataset's path.

    The path is the dataset collection's absolute iRODS path, `/<zone>/project/proj<md5>/<dataset id>`
    (`/<zone>/user/proj<md5>/<user>/<dataset id>` for user access): the staging API's answer,
    without the `/<file>` it appends for a single-file source.
    """
    data: DataOutput = job.data_outputs[index]
    kept = keeper(keeper_id)
    credentials, username = kept.credentials, kept.username
    info = data.target.info
    if job_relative(info.path) != ".":
        get_run_logger().warning("data_outputs[%d].target.info.path %r: datasets are created at their root", index, info.path)
    marker = _stage_out_key(ref, index)
    directory = await _job_directory(keeper_id, ref)
    container = zone_path(info.access, job.requirements.project_shortname, username)
    request = StageRequest(
        source_system=credentials.endpoints.hpc_staging_system(ref.location),
        source_path=_job_path(directory, ref, data.source_path),
        target_system=data.target.resource,
        target_path=_stage_out_target(container, marker),
        metadata=DatasetMetadata(
            title=info.title,
            resource_type=info.dataset_type,
            publication_year=str(datetime.now(timezone.utc).year),
            creator=[username] if username else [],
            # The dataset's tag: a stage-out whose answer was lost can be found by it.
            **alternate_identifier_metadata(marker),
        ),
        heappe_url=ref.heappe_url,
        job_id=ref.job_id,
        task_id=ref.task_ids[0],
    )
    async with _ddi(keeper_id) as ddi, _OutputDatasets(keeper_id, request, marker, container) as datasets:
        path = await datasets.earlier(ddi)
        if path is not None:
            get_run_logger().info("output %d was staged out by an earlier attempt: DDI dataset %s", index, path)
            return path
        started, unsure = time.monotonic(), not _first_try()

        async def lost() -> None:
            """`_unsure` asks this after a failure that may have landed: note it, and stage again."""
            nonlocal unsure
            unsure = True

        request_id = await _unsure(
            lambda: ddi.stage(request), f"staging output {index} (an earlier try is looked for by its tag)", done=lost
        )
        try:
            status = await ddi.wait(request_id, poll=STAGING_POLL)
        except StagingFailedError:
            # The server creates (and tags) the dataset before copying into it, and leaves it when the
            # copy fails (ddi-service-apis 9e96c41 staging/staging/irods_transfer.py
            # `initiate_staging_zone_to_irods_transfer`): a later attempt must not take it for done.
            await datasets.discard(ddi)
            raise
        path = _dataset_collection(status.target_path or "", container)
        if unsure:  # an earlier try may have landed too: keep one dataset
            await datasets.keep_only(path, ddi, grace=min(time.monotonic() - started, MAX_DUPLICATE_GRACE_SECONDS))
    get_run_logger().info("staged %r out to DDI dataset %s", data.source_path, path)
    return path


def _stage_out_target(container: str, marker: str) -> str:
    """Where a stage-out writes: the access level's collection, or a dataset collection of ours below it.

    The staging API makes a new dataset (`<uuid1>`) only under a target of exactly 4 `/`-parts once
    `/<zone>/` is prepended, i.e. `project/proj<md5>` or `public/proj<md5>`; any other target is
    written into directly (ddi-service-apis 9e96c41 staging/staging/irods_transfer.py
    `initiate_staging_zone_to_irods_transfer`). The user collection `user/proj<md5>/<user>` has 5, so
    for it the dataset collection is named here, after the marker (created if missing; a repeat
    writes into the same one), and the search lists it as a dataset (a direct child, irodsapi/demo/dataset.py).
    """
    if len(container.split("/")) == 2:
        return container
    return f"{container}/{uuid.uuid5(uuid.NAMESPACE_URL, marker)}"


def _dataset_collection(answer: str, container: str) -> str:
    """The dataset collection `/<zone>/<container>/<id>` of a completed stage-out's `target_path`.

    The answer is `/<zone>/<container>/<id>`, or `.../<id>/<file>` for a single-file source
    (irods_transfer.py `initiate_staging_zone_to_irods_transfer`); anything else is not understood.
    """
    parts = [p for p in answer.split("/") if p]
    inner = container.split("/")
    if len(parts) < len(inner) + 2 or parts[1 : 1 + len(inner)] != inner:
        raise LexisAPIError(
            f"ddi stage: completed with target_path {answer!r}, not a dataset under /<zone>/{container}",
            service="ddi",
            method="GET",
            path="/stage/<request id>",
            status=200,
        )
    return "/" + "/".join(parts[: 2 + len(inner)])


def _first_try() -> bool:
    """Whether this is the task run's first attempt (a retry may follow one whose call landed)."""
    context = TaskRunContext.get()
    return context is None or context.task_run.run_count <= 1


class _OutputDatasets:
    """The datasets a stage-out made, found by its tag through the DDI dataset search.

    The staging API has no idempotency key and cannot be asked about a request whose answer
    was lost. So: before staging, reuse a dataset an earlier attempt made; after
    a stage-out that had to be repeated, wait as long as ours took (an earlier copy started
    before ours) and delete any other dataset with the same tag. Without a dataset API (no
    `dataset_url`), a repeated stage-out may leave a duplicate, and a warning says so.
    Limit [I]: the published server creates the tagged collection before it copies into it
    (irods_transfer.py `initiate_staging_zone_to_irods_transfer`), so a copy still under way is
    visible to the search with part of its files, and `earlier` cannot tell it from a finished one;
    a failed copy's leftover is deleted (`discard`).

    Datasets are compared as `/<zone>/<container>/<internalID>`, the form of the staging answer
    (the search's `location` gives zone and internalID); they are deleted by the path `/delete`
    wants, `<container>/<internalID>`, relative to the system's base path (staging_api.py `delete_irods`).
    """

    def __init__(self, keeper_id: str, request: StageRequest, marker: str, container: str) -> None:
        kept = keeper(keeper_id)
        self.request, self.query, self.container = request, alternate_identifier_query(marker), container
        try:
            self.client: DDIDatasetClient | None = kept.credentials.get_client("dataset", access_token=kept.access_token)
        except ConfigurationError:
            self.client = None

    async def __aenter__(self) -> _OutputDatasets:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.client is not None:
            await self.client.aclose()

    def _path(self, hit: DatasetHit) -> str:
        return f"/{hit.location.zone}/{self.container}/{hit.location.internal_id}"

    async def _paths(self) -> list[str]:
        if self.client is None:
            return []
        hits = await self.client.search(self.query)
        # Only datasets of our container: the tag is ours, but a search lists every access level.
        return sorted({self._path(hit) for hit in hits if self._in_container(hit)})

    def _in_container(self, hit: DatasetHit) -> bool:
        access = self.container.split("/", 1)[0]
        return hit.location.access == access

    async def earlier(self, ddi: DDIStagingClient) -> str | None:
        """A dataset an earlier attempt made, if any (and only one is kept)."""
        paths = await self._paths()
        if paths:
            await self._delete_all_but(paths[0], paths, ddi)
        return paths[0] if paths else None

    async def keep_only(self, path: str, ddi: DDIStagingClient, grace: float) -> None:
        """After a repeated stage-out: give an earlier copy `grace` seconds to show, then keep `path` only."""
        if self.client is None:
            get_run_logger().warning("no DDI dataset API configured: a duplicate of dataset %s may exist", path)
            return
        await asyncio.sleep(grace)
        await self._delete_all_but(path, await self._paths(), ddi)

    async def discard(self, ddi: DDIStagingClient) -> None:
        """After a failed stage-out: delete every dataset with our tag (best effort, logged)."""
        try:
            await self._delete_all_but(None, await self._paths(), ddi)
        except Exception as exc:  # the stage-out's own failure is what gets raised
            get_run_logger().warning("could not delete the dataset a failed stage-out left: %s", exc)

    async def _delete_all_but(self, path: str | None, paths: list[str], ddi: DDIStagingClient) -> None:
        for other in (p for p in paths if p != path):
            try:
                await ddi.wait(await ddi.delete(self.request.target_system, within_zone(other)), operation="delete", poll=STAGING_POLL)
            except StagingFailedError:
                if other in await self._paths():
                    raise
                # else an earlier delete, whose answer was lost, took it: "does not exist"
            get_run_logger().warning("deleted DDI dataset %s: a duplicate or leftover of a stage-out", other)


def _stage_out_key(ref: HpcJobRef, index: int) -> str:
    """One cache entry per output of one job of one run (HEAppE ids alone repeat across sandboxes)."""
    return "lexis-stage-out-" + hashlib.sha1(f"{ref.heappe_url}|{ref.job_id}|{ref.name}|{index}".encode()).hexdigest()


def _artifact_key(group_id: str, what: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{group_id}-{what}".lower()).strip("-")


# -- the subflow -------------------------------------------------------------------------------


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
) -> HpcJobResult:
    """One HPC job with its data, as a subflow; each step shows as a task `<group_id>.<step>`.

    Args:
        job: the job (a `SingleHPCJob` or a dict of one; validated first).
        keeper_id: the run's token keeper, from `refresh_token`; the step uses its credentials.
        group_id: the step's name, prefixed to its task names (the seed's `group_id`).
        poll: how often to poll the job's state; defaults to `JOB_POLL`, 0.5 s growing by a tenth to 30 s.

    Raises:
        JobValidationError, NoLocationError, StagingFailedError,
        HpcJobFailedError, HpcJobCancelledError (with the tail of stderr).
    """
    started = time.monotonic()
    job = _validated(job)
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
                return await _run(job, ref, keeper_id, group_id, poll, started)
            except RUN_STOPPING:
                # Cancelled (the run, or a failed sibling in a fan-out), from stage-in on: the job
                # goes too. A failure leaves it alone: a retried or restarted run re-attaches to it.
                await asyncio.shield(_abandon(session, keeper_id, ref))
                raise
    raise NoLocationError(job.requirements.policy, reasons)


# -- fan-out ---------------------------------------------------------------------------------

_turn: ContextVar[Callable[[], None] | None] = ContextVar("lexis_step_turn", default=None)


class StepTurns:
    """Turns for the job steps of one fan-out to start in: see `in_turn`."""

    def __init__(self, limit: int = STEP_STARTS) -> None:
        self.free = asyncio.Semaphore(limit)
        current = get_settings_context()
        # Made once: Prefect's settings are costly to copy (~ms), and a fan-out has many steps.
        self.profile = current.profile
        self.settings = current.settings.copy_with_update(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


async def in_turn(step: Awaitable[T], turns: StepTurns) -> T:
    """Await `step`, a `build_hpc_job_step` call of a fan-out, once one of `turns` is free.

    The step holds its turn until its HEAppE job is created (or it ends), so a fan-out of a
    thousand steps creates its subflow runs and jobs a few at a time, then runs and waits for
    all the jobs at once. Why: started together, the steps queue thousands of requests on the
    Prefect client's 16 connections; those waiting longer than PREFECT_API_REQUEST_TIMEOUT time
    out in the pool, and httpcore 1.0.9 leaks a connection for each (encode/httpcore#1093) until
    none is left and the run hangs (bench/README.md, N=1000). The step's subflow starts no
    heartbeat thread either: one per subflow is 1,000 threads waking each second, and the
    parent run's heartbeat already speaks for this process.
    """
    try:
        await turns.free.acquire()
    except BaseException:  # cancelled before its turn: the step never starts
        if asyncio.iscoroutine(step):
            step.close()  # not "never awaited"
        raise
    ended = False

    def end() -> None:
        nonlocal ended
        if not ended:
            ended = True
            turns.free.release()

    _turn.set(end)  # in this coroutine's own task context (asyncio.ensure_future copies it)
    try:
        with SettingsContext(profile=turns.profile, settings=turns.settings):
            return await step
    finally:
        end()


def _end_turn() -> None:
    """The step's job exists: let the next step of the fan-out start (see `in_turn`)."""
    if (end := _turn.get()) is not None:
        end()


async def _run(
    job: SingleHPCJob, ref: HpcJobRef, keeper_id: str, group_id: str, poll: PollPolicy | None, started: float
) -> HpcJobResult:
    """The created job's life: stage in, submit, wait, stage out."""
    mark = time.monotonic()
    await asyncio.gather(*(stage_input(job, ref, i, keeper_id, group_id) for i in range(len(job.data_inputs))))
    timings = {"stage_in": time.monotonic() - mark}
    await submit_job(ref, keeper_id, group_id)
    mark = time.monotonic()
    outcome = await wait_for_job(ref, keeper_id, group_id, poll)
    timings["running"] = outcome.running_seconds
    timings["queued"] = max(0.0, time.monotonic() - mark - outcome.running_seconds)
    if outcome.state is not JobState.Finished:
        error = HpcJobFailedError if outcome.state is JobState.Failed else HpcJobCancelledError
        await _summary(group_id, ref, outcome.state.name, [], timings, outcome.reason)
        raise error(ref.job_id, ref.location, outcome.state.name, outcome.reason, outcome.stderr_tail)
    mark = time.monotonic()
    outputs = list(
        await asyncio.gather(*(stage_output(job, ref, i, keeper_id, group_id) for i in range(len(job.data_outputs))))
    )
    timings["stage_out"] = time.monotonic() - mark
    timings["total"] = time.monotonic() - started
    timings = {k: round(v, 3) for k, v in timings.items()}
    await _summary(group_id, ref, outcome.state.name, outputs, timings, None)
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


async def _summary(
    group_id: str, ref: HpcJobRef, state: str, outputs: list[str], timings: dict[str, float], reason: str | None
) -> None:
    rows = "\n".join(f"| {k.replace('_', ' ')} | {v:.1f} s |" for k, v in timings.items())
    datasets = "\n".join(f"- `{path}`" for path in outputs) or "- none"
    await acreate_markdown_artifact(
        f"# HPC job step `{group_id}`: {state}\n\n"
        f"| | |\n|---|---|\n| location | {ref.location} |\n| HEAppE job | {ref.job_id} (`{ref.name}`) |\n"
        f"| state | {state}{f' ({reason})' if reason else ''} |\n{rows}\n\n## Output datasets\n\n{datasets}\n",
        key=_artifact_key(group_id, "summary"),
        description=f"HPC job step {group_id}",
    )


# -- hooks -------------------------------------------------------------------------------------


async def cancel_recorded_jobs(keeper_id: str, credentials_block: str | None = None) -> list[int]:
    """Cancel every HEAppE job of the run that may still be active; for on_cancellation / on_crashed hooks.

    Runs without the run's keeper (often in another process): it refreshes the
    offline token that `refresh_token` saved, and forgets it when done.
    """
    recorded = await recorded_jobs(keeper_id)
    if not recorded:
        await forget_offline_token(keeper_id)
        return []
    if await restore_keeper(keeper_id, credentials_block) is None:
        logger.error("cannot cancel HEAppE job(s) %s: the run's offline token is gone", [r.job_id for r in recorded])
        return []
    cancelled = []
    try:
        for ref in recorded:
            async with _session(keeper_id, ref.location) as session:
                if await _stop_job(session.heappe, ref.job_id):
                    cancelled.append(ref.job_id)
            await _unrecord(keeper_id, ref)
    finally:
        await stop_keeper.fn(keeper_id)  # the in-memory keeper and the saved token
    return cancelled


async def cancel_hpc_jobs(flow: Any, flow_run: Any, state: Any) -> None:
    """A flow `on_cancellation` / `on_crashed` hook: no HEAppE job of the run keeps running unseen."""
    from prefect.logging.loggers import flow_run_logger

    keeper_id = flow_run.parameters.get("run_key") or str(flow_run.id)
    cancelled = await cancel_recorded_jobs(keeper_id, flow_run.parameters.get("credentials_block"))
    if cancelled:  # in the run's logs: the hook often runs in the worker, not in the flow's process
        flow_run_logger(flow_run, flow).warning("run ended %s: cancelled HEAppE job(s) %s", state.name, cancelled)


def hpc_flow(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """`@flow(...)` for a workflow that runs HPC jobs: its cancellation and crash cancel them too.

    The flow should take `run_key` and `credentials_block` parameters if it uses them,
    which is where `cancel_hpc_jobs` looks.
    """
    return flow(on_cancellation=[cancel_hpc_jobs], on_crashed=[cancel_hpc_jobs], **options)
