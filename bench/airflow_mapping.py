"""A 1,000-element dynamic task mapping: the shim vs native Prefect ``task.map`` vs real Airflow.

    python bench/airflow_mapping.py [--n 1000] [--repeat 3] [--airflow <venv>/bin/python] [--json out.json]

The DAG: ``inc.expand(x=range(n))`` of a trivial ``@task`` (returns ``x + 1``), then one task
that sums the mapped results (the lazy sequence a downstream task pulls). Through the shim it is
``dag.test()``: one Prefect task run ``inc[i]`` per map index plus the sum. The native flow does
the same with ``inc.map(range(n))`` and a summing task, on the same 16-thread pool (Airflow's
``max_active_tasks`` default). Both run in this process on Prefect's embedded server (SQLite),
alternating, each after the server has gone idle (it records a run's state events after the run
ends); only the ratio of the medians within one run means anything (2 noisy cores). The CPU
seconds of this process and of the server are reported too: other load inflates them far less.

With ``--airflow`` (the Python of a virtualenv holding apache-airflow 2.10.5), the same DAG file
also runs under real Airflow's ``dag.test()`` in a subprocess with a throwaway ``AIRFLOW_HOME``
(``airflow db migrate`` first, not timed), as ``tests/airflow/record_expected.py`` does; the time
of ``dag.test()`` itself is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="lexis-bench-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # busy 2-core machines
# the embedded SQLite answers 503 when a write loses a race with another; retry more than 5 times
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "8")

import _common as c  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

DAG_FILE = '''
import pendulum
from airflow.decorators import dag, task

N = {n}


@dag(dag_id="bench_mapping", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def bench_mapping():
    @task
    def inc(x):
        return x + 1

    @task
    def total(values):
        return sum(values)

    total(inc.expand(x=list(range(N))))


dag = bench_mapping()
'''

AIRFLOW_RUN = '''
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("bench_mapping", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
started = time.perf_counter()
run = module.dag.test()
elapsed = time.perf_counter() - started
states = sorted({str(ti.state) for ti in run.get_task_instances()})
print(json.dumps({"seconds": elapsed, "state": str(run.state), "task_states": states}))
'''


def load_shim_dag(path: Path):
    """The DAG file through the shim's ``airflow`` import hook."""
    import importlib.util

    from lexis_prefect.airflow import _finder

    _finder.install(force=True)
    spec = importlib.util.spec_from_file_location("bench_mapping_dag", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.dag


@task(cache_policy=NO_CACHE)
def inc(x: int) -> int:
    return x + 1


@task(cache_policy=NO_CACHE)
def total(values: list[int]) -> int:
    return sum(values)


def native_flow(n: int):
    @flow(name=f"native_mapping_{n}", task_runner=ThreadPoolTaskRunner(max_workers=16))
    def native() -> int:
        return total(inc.map(range(n)).result())

    return native


def settle(limit: float = 180.0) -> None:
    """Wait until the embedded server is idle (under 10% of a core over a second). A run of 1,000
    task runs leaves the server thousands of state events to record after it ends; without this
    the next run, shim or native, pays for them."""
    server = c.server_pid()
    deadline = time.monotonic() + limit
    while server and time.monotonic() < deadline:
        before = c.proc_cpu_seconds(server)
        time.sleep(1.0)
        after = c.proc_cpu_seconds(server)
        if before is None or after is None or after - before < 0.1:
            return


def timed(fn, cpu: dict[str, list[float]] | None = None) -> float:
    """Wall seconds of ``fn()``; with ``cpu``, also appends this process's CPU seconds (all its
    threads) and the embedded server's, which other load on the machine inflates far less."""
    settle()
    server = c.server_pid()
    before = (c.self_cpu_seconds(), c.proc_cpu_seconds(server) if server else None)
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu["client"].append(c.self_cpu_seconds() - before[0])
        after = c.proc_cpu_seconds(server) if server else None
        cpu["server"].append(after - before[1] if after is not None and before[1] is not None else float("nan"))
    return elapsed


def airflow_seconds(python: str, dag_file: Path) -> dict:
    """Real Airflow's ``dag.test()`` of the DAG file, in a throwaway AIRFLOW_HOME."""
    with tempfile.TemporaryDirectory(prefix="bench-airflow-home-") as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dag_file.parent),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
        env.pop("PYTHONPATH", None)
        subprocess.run([python, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=env)
        script = Path(home) / "run.py"
        script.write_text(AIRFLOW_RUN)
        proc = subprocess.run([python, str(script), str(dag_file)], capture_output=True, text=True, env=env, cwd=home)
        if proc.returncode != 0:
            raise SystemExit(f"Airflow's dag.test failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--airflow", help="Python of a virtualenv with apache-airflow 2.10.5")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-mapping-"))
    dag_file = workdir / "bench_mapping.py"
    dag_file.write_text(textwrap.dedent(DAG_FILE.format(n=args.n)))
    dag = load_shim_dag(dag_file)
    native = native_flow(args.n)
    assert native() == sum(range(1, args.n + 1))  # warm-up: embedded server, imports, first writes
    shim, plain = [], []
    shim_cpu: dict[str, list[float]] = {"client": [], "server": []}
    plain_cpu: dict[str, list[float]] = {"client": [], "server": []}
    for _ in range(args.repeat):
        result = {}
        shim.append(timed(lambda: result.setdefault("r", dag.test()), shim_cpu))
        run = result["r"]
        assert run.state == "success" and run.xcom_pull("total") == sum(range(1, args.n + 1)), run.message
        assert run.tasks["inc"] == ["success"] * args.n
        plain.append(timed(native, plain_cpu))
    figures: dict = {
        "n": args.n,
        "repeat": args.repeat,
        "shim_seconds": statistics.median(shim),
        "native_seconds": statistics.median(plain),
        "ratio_shim_native": statistics.median(shim) / statistics.median(plain),
        "shim_all": shim,
        "native_all": plain,
        "shim_cpu": shim_cpu,
        "native_cpu": plain_cpu,
        **{
            f"ratio_shim_native_cpu_{part}": statistics.median(shim_cpu[part]) / statistics.median(plain_cpu[part])
            for part in ("client", "server")
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(f"{'':<36}{'seconds':>10}")
    print(f"{'shim dag.test (median)':<36}{figures['shim_seconds']:>10.2f}")
    print(f"{'native task.map (median)':<36}{figures['native_seconds']:>10.2f}")
    print(f"{'ratio shim / native':<36}{figures['ratio_shim_native']:>10.2f}")
    for part in ("client", "server"):
        print(f"{'CPU s, ' + part + ' (shim / native)':<36}{statistics.median(shim_cpu[part]):>10.2f}"
              f"{statistics.median(plain_cpu[part]):>10.2f}  ratio {figures[f'ratio_shim_native_cpu_{part}']:.2f}")
    if args.airflow:
        airflow = airflow_seconds(args.airflow, dag_file)
        figures["airflow_seconds"] = airflow["seconds"]
        figures["airflow_state"] = airflow["state"]
        figures["ratio_shim_airflow"] = figures["shim_seconds"] / airflow["seconds"]
        print(f"{'Airflow 2.10 dag.test':<36}{airflow['seconds']:>10.2f}  ({airflow['state']}, {airflow['task_states']})")
        print(f"{'ratio shim / Airflow':<36}{figures['ratio_shim_airflow']:>10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
