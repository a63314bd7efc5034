"""A run's link to each HEAppE location: one client, one session code, one reader of job states.

Every step of a run talks to the same few HEAppE instances with the same token. Before this,
each task opened its own client: one `AuthenticateLexisToken` and one TLS handshake per task,
and one `CurrentInfoForJob` per job per poll. Sharing one `LocationSession` per (run, location)
among the steps running in one event loop means one session code for all of them, one
connection pool, and, once several jobs are watched at a location, one
`ListJobsForCurrentUser` read serving every job's poll (bench/fanout.py counts the requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Iterator

from lexis_prefect.heappe import HEAppEClient
from lexis_prefect.keeper import TokenKeeper
from lexis_prefect.models.heappe import ClusterInfo, SubmittedJobInfo

__all__ = ["LIST_STATES_FROM", "STATES_MAX_AGE_SECONDS", "LocationSession", "location_session"]

#: From this many jobs watched at one location, one list read serves them all.
#: [I] ListJobsForCurrentUser returns every job the user has at that HEAppE, old ones
#: included; for one or two jobs, asking for each is the smaller answer.
LIST_STATES_FROM = 3
#: A list read younger than this serves a poll (the polls of N jobs cost one read per this).
STATES_MAX_AGE_SECONDS = 1.0

_SESSIONS: dict[tuple[int, str, str], LocationSession] = {}


class LocationSession:
    """The shared HEAppE client of one run at one location, and the jobs being waited for there."""

    def __init__(self, heappe: HEAppEClient) -> None:
        self.heappe = heappe
        self.users = 0
        self.opened_at = time.monotonic()
        self.watched: set[int] = set()
        self.list_reads = 0
        self._jobs: dict[int, SubmittedJobInfo] = {}
        self._read_at = -math.inf
        self._reading = asyncio.Lock()
        self._clusters: list[ClusterInfo] | None = None
        self._clusters_lock = asyncio.Lock()

    async def clusters(self) -> list[ClusterInfo]:
        """`ListAvailableClusters`, read once per session: the ids it maps names to do not change mid-run."""
        async with self._clusters_lock:
            if self._clusters is None:
                self._clusters = await self.heappe.list_available_clusters()
            return self._clusters

    async def jobs(self, since: float) -> dict[int, SubmittedJobInfo]:
        """The user's jobs here by id, from a `ListJobsForCurrentUser` sent at or after `since` (monotonic).

        Callers that arrive while a read is under way wait for it and share it, when
        it is recent enough for them: a thousand steps looking for their job cost one read.
        """
        async with self._reading:
            if self._read_at < since:
                sent = time.monotonic()
                self._jobs = {info.id: info for info in await self.heappe.list_jobs()}
                self._read_at = sent
                self.list_reads += 1
            return self._jobs

    @contextlib.contextmanager
    def watching(self, job_id: int) -> Iterator[None]:
        """While inside, `job_info(job_id)` may be served by the shared list read."""
        self.watched.add(job_id)
        try:
            yield
        finally:
            self.watched.discard(job_id)

    async def job_info(self, job_id: int) -> SubmittedJobInfo:
        """The job's current state: from one list read shared by every watched job, or asked directly."""
        if len(self.watched) >= LIST_STATES_FROM and job_id in self.watched:
            info = (await self.jobs(since=time.monotonic() - STATES_MAX_AGE_SECONDS)).get(job_id)
            if info is not None:
                return info
        return await self.heappe.job_info(job_id)


@contextlib.asynccontextmanager
async def location_session(keeper: TokenKeeper, location: str) -> AsyncIterator[LocationSession]:
    """The run's session at `location` in this event loop, opened on first use, closed after the last.

    A step holds it from creating its job to its end, so its tasks, and the steps that
    run beside it, all share it.
    """
    url = keeper.credentials.endpoints.heappe_url(location)
    key = (id(asyncio.get_running_loop()), keeper.keeper_id, url)
    session = _SESSIONS.get(key)
    if session is None:
        heappe = keeper.credentials.get_client("heappe", access_token=keeper.access_token, location=location)
        session = _SESSIONS[key] = LocationSession(heappe)
    session.users += 1
    try:
        yield session
    finally:
        session.users -= 1
        if session.users == 0 and _SESSIONS.get(key) is session:
            del _SESSIONS[key]
            await asyncio.shield(session.heappe.aclose())
