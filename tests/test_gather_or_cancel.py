"""`gather_or_cancel` (flows/lexis_hpc_multi.py), plain asyncio: the first failure cancels the rest and is raised once all have ended."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest

from lexis_prefect.hpc.fanout import STEP_STARTS, _end_turn
from tests.e2e.conftest import load_flow_module

gather_or_cancel = load_flow_module("lexis_hpc_multi").gather_or_cancel


class Step:
    """A coroutine that returns `value` (or raises `error`) after `seconds`; records how it ended."""

    def __init__(self, value: object, seconds: float, error: BaseException | None = None, cleanup: float = 0.0):
        self.value, self.seconds, self.error, self.cleanup = value, seconds, error, cleanup
        self.ended: str | None = None

    async def __call__(self) -> object:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            await asyncio.sleep(self.cleanup)  # a step cancelling its HPC job on the way out
            self.ended = "cancelled"
            raise
        if self.error is not None:
            self.ended = "failed"
            raise self.error
        self.ended = "finished"
        return self.value


async def test_results_in_the_order_of_the_steps():
    steps = [Step("a", 0.03), Step("b", 0.01), Step("c", 0.02)]
    assert await gather_or_cancel(*(step() for step in steps)) == ["a", "b", "c"]
    assert await gather_or_cancel() == []


async def test_the_first_failure_cancels_the_others_waits_for_them_and_is_raised():
    failing = Step(None, 0.01, ValueError("the step's own error"))
    later = Step(None, 0.05, RuntimeError("a second failure, after the first"))
    slow = [Step("slow", 30, cleanup=0.1), Step("slow", 30, cleanup=0.2)]
    with pytest.raises(ValueError, match="the step's own error"):
        await gather_or_cancel(slow[0](), failing(), later(), slow[1]())
    # every other step had ended, its clean-up done, before the error came out
    assert [s.ended for s in slow] == ["cancelled", "cancelled"]
    assert later.ended == "cancelled"


async def test_the_earliest_failure_wins_whatever_its_position():
    first, second = Step(None, 0.01, KeyError("first")), Step(None, 0.02, ValueError("second"))
    with pytest.raises(KeyError):
        await gather_or_cancel(second(), first())


async def test_a_cancelled_caller_cancels_every_step_and_stays_cancelled():
    steps = [Step("x", 30, cleanup=0.1), Step("y", 30, cleanup=0.2)]
    caller = asyncio.ensure_future(gather_or_cancel(*(step() for step in steps)))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.sleep(0.01)
    caller.cancel()  # cancelled again while the steps clean up: they are still waited for
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert [s.ended for s in steps] == ["cancelled", "cancelled"]


async def test_steps_take_turns_to_start_and_a_job_step_ends_its_turn_once_its_job_exists():
    running, peak = 0, 0

    async def step(job_created: bool) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if job_created:
            _end_turn()  # what build_hpc_job_step does once create_job returned
        await asyncio.sleep(0.05)
        running -= 1

    await gather_or_cancel(*(step(False) for _ in range(3 * STEP_STARTS)))
    assert peak == STEP_STARTS, "other coroutines hold their turn to the end"
    peak = 0
    await gather_or_cancel(*(step(True) for _ in range(3 * STEP_STARTS)))
    assert peak == 3 * STEP_STARTS, "job steps all run at once once their jobs exist"


async def test_steps_still_waiting_for_their_turn_when_one_fails_never_start():
    waiting = [Step("w", 0.01) for _ in range(2 * STEP_STARTS)]
    slow = [Step("slow", 30) for _ in range(STEP_STARTS - 1)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError):
            await gather_or_cancel(*(s() for s in slow), Step(None, 0.01, ValueError("x"))(), *(s() for s in waiting))
        gc.collect()
    assert [s.ended for s in slow] == ["cancelled"] * len(slow)
    # the failed step's turn may pass to one more step before the failure is seen; no further
    assert sum(s.ended is not None for s in waiting) <= 1, [s.ended for s in waiting]
    assert not [w for w in caught if "never awaited" in str(w.message)], caught
