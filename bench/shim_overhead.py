"""The Airflow shim's cost: one DAG through the shim vs the same graph as a native Prefect flow.

    python bench/shim_overhead.py [--tasks 200] [--width 10] [--repeat 3] [--json out.json]

The graph: ``tasks`` tasks in layers of ``width``; each task depends on two tasks of the layer
before (a realistic fan-in, not a chain). Each task does nothing, so the figure is pure
orchestration: the shim's flow-level scheduler (trigger rules, Jinja, XCom, one Prefect task run
per Airflow task) against a native flow that submits the same tasks with ``wait_for`` to the
same thread pool (16 workers, Airflow's max_active_tasks default). Both run in this process on
Prefect's embedded server (SQLite), alternating, and the medians are compared: machines here are
noisy, so only the ratio within one run means anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="lexis-bench-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.futures import wait  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from lexis_prefect.airflow.dag import DAG  # noqa: E402
from lexis_prefect.airflow.operators import EmptyOperator  # noqa: E402


def edges(n: int, width: int) -> dict[int, list[int]]:
    """Upstreams of each task: two of the previous layer."""
    ups: dict[int, list[int]] = {}
    for i in range(n):
        layer, pos = divmod(i, width)
        if layer == 0:
            ups[i] = []
        else:
            prev = (layer - 1) * width
            ups[i] = sorted({prev + pos, prev + (pos + 1) % width})
    return ups


def shim_dag(n: int, width: int) -> DAG:
    with DAG(f"bench_{n}", schedule=None) as dag:
        ops = [EmptyOperator(task_id=f"t{i}") for i in range(n)]
        for i, ups in edges(n, width).items():
            for u in ups:
                ops[u] >> ops[i]
    return dag


@task(cache_policy=NO_CACHE)
def nothing() -> None:
    return None


def native_flow(n: int, width: int):
    graph = edges(n, width)

    @flow(name=f"native_{n}", task_runner=ThreadPoolTaskRunner(max_workers=16))
    def native() -> None:
        futures = {}
        for i, ups in graph.items():
            futures[i] = nothing.with_options(task_run_name=f"t{i}").submit(wait_for=[futures[u] for u in ups])
        wait(list(futures.values()))

    return native


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    dag = shim_dag(args.tasks, args.width)
    native = native_flow(args.tasks, args.width)
    native()  # warm-up: starts the embedded server, imports, first DB writes
    shim, plain = [], []
    for _ in range(args.repeat):
        result = {}
        shim.append(timed(lambda: result.setdefault("r", dag.test())))
        assert result["r"].state == "success", result["r"].message
        plain.append(timed(native))
    figures = {
        "tasks": args.tasks,
        "repeat": args.repeat,
        "shim_seconds": statistics.median(shim),
        "native_seconds": statistics.median(plain),
        "ratio": statistics.median(shim) / statistics.median(plain),
        "shim_all": shim,
        "native_all": plain,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(f"{'graph':<28}{'shim s':>10}{'native s':>10}{'ratio':>8}")
    print(f"{args.tasks} tasks, width {args.width:<11}{figures['shim_seconds']:>10.2f}"
          f"{figures['native_seconds']:>10.2f}{figures['ratio']:>8.2f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
