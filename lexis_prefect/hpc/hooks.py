"""Flow hooks: a cancelled run's HEAppE jobs do not run on, and `hpc_flow` to attach them."""

from __future__ import annotations
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from prefect import flow
from lexis_prefect.config import env_flag
from lexis_prefect.keeper import forget_offline_token, restore_keeper, stop_keeper
from lexis_prefect.hpc.calls import _session
from lexis_prefect.hpc.jobs import _stop_job
from lexis_prefect.hpc.records import JobRecord, _unrecord, recorded_jobs


logger = logging.getLogger("lexis_prefect.hpc")


async def cancel_recorded_jobs(
    keeper_id: str, credentials_block: str | None = None, only: Callable[[JobRecord], bool] | None = None
) -> list[int]:
    """Cancel the HEAppE jobs of the run that may still be active (those `only` picks; default all).

    Runs without the run's keeper (often in another process): it refreshes the offline token
    that `refresh_token` saved, and forgets it when no job of the run is left recorded.
    """
    everything = await recorded_jobs(keeper_id)
    recorded = [r for r in everything if only is None or only(r)]
    left = len(everything) - len(recorded)
    if not everything:
        await forget_offline_token(keeper_id)
        return []
    if not recorded:
        return []
    credentials_block = credentials_block or next((r.credentials_block for r in recorded if r.credentials_block), None)
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
    finally:  # the saved token stays while jobs running on may be re-attached to
        await stop_keeper.fn(keeper_id, forget_token=left == 0)
    return cancelled


def cancel_on_crash(option: bool | None = None) -> bool:
    """Whether a crashed run cancels its HEAppE jobs: `option`, else `LEXIS_CANCEL_ON_CRASH` (default no)."""
    return option if option is not None else env_flag("LEXIS_CANCEL_ON_CRASH", False)


async def cancel_hpc_jobs(flow: Any, flow_run: Any, state: Any) -> None:
    """A flow `on_cancellation` hook: a user's cancel cancels the run's HEAppE jobs too."""
    from prefect.logging.loggers import flow_run_logger

    keeper_id = flow_run.parameters.get("run_key") or str(flow_run.id)
    cancelled = await cancel_recorded_jobs(keeper_id, flow_run.parameters.get("credentials_block"))
    if cancelled:  # in the run's logs: the hook often runs in the worker, not in the flow's process
        flow_run_logger(flow_run, flow).warning("run ended %s: cancelled HEAppE job(s) %s", state.name, cancelled)


def crash_hook(option: bool | None = None) -> Callable[[Any, Any, Any], Awaitable[None]]:
    """An `on_crashed` hook. A crash (the run's process or worker killed) is not a cancel: the HEAppE
    jobs, which may have computed for days, run on, and a resumed or rerun run re-attaches to them.
    With `cancel_on_crash` (`option`, else `LEXIS_CANCEL_ON_CRASH`) they are cancelled instead."""

    async def hpc_jobs_on_crash(flow: Any, flow_run: Any, state: Any) -> None:
        from prefect.logging.loggers import flow_run_logger

        if cancel_on_crash(option):
            await cancel_hpc_jobs(flow, flow_run, state)
            return
        keeper_id = flow_run.parameters.get("run_key") or str(flow_run.id)
        # A job the run was cancelling when it stopped (Ctrl-C, its own cancel failed) is cancelled.
        cancelled = await cancel_recorded_jobs(
            keeper_id, flow_run.parameters.get("credentials_block"), only=lambda r: r.cancel_requested
        )
        if cancelled:
            flow_run_logger(flow_run, flow).warning("run ended %s: cancelled HEAppE job(s) %s", state.name, cancelled)
        if running := [r.job_id for r in await recorded_jobs(keeper_id)]:
            flow_run_logger(flow_run, flow).warning(
                "run crashed: HEAppE job(s) %s run on; rerun it (same run, or the same run_key) to re-attach, "
                "or cancel it to cancel them",
                running,
            )

    return hpc_jobs_on_crash


def hpc_flow(*, cancel_on_crash: bool | None = None, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """`@flow(...)` for a workflow that runs HPC jobs: cancelling the run cancels its HEAppE jobs.

    A crash leaves them running (`crash_hook`) unless `cancel_on_crash` (default:
    `LEXIS_CANCEL_ON_CRASH`, off). The flow should take `run_key` and `credentials_block`
    parameters if it uses them, which is where the hooks look.
    """
    return flow(on_cancellation=[cancel_hpc_jobs], on_crashed=[crash_hook(cancel_on_crash)], **options)
