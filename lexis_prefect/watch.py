"""`lexis-prefect watch`: one process that resumes suspended runs when their HEAppE jobs end.

A deployment run whose job steps all wait on HEAppE jobs suspends (`hpc.suspend`) and holds no
process. This watcher, one long-running process beside the worker(s), takes over the waiting.
Each poll (every `interval` seconds) it:

1. reads every job record (`hpc.records`: 200 per request) and the runs they belong to
   (200 per request);
2. for each HEAppE location and user with jobs of suspended runs, makes ONE
   `ListJobsForCurrentUser` read, with the user's token refreshed from the offline token any of
   their runs saved (a Secret block), however many jobs and runs wait there;
3. resumes each suspended run one of whose jobs ended (Finished, Failed, Canceled, or gone), so
   that the run is rescheduled, re-attaches and stages out; logs to a suspended run's own logs when
   one of its jobs changes state; and cancels the jobs of a run cancelled while suspended (Prefect
   cancels a suspended run without any process of it running, so no hook of the run's does it).

It keeps nothing of its own: records, runs and tokens are read from Prefect's database each poll,
and what it holds in memory (tokens, HEAppE session codes) is a cache. Kill and restart it at any
time. Several watchers may run: Prefect refuses to resume a run that is no longer Suspended, so a
run is resumed once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from lexis_prefect.heappe import HEAppEClient
from lexis_prefect.hpc.hooks import cancel_recorded_jobs
from lexis_prefect.hpc.records import JobRecord, all_records, save_record
from lexis_prefect.keeper import TokenKeeper, restore_keeper, stop_keeper
from lexis_prefect.models.heappe import JobState, SubmittedJobInfo

__all__ = ["WATCH_INTERVAL", "Poll", "Watcher", "watch"]

logger = logging.getLogger("lexis_prefect.watch")

#: Seconds between polls: a run is resumed within this of its job's end.
WATCH_INTERVAL = 10.0
#: Runs read per request (Prefect's largest page).
RUNS_PAGE = 200
#: Suspended runs followed (resumed, logged to) at once within one poll.
RESUMES_AT_ONCE = 16


@dataclass
class Poll:
    """What one poll saw and did (the bench and the tests read it)."""

    records: int = 0
    suspended_runs: int = 0
    list_reads: dict[str, int] = field(default_factory=dict)  # per HEAppE URL
    resumed: list[str] = field(default_factory=list)
    cancelled: dict[str, list[int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class Watcher:
    """The watcher's state between polls: a cache only (see the module's docstring)."""

    def __init__(self, credentials_block: str | None = None) -> None:
        self.credentials_block = credentials_block
        self._clients: dict[tuple[str, str], HEAppEClient] = {}
        self._keepers: set[str] = set()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        for keeper_id in self._keepers:
            await stop_keeper.fn(keeper_id, forget_token=False)  # in memory only: the runs own their tokens
        self._keepers.clear()

    async def poll(self, client: Any = None) -> Poll:
        """One pass over every suspended or cancelled run that has HEAppE jobs (with `client`, a
        Prefect client, or one opened for this pass)."""
        from prefect.client.orchestration import get_client

        if client is None:
            async with get_client() as client:
                return await self.poll(client)
        seen = Poll()
        records = _records(await all_records(client=client))
        seen.records = len(records)
        by_run: dict[str, list[JobRecord]] = defaultdict(list)
        for record in records:
            if record.flow_run_id:
                by_run[record.flow_run_id].append(record)
        runs = await _read_runs(client, by_run)
        suspended = {run_id: by_run[run_id] for run_id, run in runs.items() if _is_suspended(run)}
        for run_id, run in runs.items():
            if run.state_type is not None and run.state_type.value == "CANCELLED" and await _had_no_process(client, run_id):
                await self._cancel(client, run_id, by_run[run_id], seen)
        seen.suspended_runs = len(suspended)
        states = await self._job_states(suspended, seen)
        # Many jobs may end at once (a fan-out of runs): resumed one after another, the last would wait
        # ~1.3 s per run before it (bench/README.md, suspend.py); a few at a time keeps the server responsive.
        gate = asyncio.Semaphore(RESUMES_AT_ONCE)

        async def follow(run_id: str, run_records: list[JobRecord]) -> None:
            async with gate:
                await self._follow(client, run_id, run_records, states, seen)

        await asyncio.gather(*(follow(run_id, run_records) for run_id, run_records in suspended.items()))
        await self._forget_all_but({r.keeper_id for rs in suspended.values() for r in rs})
        return seen

    async def _job_states(self, suspended: dict[str, list[JobRecord]], seen: Poll) -> dict[tuple[str, int], SubmittedJobInfo | None]:
        """The state of every job of the suspended runs: one list read per HEAppE location and user."""
        groups: dict[tuple[str, str], list[tuple[JobRecord, TokenKeeper]]] = defaultdict(list)
        for run_records in suspended.values():
            for record in run_records:
                kept = await self._keeper(record, seen)
                if kept is not None:
                    groups[(record.heappe_url, kept.username or kept.keeper_id)].append((record, kept))
        states: dict[tuple[str, int], SubmittedJobInfo | None] = {}
        used: set[tuple[str, str]] = set()
        for (url, user), members in groups.items():
            record, kept = min(members, key=lambda m: m[1].keeper_id)  # the same token while that run waits
            key = (url, kept.keeper_id)
            used.add(key)
            try:
                if key not in self._clients:
                    self._clients[key] = kept.credentials.get_client("heappe", access_token=kept.access_token, location=record.location)
                listed = {info.id: info for info in await self._clients[key].list_jobs()}
            except Exception as exc:  # this location is out of reach this time: the next poll tries again
                seen.problems.append(f"{url}: {exc}")
                logger.warning("cannot list the jobs at %s: %s", url, exc)
                continue
            seen.list_reads[url] = seen.list_reads.get(url, 0) + 1
            for member, _ in members:
                states[(member.heappe_url, member.job_id)] = listed.get(member.job_id)
        for key in set(self._clients) - used:
            await self._clients.pop(key).aclose()
        return states

    async def _keeper(self, record: JobRecord, seen: Poll) -> TokenKeeper | None:
        try:
            kept = await restore_keeper(record.keeper_id, record.credentials_block or self.credentials_block)
        except Exception as exc:
            seen.problems.append(f"run {record.flow_run_id}: token: {exc}")
            logger.warning("run %s: cannot refresh its saved token: %s", record.flow_run_id, exc)
            return None
        if kept is None:
            seen.problems.append(f"run {record.flow_run_id}: no saved token")
            logger.warning("run %s: its offline token is gone; it cannot be watched", record.flow_run_id)
            return None
        self._keepers.add(record.keeper_id)
        return kept

    async def _follow(
        self, client: Any, run_id: str, records: list[JobRecord], states: dict[tuple[str, int], SubmittedJobInfo | None], seen: Poll
    ) -> None:
        """Resume the run if one of its jobs ended; else note the state changes in its logs."""
        now = datetime.now(timezone.utc)
        ended, changed = [], []
        for record in records:
            key = (record.heappe_url, record.job_id)
            if key not in states:
                continue  # not read this time
            info = states[key]
            if info is None or info.is_terminal or info.state is JobState.Deleted:
                ended.append(f"HEAppE job {record.job_id} at {record.location} {'is gone' if info is None else 'ended ' + info.state.name}")
            elif info.state is not record.state:
                changed.append(f"HEAppE job {record.job_id} at {record.location}: {info.state.name} (checked {now:%H:%M:%S} UTC)")
                await save_record(record.model_copy(update={"state": info.state, "checked": now}))
        if ended:
            if await _resume(run_id):
                seen.resumed.append(run_id)
                await _log(client, run_id, "; ".join(ended) + ": resuming the run")
        elif changed:
            await _log(client, run_id, "; ".join(changed) + "; the run stays suspended")

    async def _cancel(self, client: Any, run_id: str, records: list[JobRecord], seen: Poll) -> None:
        """A run cancelled while suspended: its jobs must not run on."""
        cancelled: list[int] = []
        for keeper_id in sorted({r.keeper_id for r in records}):
            block = next((r.credentials_block for r in records if r.credentials_block), None) or self.credentials_block
            try:
                cancelled += await cancel_recorded_jobs(keeper_id, block)
            except Exception as exc:
                seen.problems.append(f"run {run_id}: cancel: {exc}")
                logger.warning("run %s was cancelled, but its HEAppE jobs could not be: %s", run_id, exc)
                return
            self._keepers.discard(keeper_id)
        seen.cancelled[run_id] = cancelled
        if cancelled:
            await _log(client, run_id, f"run cancelled while suspended: cancelled HEAppE job(s) {cancelled}", logging.WARNING)

    async def _forget_all_but(self, keeper_ids: set[str]) -> None:
        for keeper_id in self._keepers - keeper_ids:
            await stop_keeper.fn(keeper_id, forget_token=False)
        self._keepers &= keeper_ids


def _records(values: Iterable[tuple[str, dict[str, Any]]]) -> list[JobRecord]:
    found = []
    for name, value in values:
        try:
            found.append(JobRecord.model_validate(value))
        except ValidationError:  # written by an older version: only its run's hooks read it
            logger.debug("skipping job record %s", name)
    return found


async def _read_runs(client: Any, by_run: dict[str, list[JobRecord]]) -> dict[str, Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    ids = sorted(by_run)
    runs: dict[str, Any] = {}
    for start in range(0, len(ids), RUNS_PAGE):
        chunk = [UUID(i) for i in ids[start : start + RUNS_PAGE]]
        for run in await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=RUNS_PAGE):
            runs[str(run.id)] = run
    return runs


async def _had_no_process(client: Any, run_id: str) -> bool:
    """Whether the run was cancelled while suspended (or resumed and not started yet): then no process
    of its ran a hook, and its jobs are the watcher's to cancel. A run cancelled while it ran is left
    to its own hooks (the worker runs them)."""
    history = await client.read_flow_run_states(UUID(run_id))
    before = [s for s in history if s.type.value not in ("CANCELLED", "CANCELLING")]
    return bool(before) and before[-1].type.value in ("PAUSED", "SCHEDULED")


def _is_suspended(run: Any) -> bool:
    return run.state_type is not None and run.state_type.value == "PAUSED" and run.state_name == "Suspended"


async def _resume(run_id: str) -> bool:
    """Resume the run; False if it is no longer suspended (another watcher, or the user, was first)."""
    from prefect.exceptions import NotPausedError
    from prefect.flow_runs import aresume_flow_run

    try:
        await aresume_flow_run(UUID(run_id))
    except (NotPausedError, RuntimeError) as exc:
        logger.info("run %s: not resumed (%s)", run_id, exc)
        return False
    logger.info("resumed run %s", run_id)
    return True


async def _log(client: Any, run_id: str, message: str, level: int = logging.INFO) -> None:
    """A line in the run's own logs, where its user looks (the UI's run page)."""
    from prefect.client.schemas.actions import LogCreate

    await client.create_logs(
        [LogCreate(name="lexis_prefect.watch", level=level, message=message, timestamp=datetime.now(timezone.utc), flow_run_id=UUID(run_id))]
    )
    logger.info("run %s: %s", run_id, message)


async def watch(interval: float = WATCH_INTERVAL, credentials_block: str | None = None, polls: int | None = None) -> None:
    """Poll every `interval` seconds, for ever (or `polls` times); a failed poll is logged and the next one tries again."""
    from prefect.client.orchestration import get_client

    watcher = Watcher(credentials_block)
    logger.info("watching suspended runs every %s s (idle polls are logged at DEBUG)", interval)
    done = 0
    client = None
    try:
        while polls is None or done < polls:
            started = asyncio.get_running_loop().time()
            try:
                if client is None:  # one for many polls: opening one costs more than an idle poll
                    client = await get_client().__aenter__()
                seen = await watcher.poll(client)
                busy = seen.suspended_runs or seen.resumed or seen.cancelled or seen.problems
                logger.log(
                    logging.INFO if busy else logging.DEBUG,
                    "poll: %d suspended run(s), %d job record(s), HEAppE list reads %s, resumed %d",
                    seen.suspended_runs,
                    seen.records,
                    seen.list_reads or "{}",
                    len(seen.resumed),
                )
            except Exception as exc:  # the Prefect server restarting, say: keep watching, on a new client
                logger.warning("poll failed: %s", exc)
                if client is not None:
                    await client.__aexit__(None, None, None)
                    client = None
            done += 1
            if polls is None or done < polls:
                await asyncio.sleep(max(0.0, interval - (asyncio.get_running_loop().time() - started)))
    finally:
        if client is not None:
            await client.__aexit__(None, None, None)
        await watcher.aclose()
