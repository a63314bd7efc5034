"""How the step's tasks call the LEXIS services: the run's shared sessions, whole-task retries after
passing failures, and non-idempotent calls that are repeated only once they provably did not happen."""

from __future__ import annotations
import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from prefect import task
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger
from lexis_prefect.exceptions import AuthenticationError, LexisAPIError, LexisTransportError
from lexis_prefect.keeper import keeper
from lexis_prefect.locations import location_session


T = TypeVar("T")

#: Attempts at a non-idempotent call whose earlier attempts provably did not happen.
UNSURE_ATTEMPTS = 3


#: Whole-task retries of a step's task after a passing failure (no answer, 5xx, 429), and the waits
#: (the last one repeats). A job runs for days: riding out a few minutes of a flaky service beats
#: failing the run; with 20% 5xx and 10% dropped connections on every call (tests/resilience), two
#: retries still lost one step's stage-out in some CI runs.
STEP_RETRIES = 4
STEP_RETRY_DELAYS = [5.0, 20.0, 60.0]


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


def _first_try() -> bool:
    """Whether this is the task run's first attempt (a retry may follow one whose call landed)."""
    context = TaskRunContext.get()
    return context is None or context.task_run.run_count <= 1


def _artifact_key(group_id: str, what: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{group_id}-{what}".lower()).strip("-")
