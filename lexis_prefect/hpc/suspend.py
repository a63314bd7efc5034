"""Suspending a deployment run while its job steps wait on HEAppE jobs that last days.

A step polling its job in process holds a worker process and a heartbeat for the job's whole
life, and dies with the worker. So, once every job step still running in the run's process has
been waiting on a submitted HEAppE job for `SUSPEND_AFTER_SECONDS`, each step saves what it waits
for (its job record: the job's state, when it was checked, how far its output was read) and the
run suspends (Prefect's `suspend_flow_run`): its process exits and holds nothing. The watcher
(`lexis-prefect watch`) resumes it when one of its jobs ends. A resumed run starts again from the
top: its steps re-attach to their jobs (nothing is submitted or staged twice), those whose job
ended stage out, and the others wait, and suspend, again.

Only a top-level deployment run can be suspended (Prefect's orchestration refuses to suspend
subflows and runs without a deployment: prefect 3.9.1 server/orchestration/core_policy.py
`HandlePausingFlows`); any other run (`python flow.py`, `dag.test()`) polls in process as
before. `LEXIS_SUSPEND=false` in the run's environment, or a step's `suspend=False`, turns it off.

The steps of one run may wait in several event loops and threads (the Airflow shim runs each
task in a thread of its own), hence a thread lock and wake-ups through each waiter's own loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

from prefect.context import FlowRunContext
from prefect.logging import get_run_logger

from lexis_prefect.config import env_flag
from lexis_prefect.exceptions import ConfigurationError
from lexis_prefect.hpc.results import HpcJobRef
from lexis_prefect.keeper import keeper

__all__ = ["SUSPEND_AFTER_SECONDS", "RunWaits", "Waiter", "run_waits", "suspend_wanted"]

#: How long every step must have been waiting before the run suspends. A job that ends sooner
#: costs no suspend and resume (a round trip of a watcher poll, a worker poll and a process start).
SUSPEND_AFTER_SECONDS = 3.0

_WAITS: dict[str, RunWaits] = {}
_WAITS_LOCK = threading.Lock()


def suspend_wanted(option: bool | None = None) -> bool:
    """A step's `suspend` option, else `LEXIS_SUSPEND` (default on)."""
    return option if option is not None else env_flag("LEXIS_SUSPEND", True)


