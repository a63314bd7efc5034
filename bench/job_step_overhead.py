"""Wall time of the native seed flow on the sandbox, and the orchestration overhead on top of the job.

    python bench/job_step_overhead.py [--job-seconds 2 5] [--repeat 2]

For each job length it runs `flows/lexis_hpc_simple.py`'s flow in this process
(Prefect's embedded server, SQLite) against a fresh sandbox and prints: the flow's
wall time, the job's own run time (from the sandbox's record of its process),
and the difference. Machines here are noisy: compare figures of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="lexis-bench-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from lexis_prefect.sandbox import SandboxProcess  # noqa: E402

FLOW_FILE = Path(__file__).parents[1] / "flows" / "lexis_hpc_simple.py"


def load_flow():
    spec = importlib.util.spec_from_file_location("lexis_hpc_simple_bench", FLOW_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lexis_hpc_simple


async def one_run(flow, sandbox: SandboxProcess) -> tuple[float, float]:
    token = sandbox.demo_token()
    started = time.perf_counter()
    result = await flow(access_token=token)
    wall = time.perf_counter() - started
    [record] = [j for j in sandbox.jobs() if j["id"] == result.job_id]
    task = record["tasks"][0]
    return wall, task["ended"] - task["started"]


async def _warm_up() -> None:
    from prefect import flow

    @flow
    async def warm_up() -> None:
        pass

    await warm_up()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job-seconds", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    flow = load_flow()
    started = time.perf_counter()
    asyncio.run(_warm_up())
    print(f"Prefect embedded server start and first flow: {time.perf_counter() - started:.2f} s (not counted below)")
    print(f"{'job s':>6} {'run':>4} {'flow wall s':>12} {'job ran s':>10} {'overhead s':>11}")
    for seconds in args.job_seconds:
        with SandboxProcess("--job-seconds", str(seconds)) as sandbox:
            os.environ.update(sandbox.environment())
            overheads = []
            for run in range(1, args.repeat + 1):
                wall, ran = asyncio.run(one_run(flow, sandbox))
                overheads.append(wall - ran)
                print(f"{seconds:>6} {run:>4} {wall:>12.2f} {ran:>10.2f} {wall - ran:>11.2f}")
            print(f"{seconds:>6}  median overhead {statistics.median(overheads):.2f} s (includes the sandbox's 0.3 s queue, "
                  "two 0.3 s stagings, and the poll interval's lag: 1 s growing x1.5 up to 30 s)")


if __name__ == "__main__":
    main()
