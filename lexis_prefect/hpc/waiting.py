"""Waiting for a HEAppE job: in the flow run's process (its state, output and progress), until the
job ends or, in a deployment run, until every step of the run waits and the run suspends
(`hpc.suspend`; the watcher, `lexis_prefect.watch`, resumes it)."""

from __future__ import annotations

import asyncio
import math
import re
import time
from datetime import datetime, timezone
from typing import Any

from prefect import task
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.logging import get_run_logger

from lexis_prefect.config import PollPolicy
from lexis_prefect.exceptions import LexisAPIError, LexisTransportError
from lexis_prefect.heappe import HEAppEClient
from lexis_prefect.hpc.calls import _artifact_key, _session
from lexis_prefect.hpc.records import TailMark, _record, _unrecord, read_record
from lexis_prefect.hpc.results import HpcJobRef, JobOutcome
from lexis_prefect.hpc.summary import job_summary
from lexis_prefect.hpc.suspend import RunWaits, Waiter, run_waits, suspend_wanted
from lexis_prefect.locations import LocationSession
from lexis_prefect.models.heappe import FileType, JobState, SubmittedJobInfo, TaskFileOffset


#: Lines of one stream logged in one record at most: a chatty job cannot flood the server.
MAX_LINES_PER_RECORD = 200
MAX_CHARS_PER_RECORD = 16_000
STDERR_TAIL_CHARS = 2_000
#: Consecutive failed polls (each already retried by the client) before the wait gives up.
MAX_POLL_FAILURES = 10


#: The job's state polls: a job's end is seen within about a tenth of its age (x1.1), and within
#: 30 s once it is 5 minutes old. Against x1.5 that is ~30 more state reads in the first 5 minutes,
#: the same after; at many jobs per location one list read per second serves them all (`locations`).
JOB_POLL = PollPolicy(interval_seconds=0.5, max_interval_seconds=30, backoff_factor=1.1)
#: The job's stdout / stderr / progress reads while it runs: less often than its state (one call per
#: job each time, not shared), and once more when it ends, so no output is missed.
TAIL_POLL = PollPolicy(interval_seconds=1.0, max_interval_seconds=30, backoff_factor=1.5)


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

    def mark(self, running_since: float | None) -> TailMark:
        offsets = {f"{task_id}:{file_type.name}": offset for (task_id, file_type), offset in self.offsets.items()}
        return TailMark(offsets=offsets, stderr=self.stderr, progress=self.progress, running_since=running_since)

    def restore(self, mark: TailMark) -> None:
        """Go on from where a wait before the run suspended had read to."""
        for key, offset in mark.offsets.items():
            task_id, _, file_type = key.partition(":")
            known = (int(task_id), FileType[file_type])
            if known in self.offsets:
                self.offsets[known] = offset
        self.stderr, self.progress = mark.stderr, mark.progress

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
async def wait_for_job(
    ref: HpcJobRef, keeper_id: str, group_id: str, poll: PollPolicy | None = None, suspend: bool | None = None
) -> JobOutcome:
    """Follow the job to its end: state changes and output in the logs, progress as an artifact.

    In a deployment run this may instead end with the run suspending (`hpc.suspend`): the outcome
    is then `suspended`, and Prefect stops the run at its next task or flow boundary.
    If this wait is cancelled, the step cancels the HEAppE job (`build_hpc_job_step`).
    Not retried as a task: it rides out up to `MAX_POLL_FAILURES` failed polls in a row itself.
    """
    log = get_run_logger()
    waits = await run_waits(keeper_id)
    earlier = await read_record(keeper_id, ref)  # what an attempt before a suspension had seen
    progress_id = await acreate_progress_artifact(
        0.0, key=_artifact_key(group_id, "progress"), description=f"HEAppE job {ref.job_id} at {ref.location}"
    )
    async with _session(keeper_id, ref.location) as session:
        watch = _Watch(ref, log, progress_id, earlier.tail if earlier else None)
        with session.watching(ref.job_id):
            pausing = _Pausing(waits, keeper_id, group_id, watch) if waits.enabled and suspend_wanted(suspend) else None
            info = await watch.follow(session, poll or JOB_POLL, pausing)
    running = 0.0 if watch.running_since is None else round(time.time() - watch.running_since, 3)
    if not info.is_terminal:
        return JobOutcome(state=info.state, suspended=True, stderr_tail=watch.tail.stderr, running_seconds=running)
    await _unrecord(keeper_id, ref)
    if info.state is JobState.Finished:
        await aupdate_progress_artifact(progress_id, 100.0)
    return JobOutcome(
        state=info.state,
        reason=next((t.error_message for t in info.tasks if t.error_message), None),
        stderr_tail=watch.tail.stderr,
        running_seconds=running,
    )