class Waiter:
    """One step waiting on its HEAppE job, as its run's `RunWaits` sees it."""

    def __init__(self, ref: HpcJobRef) -> None:
        self.ref = ref
        self.state = ""  # the job's last state seen, for the log line of the suspension
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    def wake(self) -> None:
        self.loop.call_soon_threadsafe(self.event.set)

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds`, or less when woken."""
        try:
            await asyncio.wait_for(self.event.wait(), max(0.0, seconds))
        except asyncio.TimeoutError:
            pass
        self.event.clear()


class RunWaits:
    """The job steps of one run in this process, and which of them are waiting on their job.

    Phases: `polling` (in process), `saving` (all waited long enough: each waiter saves its
    record), `suspended` (the run's state is Suspended: the steps stop), `off` (this run does not
    suspend, or Prefect refused it: the steps poll on).
    """

    def __init__(self, keeper_id: str, flow_run_id: uuid.UUID | None, resumed: bool = False) -> None:
        self.keeper_id = keeper_id
        self.flow_run_id = flow_run_id
        self.resumed = resumed  # the run suspended before: earlier attempts may have left subflow runs
        self.phase = "polling" if flow_run_id is not None else "off"
        self.steps = 0
        self.waiters: set[Waiter] = set()
        self.saved = 0
        self.changed = time.monotonic()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.phase != "off"

    def record_fields(self) -> dict[str, Any]:
        """What a job record needs of the run for a process other than this one (hooks, the watcher)."""
        credentials = keeper(self.keeper_id).credentials
        return {
            "flow_run_id": str(self.flow_run_id) if self.enabled else None,
            "credentials_block": getattr(credentials, "_block_document_name", None),  # set by Block.load
        }

    @property
    def stopping_for_suspension(self) -> bool:
        """Whether the steps are being stopped because the run suspends (not cancelled: keep the jobs)."""
        return self.phase in ("saving", "suspended")

    def _changed(self) -> None:
        self.changed = time.monotonic()
        for waiter in self.waiters:
            waiter.wake()

    def step_started(self) -> None:
        with self._lock:
            self.steps += 1
            self._changed()

    def step_ended(self) -> None:
        with self._lock:
            self.steps -= 1
            self._changed()
            if self.steps == 0:
                with _WAITS_LOCK:
                    if _WAITS.get(self.keeper_id) is self:
                        del _WAITS[self.keeper_id]

    def waiting(self, waiter: Waiter) -> None:
        with self._lock:
            if waiter not in self.waiters:
                self.waiters.add(waiter)
                self._changed()

    def not_waiting(self, waiter: Waiter) -> None:
        with self._lock:
            if waiter in self.waiters:
                self.waiters.discard(waiter)
                self._changed()

    def _due_in(self) -> float | None:
        """Seconds until the run may suspend; None while some step is not waiting."""
        if self.phase != "polling" or len(self.waiters) < self.steps:
            return None
        return SUSPEND_AFTER_SECONDS - (time.monotonic() - self.changed)

    async def pause(self, waiter: Waiter, seconds: float) -> bool:
        """Wait `seconds` before the next poll; True as soon as the run is to suspend (save, then
        call `suspended`)."""
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                if self.phase == "saving":
                    return True
                due = self._due_in()
                if due is not None and due <= 0:
                    self.phase = "saving"
                    for other in self.waiters:
                        other.wake()
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await waiter.sleep(left if due is None else min(left, due))

    async def suspended(self, waiter: Waiter) -> bool:
        """This waiter has saved its record: True once the run is suspended, False if it was refused.

        The last waiter to save proposes the suspension, so that the watcher never sees a
        suspended run whose records are not all written.
        """
        with self._lock:
            self.saved += 1
            last = self.saved >= len(self.waiters)
        if last:
            await self._suspend()
        while True:
            with self._lock:
                if self.phase in ("suspended", "off"):
                    return self.phase == "suspended"
            await waiter.sleep(1.0)

    async def _suspend(self) -> None:
        from prefect.flow_runs import asuspend_flow_run

        log = get_run_logger()
        with self._lock:
            what = ", ".join(sorted(f"HEAppE job {w.ref.job_id} at {w.ref.location} ({w.state})" for w in self.waiters))
        try:
            # A fresh key each time: Prefect answers a key it has seen with "already fired", and a
            # resumed run suspends again with new keys. No timeout: the job may take days.
            await asuspend_flow_run(flow_run_id=self.flow_run_id, key=f"lexis-wait-{uuid.uuid4().hex}", timeout=None)
        except Exception as exc:  # refused (e.g. the run is being cancelled): wait in process
            log.warning("the run could not be suspended (%s): waiting in this process", exc)
            phase = "off"
        else:
            log.info(
                "suspended the run, waiting for %s; `lexis-prefect watch` resumes it when a job ends "
                "(this process exits and holds no worker slot meanwhile)",
                what,
            )
            phase = "suspended"
            try:  # nothing to refresh while suspended: the resumed run refreshes the offline token
                keeper(self.keeper_id).stopped.set()
            except ConfigurationError:
                pass
        with self._lock:
            self.phase = phase
            for other in self.waiters:
                other.wake()


async def run_waits(keeper_id: str) -> RunWaits:
    """The `RunWaits` of the run that `keeper_id` serves, made by the run's first step in this process.

    The run that suspends is the top-level one, found by walking up from the current (sub)flow run.
    A step with `suspend=False` still counts as a step but never as waiting: while it runs, the
    run does not suspend.
    """
    with _WAITS_LOCK:
        known = _WAITS.get(keeper_id)
    if known is not None:
        return known
    root = await _top_level_deployment_run() if suspend_wanted() else None
    made = RunWaits(keeper_id, root.id, bool(root.empirical_policy.pause_keys)) if root else RunWaits(keeper_id, None)
    with _WAITS_LOCK:
        return _WAITS.setdefault(keeper_id, made)


async def _top_level_deployment_run() -> Any:
    """The top-level flow run above the current one, if it is a deployment run (else None)."""
    from prefect.client.orchestration import get_client

    context = FlowRunContext.get()
    run: Any = context.flow_run if context else None
    if run is None:
        return None
    async with get_client() as client:
        while run.parent_task_run_id is not None:
            parent_task = await client.read_task_run(run.parent_task_run_id)
            if parent_task.flow_run_id is None:
                return None
            run = await client.read_flow_run(parent_task.flow_run_id)
    return run if run.deployment_id is not None else None
