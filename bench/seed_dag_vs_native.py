"""The seed workflow two ways on the sandbox: the unchanged seed DAG through the shim vs the native flow.

    python bench/seed_dag_vs_native.py [--job-seconds 2] [--repeat 3] [--json out.json]

Both run in this process on Prefect's embedded server (SQLite) against one sandbox subprocess,
alternating: `flows/dags/lexis_hpc_simple.py` (the seed file, byte for byte) through
`dag.test()`, and `flows/lexis_hpc_simple.py` (the seed re-expressed as a native Prefect flow).
Both do the same work through the same code (token exchange and keeper, stage-in, HEAppE job,
stage-out). Prints each run's wall time, the medians and their ratio; machines here are noisy, so
only the ratio within one run means anything.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="lexis-bench-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from lexis_prefect.airflow.loader import load_dag  # noqa: E402
from lexis_prefect.sandbox import SandboxProcess  # noqa: E402

FLOWS = Path(__file__).parents[1] / "flows"


def native_flow():
    spec = importlib.util.spec_from_file_location("lexis_hpc_simple_native_bench", FLOWS / "lexis_hpc_simple.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lexis_hpc_simple


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job-seconds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    native = native_flow()
    dag = load_dag(FLOWS / "dags" / "lexis_hpc_simple.py")
    with SandboxProcess("--job-seconds", str(args.job_seconds)) as sandbox:
        os.environ.update(sandbox.environment())
        asyncio.run(native(access_token=sandbox.demo_token()))  # warm-up: server start, first writes
        shim_runs, native_runs = [], []
        for _ in range(args.repeat):
            token = sandbox.demo_token()
            result = {}
            shim_runs.append(timed(lambda: result.update(r=dag.test(run_conf={"access_token": token.get_secret_value()}))))
            assert result["r"].state == "success", result["r"].tasks
            native_runs.append(timed(lambda: asyncio.run(native(access_token=sandbox.demo_token()))))
        states = result["r"].tasks
    figures = {
        "job_seconds": args.job_seconds,
        "shim_seconds": statistics.median(shim_runs),
        "native_seconds": statistics.median(native_runs),
        "ratio": statistics.median(shim_runs) / statistics.median(native_runs),
        "shim_all": shim_runs,
        "native_all": native_runs,
        "shim_task_states": states,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(f"{'run':<34}{'median s':>10}  all s")
    print(f"{'seed DAG through the shim':<34}{figures['shim_seconds']:>10.2f}  {', '.join(f'{s:.2f}' for s in shim_runs)}")
    print(f"{'native flow':<34}{figures['native_seconds']:>10.2f}  {', '.join(f'{s:.2f}' for s in native_runs)}")
    print(f"{'ratio shim / native':<34}{figures['ratio']:>10.2f}")
    print(f"task states of the last shim run: {json.dumps(states)}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
