"""Many job steps in one run: turns for them to start in, so a fan-out of thousands does not choke."""

from __future__ import annotations
import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeVar
from prefect.context import SettingsContext, get_settings_context
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY


T = TypeVar("T")

#: How many job steps of one fan-out (`in_turn`) may be starting at once: creating their
#: subflow run and HEAppE job. Measured in bench/README.md (fan-out, N=1000).
STEP_STARTS = 16


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
