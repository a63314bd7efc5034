"""Polling cost and detection latency of `wait_for_job` at its default poll policy.

    python bench/polling.py [--job-seconds 60] [--json out.json]

(a) computed: the calls per job-hour that the policies' interval sequences imply. Each poll of
    `lexis_prefect.hpc.wait_for_job` reads the job's state (`CurrentInfoForJob`, `JOB_POLL`); when
    its output is due (`TAIL_POLL`, and once at the end) it also reads every task's stdout, stderr
    and progress file in one `DownloadPartsOfJobFilesFromCluster` (not while the job is only
    submitted or queued). The wait shares the step's HEAppE session
    (`lexis_prefect.locations`), so it authenticates no more; with several jobs at a location,
    their state reads are one `ListJobsForCurrentUser` per second at most (bench/fanout.py).
(b) measured: the seed flow (`flows/lexis_hpc_simple.py`, one job step) on a sandbox started with
    `--log-requests`, the job running `--job-seconds`; the calls of the wait are counted in the
    sandbox's log and compared with (a) for the same wait length.
(c) latency from the job's end (the sandbox's `ended`) to its detection (the poll that saw it
    Finished: the wait's last `CurrentInfoForJob`, and the run's "HEAppE job N: Finished" log
    record), against the capped poll interval at that moment (target: within one interval).

Machines here are noisy (2 cores, shared): read the latency against the interval, not alone.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import _common as c  # noqa: E402 (sets PREFECT_HOME before Prefect is imported)

from lexis_prefect.config import PollPolicy  # noqa: E402
from lexis_prefect.hpc import JOB_POLL as DEFAULT  # noqa: E402 (what `wait_for_job` uses when no `poll=` is given)
from lexis_prefect.hpc import TAIL_POLL  # noqa: E402
from lexis_prefect.sandbox import SandboxProcess  # noqa: E402

FLOW_FILE = Path(__file__).parents[1] / "flows" / "lexis_hpc_simple.py"
CALLS_PER_WAIT = 0  # the step's HEAppE session is reused: no AuthenticateLexisToken of the wait's own


def poll_times(policy: PollPolicy, horizon: float) -> list[float]:
    """Seconds after the wait starts at which it polls (ignoring the calls' own time), up to `horizon`."""
    times, now = [0.0], 0.0
    for interval in policy.intervals():
        now += interval
        if now > horizon:
            return times
        times.append(now)
    return times  # pragma: no cover


def computed(policy: PollPolicy, tails: PollPolicy = TAIL_POLL) -> dict[str, Any]:
    first_hour = len(poll_times(policy, 3600))
    tail_reads = len(poll_times(tails, 3600))  # each rides on the first state poll after it is due
    steady = 3600 / policy.max_interval_seconds + 3600 / tails.max_interval_seconds
    reach_cap = next(t - i for t, i in zip(itertools.accumulate(policy.intervals()), policy.intervals()) if i >= policy.max_interval_seconds)
    return {
        "policy": policy.model_dump(),
        "tail_policy": tails.model_dump(),
        "calls_per_wait": CALLS_PER_WAIT,
        "polls_first_hour": first_hour,
        "tail_reads_first_hour": tail_reads,
        "calls_first_job_hour": first_hour + tail_reads + CALLS_PER_WAIT,
        "calls_per_later_job_hour": round(steady),
        "cap_reached_after_s": round(reach_cap, 1),
        "intervals_s": [round(i, 2) for i in itertools.islice(policy.intervals(), 12)],
    }


def load_flow():
    spec = importlib.util.spec_from_file_location("lexis_hpc_simple_bench", FLOW_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lexis_hpc_simple


async def _finished_log_time(job_id: int, since: float) -> float | None:
    """When the run's "HEAppE job N: Finished" record was logged (job ids restart with each sandbox:
    an earlier run's record of the same id is older than `since`)."""
    from prefect.client.orchestration import get_client

    wanted = f"HEAppE job {job_id}: Finished"
    async with get_client() as client:
        offset = 0
        while True:
            page = await client.read_logs(limit=200, offset=offset)
            for record in page:
                if record.message == wanted and record.timestamp.timestamp() >= since:
                    return record.timestamp.timestamp()
            if len(page) < 200:
                return None
            offset += 200


def measured(flow, job_seconds: int) -> dict[str, Any]:
    with SandboxProcess("--job-seconds", str(job_seconds), "--log-requests") as sandbox:
        os.environ.update(sandbox.environment())
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        token = sandbox.demo_token()
        since = time.time()
        result = asyncio.run(flow(access_token=token))
        until = time.time()
        [job] = [j for j in sandbox.jobs() if j["id"] == result.job_id]
        requests = c.sandbox_requests(sandbox.log_file, since, until)
    time.sleep(3)  # the run's last log batch
    logged = asyncio.run(_finished_log_time(result.job_id, since))

    submitted = next(t for t, _, path, _ in requests if path.endswith("/SubmitJob"))
    polls = [t for t, _, path, _ in requests if path.endswith("/CurrentInfoForJob") and t >= submitted]
    parts = [t for t, _, path, _ in requests if path.endswith("/DownloadPartsOfJobFilesFromCluster")]
    auths_in_wait = [t for t, _, path, _ in requests if path.endswith("/AuthenticateLexisToken") and t >= submitted]
    wait_start, detected = polls[0], polls[-1]
    wait_length = detected - wait_start
    calls = len(polls) + len(parts) + len(auths_in_wait)
    predicted_polls = len(poll_times(DEFAULT, wait_length + 0.5))
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(polls)]
    ended = job["ended"]
    capped_at_detection = gaps[-1] if gaps else None
    return {
        "job_seconds": job_seconds,
        "job_id": result.job_id,
        "job_ran_s": round(job["tasks"][0]["ended"] - job["tasks"][0]["started"], 2),
        "wait_s": round(wait_length, 2),
        "polls": len(polls),
        "predicted_polls": predicted_polls,
        "calls_in_wait": calls,
        "calls_by_kind": {"CurrentInfoForJob": len(polls), "DownloadParts": len(parts), "AuthenticateLexisToken": len(auths_in_wait)},
        "calls_per_hour_naive": round(calls / wait_length * 3600) if wait_length else None,
        "poll_gaps_s": gaps,
        "job_ended_to_detecting_poll_s": round(detected - ended, 2),
        "job_ended_to_finished_log_s": round(logged - ended, 2) if logged else None,
        "poll_interval_before_detection_s": capped_at_detection,
        "within_one_interval": capped_at_detection is not None and detected - ended <= capped_at_detection + 0.5,
        "flow_wall_s": round(until - since, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job-seconds", type=int, nargs="+", default=[60])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    model = computed(DEFAULT)
    print(f"(a) default policy {model['policy']}: intervals {model['intervals_s']} ... (the first capped wait starts {model['cap_reached_after_s']} s into the wait)")
    print(
        f"    {model['calls_first_job_hour']} calls in a job's first hour ({model['polls_first_hour']} state polls, "
        f"{model['tail_reads_first_hour']} output reads, {model['calls_per_wait']} per wait), "
        f"{model['calls_per_later_job_hour']} in each later hour"
    )
    flow = load_flow()
    runs = []
    print(
        f"{'job s':>6} {'wait s':>7} {'polls':>6} {'model':>6} {'calls':>6} {'calls/h naive':>13} "
        f"{'end->poll s':>11} {'end->log s':>10} {'interval s':>10} {'within':>6}"
    )
    for seconds in args.job_seconds:
        row = measured(flow, seconds)
        runs.append(row)
        print(
            f"{seconds:>6} {row['wait_s']:>7.1f} {row['polls']:>6} {row['predicted_polls']:>6} {row['calls_in_wait']:>6} "
            f"{row['calls_per_hour_naive'] or 0:>13} {row['job_ended_to_detecting_poll_s']:>11.2f} "
            f"{row['job_ended_to_finished_log_s'] if row['job_ended_to_finished_log_s'] is not None else float('nan'):>10.2f} "
            f"{row['poll_interval_before_detection_s'] or 0:>10.2f} {'yes' if row['within_one_interval'] else 'NO':>6}",
            flush=True,
        )
        print(f"       poll gaps s: {row['poll_gaps_s']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": c.machine(), "computed": model, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
