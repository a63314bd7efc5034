"""N concurrent HPC job steps in one flow on the sandbox: wall time, overhead, memory, HTTP and server load.

    python bench/fanout.py [--n 10 100] [--job-seconds 5] [--timeout 900] [--settle 30] [--json out.json]

For each N it runs `flows/lexis_hpc_multi.py`'s `lexis_hpc_fanout` (one `build_hpc_job_step`
subflow per parameter value, all gathered under one `kept_token`) in this process, on Prefect's
embedded server (SQLite, a uvicorn subprocess; or the server PREFECT_API_URL names, whose PID
`--server-pid` gives: its row counts are then not read), against a fresh sandbox started with
`--log-requests` (queue and staging 0.1 s). It prints one row per N:

- wall: the flow call; job: the longest run time of one HEAppE job (the sandbox's record);
  wall - job is the orchestration overhead (the issue's target: <= 60 s at N=1000);
- peak RSS of this (the flow) process and of the server process (VmHWM), their CPU seconds
  during the run, and the server's CPU in the `--settle` seconds after it (it drains events);
- calls the sandbox logged (AAI, DDI, HEAppE), per job and per second of the run;
- rows the server wrote, per job: logs, events, task runs (counted in its SQLite database,
  or with `--postgres-port` in the stack's PostgreSQL, after the settle time, so that late batches are in).

A run longer than `--timeout` is cancelled and its partial figures are reported. Machines here
are noisy (2 cores, shared): compare the rows of one run, not seconds across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import _common as c  # noqa: E402 (sets PREFECT_HOME before Prefect is imported)

from lexis_prefect.sandbox import SandboxProcess  # noqa: E402

FLOW_FILE = Path(__file__).parents[1] / "flows" / "lexis_hpc_multi.py"


def shared_ssl_context() -> None:
    """What-if (measurement only): every httpx client of this process shares one SSL context.

    httpx builds a new `ssl.SSLContext` (CA bundle loaded) per client unless `verify=` is one;
    our clients are made per task. This patches httpx's constructors, not lexis_prefect.
    """
    import functools

    import httpx

    context = httpx.create_ssl_context()
    for cls in (httpx.AsyncClient, httpx.Client):
        original = cls.__init__

        @functools.wraps(original)
        def init(self, *args, _original=original, **kwargs):
            if kwargs.get("verify", True) is True:
                kwargs["verify"] = context
            _original(self, *args, **kwargs)

        cls.__init__ = init


def load_fanout():
    spec = importlib.util.spec_from_file_location("lexis_hpc_multi_bench", FLOW_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lexis_hpc_fanout


async def _warm_up() -> None:
    from prefect import flow

    @flow
    async def warm_up() -> None:
        pass

    await warm_up()


async def _run(flow, token, n: int, timeout: float) -> tuple[str, Any]:
    params = [f"p{i:04d}" for i in range(n)]
    try:
        result = await asyncio.wait_for(flow(access_token=token, input_params=params), timeout)
    except asyncio.TimeoutError:
        return "timeout", None
    except Exception as exc:  # noqa: BLE001 (reported, not raised: the figures still count)
        return f"error: {type(exc).__name__}: {str(exc)[:300]}", None
    return "ok", result


def one(
    flow, n: int, job_seconds: int, timeout: float, settle: float, server: int | None, pg_port: int | None
) -> dict[str, Any]:
    with SandboxProcess("--job-seconds", str(job_seconds), "--log-requests") as sandbox:
        os.environ.update(sandbox.environment())
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        token = sandbox.demo_token()
        rows0, cpu0, srv0 = c.server_rows(pg_port), c.self_cpu_seconds(), c.proc_cpu_seconds(server) if server else None
        since = time.time()
        started = time.perf_counter()
        with c.ThreadPeak() as threads:
            status, _ = asyncio.run(_run(flow, token, n, timeout))
        wall = time.perf_counter() - started
        until = time.time()
        cpu1, srv1 = c.self_cpu_seconds(), c.proc_cpu_seconds(server) if server else None
        jobs = [j for j in sandbox.jobs() if (j.get("submitted") or j.get("created") or since) >= since - 1]
        sandbox_pid = sandbox._process.pid if sandbox._process else None
        sandbox_cpu = c.proc_cpu_seconds(sandbox_pid) if sandbox_pid else None
        sandbox_hwm = c.proc_status_kib(sandbox_pid, "VmHWM") if sandbox_pid else None
        requests = c.sandbox_requests(sandbox.log_file, since, until)
    time.sleep(settle)
    srv2 = c.proc_cpu_seconds(server) if server else None
    rows = c.delta(c.server_rows(pg_port), rows0)

    ran = [t["ended"] - t["started"] for j in jobs for t in j["tasks"] if t.get("started") and t.get("ended")]
    starts = [t["started"] for j in jobs for t in j["tasks"] if t.get("started")]
    ends = [t["ended"] for j in jobs for t in j["tasks"] if t.get("ended")]
    states = Counter(str(j["state"]) for j in jobs)
    job_time = max(ran) if ran else float(job_seconds)
    done = len(ran)
    per = n  # per job asked for: a run cut short still divides by N (see jobs_created / jobs_ran)
    kinds = Counter(c.kind(path) for _, _, path, _ in requests if not path.startswith("/_sandbox"))
    calls = sum(kinds.values())
    return {
        "n": n,
        "status": status,
        "job_seconds": job_seconds,
        "wall_s": round(wall, 2),
        "job_s": round(job_time, 2),
        "wall_minus_job_s": round(wall - job_time, 2),
        "overhead_per_job_ms": round((wall - job_time) / n * 1000, 1),
        "jobs_created": len(jobs),
        "jobs_ran": done,
        "job_states": dict(states),
        "first_job_start_after_s": round(min(starts) - since, 2) if starts else None,
        "last_job_start_after_s": round(max(starts) - since, 2) if starts else None,
        "last_job_end_after_s": round(max(ends) - since, 2) if ends else None,
        "flow_process_peak_rss_mib": round(c.self_peak_rss_mib(), 1),
        "flow_process_cpu_s": round(cpu1 - cpu0, 2),
        "flow_process_peak_threads": threads.peak,
        "server_pid_found": server is not None,
        "server_peak_rss_mib": round(c.proc_status_kib(server, "VmHWM") / 1024, 1) if server else None,
        "server_cpu_run_s": round(srv1 - srv0, 2) if server else None,
        "server_cpu_settle_s": round(srv2 - srv1, 2) if server else None,
        "settle_s": settle,
        "sandbox_cpu_s": round(sandbox_cpu, 2) if sandbox_cpu is not None else None,
        "sandbox_peak_rss_mib": round(sandbox_hwm / 1024, 1) if sandbox_hwm else None,
        "requests": calls,
        "requests_per_job": round(calls / per, 1),
        "requests_per_s": round(calls / wall, 1),
        "requests_by_kind": dict(kinds.most_common()),
        "server_rows": rows,
        "server_rows_per_job": {k: round(v / per, 1) for k, v in rows.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--job-seconds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a run is cancelled")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds of server CPU measured after a run")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--server-pid", type=int, help="PID of the Prefect API server when PREFECT_API_URL points at one of its own"
    )
    parser.add_argument(
        "--postgres-port", type=int, help="count the server's rows in this PostgreSQL (deployments/stack.py --postgres's pg_port)"
    )
    parser.add_argument(
        "--what-if",
        choices=["shared-ssl"],
        action="append",
        default=[],
        help="measure a change without making it: shared-ssl = one SSL context for every httpx client",
    )
    args = parser.parse_args()
    if "shared-ssl" in args.what_if:
        shared_ssl_context()

    started = time.perf_counter()
    asyncio.run(_warm_up())
    c.quiet_console()
    server = args.server_pid or c.server_pid()
    print(f"embedded server start and first flow: {time.perf_counter() - started:.2f} s; server pid {server}")
    flow = load_fanout()
    header = (
        f"{'N':>5} {'status':>7} {'wall s':>7} {'job s':>6} {'wall-job':>8} {'ms/job':>7} {'flow MiB':>8} {'srv MiB':>7} "
        f"{'thr':>5} {'flow cpu':>8} {'srv cpu':>7} {'+settle':>7} {'req':>6} {'req/job':>7} {'req/s':>6} {'logs/job':>8} "
        f"{'events/job':>10} {'tasks/job':>9}"
    )
    print(header)
    results = []
    for n in args.n:
        row = one(flow, n, args.job_seconds, args.timeout, args.settle, server, args.postgres_port)
        results.append(row)
        per = row["server_rows_per_job"]
        print(
            f"{n:>5} {row['status'][:7]:>7} {row['wall_s']:>7.1f} {row['job_s']:>6.1f} {row['wall_minus_job_s']:>8.1f} "
            f"{row['overhead_per_job_ms']:>7.0f} {row['flow_process_peak_rss_mib']:>8.0f} {row['server_peak_rss_mib'] or 0:>7.0f} "
            f"{row['flow_process_peak_threads']:>5} {row['flow_process_cpu_s']:>8.1f} {row['server_cpu_run_s'] or 0:>7.1f} {row['server_cpu_settle_s'] or 0:>7.1f} "
            f"{row['requests']:>6} {row['requests_per_job']:>7.1f} {row['requests_per_s']:>6.1f} {per.get('log', 0):>8.1f} "
            f"{per.get('events', 0):>10.1f} {per.get('task_run', 0):>9.1f}",
            flush=True,
        )
        if row["status"] != "ok":
            print(f"      {row['status']}; jobs created {row['jobs_created']}, ran {row['jobs_ran']}, states {row['job_states']}")
        if args.json:  # written after every N, so a later N that hangs leaves the earlier figures
            args.json.write_text(json.dumps({"machine": c.machine(), "args": vars(args) | {"json": str(args.json)}, "runs": results}, indent=2))
    print("requests by kind (last N):", results[-1]["requests_by_kind"])


if __name__ == "__main__":
    main()