class _Watch:
    """One job's wait: its polls, what it logged, and its progress."""

    def __init__(self, ref: HpcJobRef, log: Any, progress_id: Any, earlier: TailMark | None = None) -> None:
        self.ref, self.log, self.progress_id = ref, log, progress_id
        self.tail = _Tail(ref)
        self.tail_waits = TAIL_POLL.intervals()
        self.tail_due = -math.inf
        self.shown_progress = 0.0
        self.last_state: JobState | None = None
        self.running_since: float | None = None  # epoch seconds: a resumed run goes on counting
        if earlier is not None:
            self.tail.restore(earlier)
            self.running_since = earlier.running_since

    async def follow(self, session: LocationSession, poll: PollPolicy, pausing: _Pausing | None = None) -> SubmittedJobInfo:
        """Poll until the job ends, or until the run suspends (`pausing`); returns its last info."""
        failures = 0
        try:
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
                if pausing is None:
                    await asyncio.sleep(interval)
                elif await pausing.pause(info, interval):
                    return info
                elif not pausing.waits.enabled:
                    pausing = pausing.close()  # refused: poll on in this process
        finally:
            if pausing is not None:
                pausing.close()
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
                self.running_since = time.time()
        for stream, text in fresh.items():
            _log_output(self.log, stream, text)
        if self.tail.progress is not None and self.tail.progress != self.shown_progress:
            self.shown_progress = self.tail.progress
            await aupdate_progress_artifact(self.progress_id, self.shown_progress)


class _Pausing:
    """A wait that may end with the run suspending: its `Waiter` in the run's `RunWaits`."""

    def __init__(self, waits: RunWaits, keeper_id: str, group_id: str, watch: _Watch) -> None:
        self.waits, self.keeper_id, self.group_id, self.watch = waits, keeper_id, group_id, watch
        self.waiter = Waiter(watch.ref)

    async def pause(self, info: SubmittedJobInfo, seconds: float) -> bool:
        """Sleep until the next poll; True when the run has suspended (its record saved first)."""
        self.waiter.state = info.state.name
        self.waits.waiting(self.waiter)
        if not await self.waits.pause(self.waiter, seconds):
            return False
        await self._save(info)
        return await self.waits.suspended(self.waiter)

    async def _save(self, info: SubmittedJobInfo) -> None:
        """What the watcher and the resumed run need, and what the user sees meanwhile."""
        ref, checked = self.watch.ref, datetime.now(timezone.utc)
        await _record(
            self.keeper_id,
            ref,
            group_id=self.group_id,
            **self.waits.record_fields(),
            state=info.state,
            checked=checked,
            tail=self.watch.tail.mark(self.watch.running_since),
        )
        waiting = f"{info.state.name} (checked {checked:%Y-%m-%d %H:%M:%S} UTC)"
        self.watch.log.info(
            "HEAppE job %s at %s is %s: the run suspends until it ends", ref.job_id, ref.location, waiting
        )
        await job_summary(self.group_id, ref, f"waiting, run suspended: HEAppE job {waiting}", [], {}, None)

    def close(self) -> None:
        self.waits.not_waiting(self.waiter)
        return None


def _has_output(state: JobState) -> bool:
    return state in (JobState.Running, JobState.Finished, JobState.Failed, JobState.Canceled)
