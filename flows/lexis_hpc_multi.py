"""Several HPC jobs in one workflow: a chain (job 2 reads job 1's output) and a fan-out.

    python flows/lexis_hpc_multi.py            # both, on the sandbox unless LEXIS is configured
    python flows/lexis_hpc_multi.py chain
    python flows/lexis_hpc_multi.py fanout

Both share one token keeper for the whole run, as the seed's DAGs do.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from prefect.exceptions import MissingContextError, Pause
from prefect.logging import get_run_logger

from lexis_prefect.blocks import AccessToken
from lexis_prefect.hpc import HpcJobResult, StepTurns, build_hpc_job_step, hpc_flow, in_turn
from lexis_prefect.keeper import kept_token
from lexis_prefect.models.job import SEED_JOB, DataInput, SingleHPCJob

SEED = SingleHPCJob.model_validate(SEED_JOB)
T = TypeVar("T")


async def gather_or_cancel(*steps: Coroutine[Any, Any, T]) -> list[T]:
    """`asyncio.gather(*steps)`, except that the first step to fail cancels the others.

    The results come in the order of `steps`. When a step fails, the others are cancelled
    (a `build_hpc_job_step` waiting for its HEAppE job cancels that job) and waited for;
    then the failed step's own exception is raised. No step runs on after this returns or
    raises, so an enclosing `kept_token` stops the keeper only once all have ended
    (`asyncio.gather` raises at once and leaves the others running without a keeper).
    A cancelled caller cancels all the steps, waits for them too, and stays cancelled.
    Steps take turns to start, `hpc.STEP_STARTS` at a time (`in_turn`): a job step's turn ends once
    its HEAppE job is created, any other coroutine's when it ends.
    """
    turns = StepTurns()  # a few steps start at a time; all then run at once
    tasks = [asyncio.ensure_future(in_turn(step, turns)) for step in steps]
    ended: list[asyncio.Future[T]] = []  # in the order they ended: the first failure is the cause
    for task in tasks:
        task.add_done_callback(ended.append)
    failure: BaseException | None = None
    try:
        running = set(tasks)
        while running and failure is None:
            _, running = await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
            failure = next((t.exception() for t in ended if not t.cancelled() and t.exception() is not None), None)
    finally:  # a step failed, or the caller is being cancelled: no step may outlive this call
        if (left := [t for t in tasks if not t.done()]) and isinstance(failure, Pause):
            # The run suspends (`lexis_prefect.hpc.suspend`): every other step is waiting on its job
            # too and stops by itself; cancelling it would cancel its HEAppE job.
            await asyncio.wait(left)
        elif left:
            if failure is not None:
                _log().warning("a step failed (%s): cancelling the %d still running", _describe(failure), len(left))
            await _cancel_and_wait(left)
        for task in tasks:  # retrieved, so that asyncio does not report the cancelled steps' errors as lost
            if task.done() and not task.cancelled():
                task.exception()
    if failure is not None:
        raise failure
    return [task.result() for task in tasks]


async def _cancel_and_wait(tasks: list[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and wait until all have ended, even if the caller is cancelled meanwhile."""
    for task in tasks:
        task.cancel()
    cancelled: asyncio.CancelledError | None = None
    while not all(task.done() for task in tasks):
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError as exc:  # what a cancelled caller wants is these steps ended: finish
            cancelled = exc
    if cancelled is not None:
        raise cancelled


def _describe(exc: BaseException) -> str:
    first_line = next(iter(str(exc).splitlines()), "")[:200]
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def _log() -> logging.Logger | logging.LoggerAdapter:
    """The flow run's logger (the UI shows it), else this module's."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def reading(job: SingleHPCJob, previous: HpcJobResult) -> SingleHPCJob:
    """`job` with its inputs replaced by the output datasets of `previous`.

    [I] An input names a dataset by id only; it is looked up in the project zone,
    so the previous job's outputs must have `access: project`.
    """
    template = job.data_inputs[0] if job.data_inputs else SEED.data_inputs[0]
    inputs = [
        DataInput.model_validate(
            {**template.model_dump(), "source": {**template.source.model_dump(), "info": {"dataset_id": d, "path": "/"}}}
        )
        for d in previous.output_dataset_ids
    ]
    return job.model_copy(update={"data_inputs": inputs})


@hpc_flow(
    name="lexis_hpc_chain",
    description="Two HPC jobs in sequence: the second computes on the first's output dataset.",
)
async def lexis_hpc_chain(
    access_token: AccessToken,
    job1: SingleHPCJob = SEED,
    job2: SingleHPCJob = SEED,
    credentials_block: str | None = None,
    run_key: str | None = None,
) -> list[HpcJobResult]:
    """job1 (`preprocess`) >> job2 (`compute`), job2's inputs being job1's outputs."""
    async with kept_token(access_token, credentials_block=credentials_block, run_key=run_key) as keeper_id:
        first = await build_hpc_job_step(job1, keeper_id, group_id="preprocess")
        second = await build_hpc_job_step(reading(job2, first), keeper_id, group_id="compute")
    return [first, second]


@hpc_flow(
    name="lexis_hpc_fanout",
    description="The same HPC job for several parameter values, concurrently.",
)
async def lexis_hpc_fanout(
    access_token: AccessToken,
    job1: SingleHPCJob = SEED,
    input_params: list[str] = ["alpha", "beta", "gamma"],  # noqa: B006 (a flow parameter default)
    credentials_block: str | None = None,
    run_key: str | None = None,
) -> list[HpcJobResult]:
    """One job per value of the first task's `input_param`, all running at once.

    If one fails, the others are cancelled (their HEAppE jobs with them) and the run fails with its error.
    """

    def variant(value: str) -> SingleHPCJob:
        task = job1.requirements.tasks[0]
        tasks = [task.model_copy(update={"template_parameter_values": {**task.template_parameter_values, "input_param": value}})]
        requirements = job1.requirements.model_copy(update={"tasks": tasks + job1.requirements.tasks[1:]})
        return job1.model_copy(update={"requirements": requirements})

    async with kept_token(access_token, credentials_block=credentials_block, run_key=run_key) as keeper_id:
        # One failed job fails the run: the others are cancelled (not left running without a keeper).
        return await gather_or_cancel(
            *(
                build_hpc_job_step(variant(value), keeper_id, group_id=f"job-{value}")
                for value in input_params
            )
        )


async def both(token: AccessToken) -> dict[str, list[HpcJobResult]]:
    which = sys.argv[1:] or ["chain", "fanout"]
    results = {}
    if "chain" in which:
        results["chain"] = await lexis_hpc_chain(access_token=token)
    if "fanout" in which:
        results["fanout"] = await lexis_hpc_fanout(access_token=token)
    return results


if __name__ == "__main__":
    from lexis_prefect.demo import main

    sys.exit(main(both))
