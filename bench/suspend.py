"""N deployment runs waiting at once on HEAppE jobs: suspended (one watcher) vs polling in process.

    python bench/suspend.py [--runs 200] [--job-seconds 120] [--interval 10] [--sqlite]
                            [--in-process-runs 40] [--pool-limit 6] [--json out.json]
    python bench/suspend.py --server-only 100      # what Suspended runs alone cost the server

Each suspended run starts a flow process twice (to suspend, and once resumed), ~5 s of CPU each
here: on 2 cores the default N=200 takes ~45 min; `--runs 100` took ~29 min (bench/README.md).

Each case gets a fresh stack (`deployments/stack.py up`, PostgreSQL unless `--sqlite`: server,
`process` pool `lexis-hpc`, worker, `lexis-prefect watch --interval W`), a fresh sandbox started
with `--log-requests`, and the setup of `tests/deploy/conftest.py` (Blocks, `prefect deploy --all`).
The worker runs with PREFECT_WORKER_QUERY_SECONDS=2 (`--query-seconds`): it looks for runs to
start (new, and resumed) every 2 s instead of Prefect's 10 s.

1. `suspend`: N runs of `lexis_hpc_simple/native` (one job each), created through the API
   (`create_flow_run_from_deployment`), the pool's concurrency limited to `--pool-limit` (a
   suspended run holds no slot: Prefect counts Pending, Running and Cancelling runs only).
2. `in-process`: `--in-process-runs` runs of the same deployment with the job variable
   env={"LEXIS_SUSPEND": "false", "LEXIS_CREDENTIALS_BLOCK": "lexis"}: each polls its job in its
   own process (the pool's limit is raised to that N: such a run holds its slot for the wait).

So that all N wait at once, each case holds the sandbox's jobs in its queue (queue_seconds very
large) until every run waits (suspend: every run Suspended; in-process: every run Running with its
job submitted), then releases the queue (queue_seconds=0): the jobs all start within one sandbox
tick and each runs J seconds (TestTemplate's `@<seconds>`; `--end-spread S` spreads the ends over
S seconds instead). The **wait window** is from two intervals after the release (the watcher has
logged the Queued -> Running change in every run by then) to 1 s before the first job ends, cut short if any run leaves
Suspended (suspend case). Before the runs, `--baseline` seconds of the idle stack (worker and
watcher, no runs; after `--settle` 15 s) give the server's idle CPU rate, which the per-run figures subtract.

Printed (and written with `--json`), per case: time from the first create to all N waiting;
flow-run processes (descendants of the worker) and python processes of the stack during the
window (min/max of the samples) and the flow processes' total RSS; the watcher's VmHWM; CPU
(utime+stime, children reaped included) of the server's process tree, PostgreSQL's, the
watcher's and the worker's tree (the flow processes) in the window; sandbox calls in the window
per location and kind, per watcher interval; the watcher's own "poll:" log lines in the window;
job end -> the run's "Resuming" state (suspend) and job end -> the run's end (both); outcome
checks: every run Completed, one HEAppE job per run, one output dataset per run (by its title).

The bench watches the runs with `count` requests only (every 2 s while they start, every 5 s
after the release), never reading the runs themselves: a first version read all N runs every
second, which showed in the server's load in the window (bench/README.md). The run states are read
once, after all runs ended.

/proc is sampled every `--sample-seconds` (2) by a thread of this process. Machines here are
shared and noisy (2 cores): compare the cases of one run, not seconds across runs. Never in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).parent))
import _common as c  # noqa: E402 (sets PREFECT_HOME before Prefect is imported)

from lexis_prefect.models.job import SEED_JOB  # noqa: E402
from lexis_prefect.resolve import run_job_name  # noqa: E402
from lexis_prefect.sandbox import SandboxProcess  # noqa: E402

REPO = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
POOL = "lexis-hpc"
DEPLOYMENT = "lexis_hpc_simple/native"
IN_PROCESS_ENV = {"LEXIS_SUSPEND": "false", "LEXIS_CREDENTIALS_BLOCK": "lexis"}
HOLD_SECONDS = 10**6  # the sandbox's queue time while the runs start: no job runs until released
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def load_stack() -> Any:
    spec = importlib.util.spec_from_file_location("lexis_stack_script", REPO / "deployments" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- /proc


def proc_table() -> dict[int, dict[str, Any]]:
    """Every process: ppid, comm, CPU (utime+stime+cutime+cstime, s), RSS (MiB), from /proc/PID/stat."""
    page = os.sysconf("SC_PAGE_SIZE")
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            continue
        table[int(entry.name)] = {
            "ppid": int(fields[1]),
            "comm": comm,
            "cpu": sum(int(f) for f in fields[11:15]) / c.TICKS,
            "rss_mib": int(fields[21]) * page / 2**20,
        }
    return table


def descendants(table: dict[int, dict[str, Any]], root: int | None) -> list[int]:
    """root and every live process below it."""
    if not root or root not in table:
        return []
    children = defaultdict(list)
    for pid, row in table.items():
        children[row["ppid"]].append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def is_python(pid: int, comm: str) -> bool:
    if comm.startswith("python") or comm in ("prefect", "lexis-prefect", "uvicorn"):
        return True
    try:
        first = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return b"python" in first


class Sampler(threading.Thread):
    """Every `every` seconds: CPU of the server, PostgreSQL, watcher, worker trees and the sandbox;
    flow-run processes (the worker's descendants) and python processes of the stack."""

    def __init__(self, pids: dict[str, int], sandbox_pid: int | None, every: float) -> None:
        super().__init__(daemon=True)
        self.pids, self.sandbox_pid, self.every = pids, sandbox_pid, every
        self.samples: list[dict[str, Any]] = []
        self._stop_event = threading.Event()

    def sample(self) -> dict[str, Any]:
        table = proc_table()
        now = time.time()
        row: dict[str, Any] = {"t": now}
        trees = {name: descendants(table, self.pids.get(name)) for name in ("server", "postgres", "watcher", "worker")}
        trees["sandbox"] = descendants(table, self.sandbox_pid)
        for name, members in trees.items():
            row[f"cpu_{name}"] = sum(table[p]["cpu"] for p in members)
        flows = [p for p in trees["worker"] if p != self.pids.get("worker")]
        flow_python = [p for p in flows if is_python(p, table[p]["comm"])]
        row["flow_processes"] = len(flow_python)
        row["flow_processes_all"] = len(flows)
        row["flow_rss_mib"] = sum(table[p]["rss_mib"] for p in flow_python)
        stack = [p for name in ("server", "watcher", "worker") for p in trees[name]]
        row["stack_python"] = sum(1 for p in stack if is_python(p, table[p]["comm"]))
        row["stack_python_names"] = dict(Counter(
            "flow run" if p in flow_python else next(n for n in ("server", "watcher", "worker") if p in trees[n])
            for p in stack if is_python(p, table[p]["comm"])
        ))
        row["postgres_processes"] = len(trees["postgres"])
        hwm = c.proc_status_kib(self.pids["watcher"], "VmHWM") if self.pids.get("watcher") else None
        row["watcher_hwm_mib"] = round(hwm / 1024, 1) if hwm else None
        row["loadavg1"] = os.getloadavg()[0]
        return row

    def run(self) -> None:
        while not self._stop_event.is_set():
            started = time.monotonic()
            try:
                self.samples.append(self.sample())
            except Exception as exc:  # noqa: BLE001 (a process vanished mid-read: next time)
                log(f"sampler: {exc}")
            self._stop_event.wait(max(0.1, self.every - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def at(self, when: float) -> dict[str, Any]:
        """The sample nearest to `when`."""
        return min(self.samples, key=lambda s: abs(s["t"] - when))

    def between(self, since: float, until: float) -> list[dict[str, Any]]:
        return [s for s in self.samples if since <= s["t"] <= until]

    def cpu(self, name: str, since: float, until: float) -> float:
        return self.at(until)[f"cpu_{name}"] - self.at(since)[f"cpu_{name}"]


# --------------------------------------------------------------------------- the runs


def job_of(tag: str, index: int, seconds: int) -> dict[str, Any]:
    job = copy.deepcopy(SEED_JOB)
    name = f"bench {tag} {index:04d}"
    job["requirements"]["job_name"] = name
    job["requirements"]["tasks"][0]["template_parameter_values"]["input_param"] = f"{tag}{index:04d}@{seconds}"
    job["data_outputs"][0]["target"]["info"]["title"] = name
    return job


def job_prefix(tag: str, index: int) -> str:
    return run_job_name(f"bench {tag} {index:04d}", "", "")[:-10]  # `<legal name> ` (the digest follows)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def location_of(path: str, first_location: str) -> str:
    """A HEAppE call's location: the first one's HEAppE is at the root, the others under /locations/<name>."""
    if path.startswith("/locations/"):
        return path.split("/")[2]
    return first_location


def watcher_polls(log_file: Path, since: float, until: float) -> list[dict[str, Any]]:
    """The watcher's "poll: ..." lines in [since, until] (its asctime is local time, like the sandbox log)."""
    import re

    pattern = re.compile(
        r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO lexis_prefect\.watch: poll: (\d+) suspended run\(s\), "
        r"(\d+) job record\(s\), HEAppE list reads (.*), resumed (\d+)$"
    )
    polls = []
    if not log_file.exists():
        return polls
    for line in log_file.read_text(errors="replace").splitlines():
        match = pattern.match(line)
        if not match:
            continue
        when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if since <= when <= until:
            polls.append({"t": when, "suspended": int(match.group(2)), "records": int(match.group(3)),
                          "list_reads": match.group(4), "resumed": int(match.group(5))})
    return polls


class Case:
    """One case (`suspend` or `in-process`): a fresh stack and sandbox, N runs, the figures."""

    def __init__(self, mode: str, n: int, args: argparse.Namespace, root: Path) -> None:
        self.mode, self.n, self.args = mode, n, args
        self.tag = "s" if mode == "suspend" else "p"
        self.dir = root / mode
        self.stack = load_stack()
        self.result: dict[str, Any] = {"mode": mode, "runs": n}

    # -- set-up ----------------------------------------------------------------------------------

    def cli(self, *argv: str, timeout: float = 300) -> str:
        done = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def run(self) -> dict[str, Any]:
        args = self.args
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("LEXIS_", "PREFECT_"))}
        base_env |= {"PREFECT_HOME": str(self.dir / "client-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        self.dir.mkdir(parents=True, exist_ok=True)
        with SandboxProcess("--log-requests") as sandbox:
            self.sandbox = sandbox
            sandbox.settings(queue_seconds=HOLD_SECONDS, staging_seconds=0.1, job_seconds=args.job_seconds)
            log(f"{self.mode}: stack up in {self.dir} ({'SQLite' if args.sqlite else 'PostgreSQL'}, watcher every {args.interval:g} s)")
            info = self.stack.up(self.dir, postgres=not args.sqlite, env=base_env, watch_interval=args.interval,
                                 worker_env={"PREFECT_WORKER_QUERY_SECONDS": f"{args.query_seconds:g}"})
            try:
                self.info = info
                self.env = {**base_env, "PREFECT_API_URL": info["api_url"], "PWD": str(REPO)}
                started = time.monotonic()
                self.cli("prefect", "block", "register", "-m", "lexis_prefect")
                self.cli("lexis-prefect", "blocks", "save-credentials", "lexis", "--sandbox", sandbox.url)
                self.cli("lexis-prefect", "blocks", "save-token", "--login", "--credentials", "lexis")
                self.cli("prefect", "--no-prompt", "deploy", "--all")
                limit = args.pool_limit if self.mode == "suspend" else self.n
                self.cli("prefect", "work-pool", "set-concurrency-limit", POOL, str(limit))
                self.result |= {"pool_limit": limit, "setup_s": round(time.monotonic() - started, 1)}
                log(f"{self.mode}: blocks saved and deployed in {self.result['setup_s']} s; pool limit {limit}")
                pids = {k: v for k, v in info["pids"].items()}
                self.sampler = Sampler(pids, sandbox._process.pid if sandbox._process else None, args.sample_seconds)
                self.sampler.start()
                try:
                    from prefect.settings import PREFECT_API_URL, temporary_settings

                    with temporary_settings({PREFECT_API_URL: info["api_url"]}):
                        asyncio.run(self.measure())
                finally:
                    self.sampler.stop()
                self.figures()
            finally:
                survivors = self.stack.down(self.dir, purge=True)
                if survivors:
                    log(f"{self.mode}: still running after down: {survivors}")
        return self.result

    # -- the measurement ---------------------------------------------------------------------------

    async def measure(self) -> None:
        from prefect.client.orchestration import get_client

        args, n = self.args, self.n
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(DEPLOYMENT)
            await asyncio.sleep(args.settle)  # the CLI calls' after-effects on the server and worker
            self.t_baseline = time.time()
            log(f"{self.mode}: idle baseline {args.baseline:g} s")
            await asyncio.sleep(args.baseline)
            self.t_create = time.time()
            variables = {"env": IN_PROCESS_ENV} if self.mode == "in-process" else None
            self.ids: list[UUID] = []
            for i in range(n):
                seconds = args.job_seconds + (round(args.end_spread * i / max(1, n - 1)) if args.end_spread else 0)
                run = await client.create_flow_run_from_deployment(
                    deployment.id, parameters={"job1": job_of(self.tag, i, seconds)}, name=f"bench-{self.tag}-{i:04d}",
                    job_variables=variables,
                )
                self.ids.append(run.id)
            self.t_created = time.time()
            log(f"{self.mode}: {n} runs created in {self.t_created - self.t_create:.1f} s")

            self.t_all = await self._until_all_wait(client)
            self.result["all_waiting_after_s"] = round(self.t_all - self.t_create, 1) if self.t_all else None
            if self.t_all is None:
                self.result["outcome"] = "not all runs came to wait"
            # Let the processes of the last runs to suspend exit before the queue opens.
            await asyncio.sleep(min(5.0, args.interval))
            self.t_release = time.time()
            self.sandbox.settings(queue_seconds=0)
            log(f"{self.mode}: all {n} waiting after {self.result['all_waiting_after_s']} s; queue released")
            await self._until_all_final(client)
            self.t_final = time.time()
            self.states = {}
            for run_id in self.ids:
                self.states[run_id] = await client.read_flow_run_states(run_id)
            self.final_runs = await self._read_runs(client)
            # When the first run left Suspended (from the states, read after the fact).
            left = [st.timestamp.timestamp() for states in self.states.values() for st in states
                    if self.t_all and st.timestamp.timestamp() > self.t_all and st.name != "Suspended"]
            self.left_suspended = min(left) if self.mode == "suspend" and left else None

    async def _read_runs(self, client: Any) -> dict[UUID, Any]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        runs = {}
        for start in range(0, len(self.ids), 200):
            chunk = self.ids[start : start + 200]
            for run in await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=200):
                runs[run.id] = run
        return runs

    async def _count(self, client: Any, *, names: list[str] | None = None, types: list[str] | None = None) -> int:
        """How many of our runs are in these states: one `count` request (no runs read, so that
        watching the runs adds next to nothing to the server's load being measured)."""
        from prefect.client.schemas.filters import (
            FlowRunFilter, FlowRunFilterId, FlowRunFilterState, FlowRunFilterStateName, FlowRunFilterStateType,
        )

        state = FlowRunFilterState(
            name=FlowRunFilterStateName(any_=names) if names else None,
            type=FlowRunFilterStateType(any_=types) if types else None,
        )
        return await client.count_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=self.ids), state=state))

    async def _until_all_wait(self, client: Any) -> float | None:
        deadline = time.monotonic() + self.args.start_timeout
        last = None
        while time.monotonic() < deadline:
            waiting = await self._count(client, names=["Suspended"] if self.mode == "suspend" else ["Running"])
            ended = await self._count(client, types=sorted(FINAL))
            counts = {"Suspended" if self.mode == "suspend" else "Running": waiting, "ended": ended}
            done = waiting == self.n
            if self.mode == "in-process":
                counts["jobs submitted"] = sum(1 for j in self.sandbox.jobs() if j["submitted"] and j["name"].startswith(f"bench {self.tag} "))
                done = done and counts["jobs submitted"] == self.n
            if counts != last:
                log(f"{self.mode}: {time.time() - self.t_create:6.1f} s: {counts}" + (" (a run ended before its job ran)" if ended else ""))
                last = counts
            if done:
                return time.time()
            await asyncio.sleep(2.0)
        return None

    async def _until_all_final(self, client: Any) -> None:
        """Until every run has ended (a count every 5 s)."""
        deadline = time.monotonic() + self.args.end_timeout + self.args.job_seconds + self.args.end_spread
        last = None
        while time.monotonic() < deadline:
            ended = await self._count(client, types=sorted(FINAL))
            if ended != last:
                log(f"{self.mode}: {time.time() - self.t_release:6.1f} s after release: {ended} of {self.n} runs ended")
                last = ended
            if ended == self.n:
                return
            await asyncio.sleep(5.0)
        self.result["outcome"] = f"not all runs ended within {self.args.end_timeout:g} s of the last job's end"

    # -- the figures -----------------------------------------------------------------------------

    def figures(self) -> None:
        args, n, r, s = self.args, self.n, self.result, self.sampler
        jobs = self.sandbox.jobs()
        datasets = self.sandbox.control("GET", "datasets")
        mine = {i: [j for j in jobs if j["name"].startswith(job_prefix(self.tag, i))] for i in range(n)}
        titles = Counter((d.get("metadata") or {}).get("title") for d in datasets)
        ends = [j["ended"] for js in mine.values() for j in js if j.get("ended")]
        first_end = min(ends) if ends else self.t_final
        # The wait window: every job Running, every run waiting, no job ended yet.
        since = self.t_release + 2 * args.interval + 1.0
        until = first_end - 1.0
        if self.mode == "suspend" and self.left_suspended is not None:
            until = min(until, self.left_suspended - 1.0)
        window = max(0.0, until - since)
        r["window_s"] = round(window, 1)
        r["window_intervals"] = round(window / args.interval, 2)
        r["timeline_s"] = {
            "baseline": args.baseline,
            "create": round(self.t_created - self.t_create, 1),
            "all_waiting": r.get("all_waiting_after_s"),
            "release_to_first_job_end": round(first_end - self.t_release, 1),
            "release_to_all_final": round(self.t_final - self.t_release, 1),
            "total_from_create": round(self.t_final - self.t_create, 1),
        }

        # 1. processes
        in_window = s.between(since, until) or [s.at((since + until) / 2)]
        r["processes_in_window"] = {
            "flow_run_processes_min_max": [min(x["flow_processes"] for x in in_window), max(x["flow_processes"] for x in in_window)],
            "stack_python_min_max": [min(x["stack_python"] for x in in_window), max(x["stack_python"] for x in in_window)],
            "stack_python_by_role": in_window[-1]["stack_python_names"],
            "flow_rss_mib_max": round(max(x["flow_rss_mib"] for x in in_window), 1),
            "flow_rss_mib_per_process": round(
                max(x["flow_rss_mib"] for x in in_window) / max(1, max(x["flow_processes"] for x in in_window)), 1
            ),
            "postgres_processes_max": max(x["postgres_processes"] for x in in_window),
        }
        if self.t_all:
            at_all = s.at(self.t_all)
            r["processes_when_all_waiting"] = {"flow_run_processes": at_all["flow_processes"], "stack_python": at_all["stack_python"]}
        starting = s.between(self.t_create, self.t_all or self.t_release)
        r["flow_run_processes_max_while_starting"] = max((x["flow_processes"] for x in starting), default=None)
        r["flow_rss_mib_max_while_starting"] = round(max((x["flow_rss_mib"] for x in starting), default=0), 1)
        r["loadavg1_in_window"] = [round(min(x["loadavg1"] for x in in_window), 2), round(max(x["loadavg1"] for x in in_window), 2)]

        # 2. the watcher's memory
        r["watcher_vmhwm_mib"] = s.samples[-1]["watcher_hwm_mib"]

        # 5. CPU in the window, and the idle rate
        baseline = max(1.0, self.t_create - self.t_baseline - 1.0)
        cpu = {}
        for name in ("server", "postgres", "watcher", "worker", "sandbox"):
            idle = s.cpu(name, self.t_baseline + 1.0, self.t_create)
            used = s.cpu(name, since, until) if window else 0.0
            cpu[name] = {
                "window_s": round(used, 2),
                "per_min": round(used / window * 60, 3) if window else None,
                "idle_per_min": round(idle / baseline * 60, 3),
                "above_idle_per_min": round((used / window - idle / baseline) * 60, 3) if window else None,
            }
            cpu[name]["above_idle_per_run_per_min"] = (
                round(cpu[name]["above_idle_per_min"] / n, 4) if cpu[name]["above_idle_per_min"] is not None else None
            )
        server_db = {k: cpu["server"][k] + cpu["postgres"][k] for k in ("window_s",)}
        r["cpu"] = cpu | {"server+postgres_window_s": round(server_db["window_s"], 2)}
        names = ("server", "postgres", "watcher", "worker", "sandbox")
        r["cpu_whole_case_s"] = {name: round(s.cpu(name, self.t_create, self.t_final), 1) for name in names}
        # Starting (create -> all waiting) and ending (first job end -> all runs ended): the processes'
        # start-ups (twice for a suspended run) are the worker tree's CPU.
        r["cpu_starting_s"] = {name: round(s.cpu(name, self.t_create, self.t_all or self.t_release), 1) for name in names}
        r["cpu_ending_s"] = {name: round(s.cpu(name, first_end, self.t_final), 1) for name in names}

        # 3. sandbox calls in the window
        first_location = "Karolina"
        calls = c.sandbox_requests(self.sandbox.log_file, since, until)
        by = Counter()
        for _, _, path, _ in calls:
            if path.startswith("/_sandbox"):
                continue
            service = "heappe" if "/heappe/" in path else ("aai" if path.startswith("/auth/") else "ddi")
            where = location_of(path, first_location) if service == "heappe" else service
            by[(where, c.kind(path))] += 1
        intervals = window / args.interval if window else None
        r["calls_in_window"] = {f"{where} {kind}": count for (where, kind), count in sorted(by.items())}
        r["calls_per_interval"] = {f"{where} {kind}": round(count / intervals, 2) for (where, kind), count in sorted(by.items())} if intervals else {}
        heappe_locations = sorted({where for (where, _) in by if where not in ("aai", "ddi")})
        r["heappe_calls_per_location_per_interval"] = {
            where: round(sum(v for (w, _), v in by.items() if w == where) / intervals, 2) for where in heappe_locations
        } if intervals else {}
        polled = watcher_polls(Path(self.info["logs"]["watcher"]), since, until)
        for where in heappe_locations or [first_location]:
            for what in ("ListJobsForCurrentUser", "AuthenticateLexisToken"):
                count = by.get((where, what), 0)
                r[f"{where} {what} per interval"] = round(count / intervals, 2) if intervals else None
                r[f"{where} {what} per watcher poll"] = round(count / len(polled), 2) if polled else None
        whole = c.sandbox_requests(self.sandbox.log_file, self.t_create, self.t_final)
        r["calls_whole_case"] = dict(Counter(c.kind(p) for _, _, p, _ in whole if not p.startswith("/_sandbox")).most_common())
        polls = watcher_polls(Path(self.info["logs"]["watcher"]), since, until)
        r["watcher_polls_in_window"] = {
            "polls": len(polls),
            "suspended_runs_seen": sorted({p["suspended"] for p in polls}),
            "list_reads": dict(Counter(p["list_reads"] for p in polls)),
            "gaps_s": [round(b["t"] - a["t"], 2) for a, b in zip(polls, polls[1:])][:20],
        }

        # 4. job end -> resume, job end -> run end
        resume_delays, end_delays, suspensions = [], [], []
        for i, run_id in enumerate(self.ids):
            js = mine[i]
            if len(js) != 1 or not js[0].get("ended"):
                continue
            ended = js[0]["ended"]
            states = self.states[run_id]
            suspensions.append(sum(1 for st in states if st.name == "Suspended"))
            resumed = [st.timestamp.timestamp() for st in states if st.name == "Resuming" and st.timestamp.timestamp() >= ended - 1]
            if resumed:
                resume_delays.append(min(resumed) - ended)
            final = [st.timestamp.timestamp() for st in states if st.type.value in FINAL]
            if final:
                end_delays.append(max(final) - ended)
        r["job_end_to_resuming_s"] = {
            "median": median(resume_delays), "max": round(max(resume_delays), 2) if resume_delays else None,
            "p90": round(sorted(resume_delays)[int(0.9 * (len(resume_delays) - 1))], 2) if resume_delays else None,
            "within_one_interval": sum(1 for d in resume_delays if d <= args.interval), "of": len(resume_delays),
        }
        r["job_end_to_run_end_s"] = {"median": median(end_delays), "max": round(max(end_delays), 2) if end_delays else None}
        r["suspensions_per_run"] = dict(Counter(suspensions))
        # The time series (s from the first create): CPU s of server, PostgreSQL, watcher; flow processes.
        r["marks_s"] = {"all_waiting": r.get("all_waiting_after_s"), "release": round(self.t_release - self.t_create, 1),
                        "window": [round(since - self.t_create, 1), round(until - self.t_create, 1)],
                        "first_job_end": round(first_end - self.t_create, 1)}
        r["samples"] = [[round(x["t"] - self.t_create, 1), round(x["cpu_server"], 2), round(x["cpu_postgres"], 2),
                         round(x["cpu_watcher"], 2), x["flow_processes"]] for x in s.samples]
        job_ends = sorted(ends)
        r["job_ends_spread_s"] = round(job_ends[-1] - job_ends[0], 1) if job_ends else None

        # outcome checks
        final_states = Counter(run.state_name for run in self.final_runs.values())
        r["final_states"] = dict(final_states)
        r["jobs_per_run"] = dict(Counter(len(js) for js in mine.values()))
        r["job_states"] = dict(Counter(str(j["state"]) for js in mine.values() for j in js))
        r["datasets_per_run"] = dict(Counter(titles.get(f"bench {self.tag} {i:04d}", 0) for i in range(n)))
        ok = (final_states.get("Completed", 0) == n and r["jobs_per_run"] == {1: n} and r["datasets_per_run"] == {1: n})
        r.setdefault("outcome", "ok" if ok else "checks failed")


# --------------------------------------------------------------------------- what the server spends on Suspended runs

PAUSE_SERVICE_OFF = 'active = "default"\n\n[profiles.default]\nPREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED = "false"\n'


def server_only(k: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """`--server-only K`: a stack without worker or watcher, K flow runs forced into Suspended
    (the state `asuspend_flow_run` proposes; no process, no HEAppE), the server's CPU for
    `--baseline` s before and after; then the same on a second stack whose server runs with
    PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED=false (a profile in its PREFECT_HOME: the
    stack passes no PREFECT_* variable to its server). Isolates what Suspended runs cost the
    server by themselves."""
    stack = load_stack()
    env = {k_: v for k_, v in os.environ.items() if not k_.startswith(("LEXIS_", "PREFECT_"))}
    out: dict[str, Any] = {"runs": k}
    for service in ("on", "off"):
        where = root / f"server-only-{service}"
        (where / "prefect-home").mkdir(parents=True, exist_ok=True)
        if service == "off":
            (where / "prefect-home" / "profiles.toml").write_text(PAUSE_SERVICE_OFF)
        log(f"server-only: stack up in {where}, pause-expiration service {service}")
        info = stack.up(where, postgres=not args.sqlite, env=env | {"PREFECT_HOME": str(where / "client-home")}, worker=False)
        sampler = Sampler(dict(info["pids"]), None, args.sample_seconds)
        sampler.start()
        try:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings({PREFECT_API_URL: info["api_url"]}):
                marks = asyncio.run(_suspend_k(k, args))
        finally:
            sampler.stop()
            stack.down(where, purge=True)
        row = {}
        for name in ("server", "postgres"):
            idle = sampler.cpu(name, marks["idle"][0], marks["idle"][1]) / (marks["idle"][1] - marks["idle"][0]) * 60
            busy = sampler.cpu(name, marks["suspended"][0], marks["suspended"][1]) / (marks["suspended"][1] - marks["suspended"][0]) * 60
            row[name] = {"idle_per_min": round(idle, 3), "with_suspended_per_min": round(busy, 3),
                         "per_run_per_min": round((busy - idle) / k, 4)}
        row["suspended_runs"] = marks["count"]
        out[f"pause_expirations_{service}"] = row
        log(f"server-only ({service}): {row}")
    return out


async def _suspend_k(k: int, args: argparse.Namespace) -> dict[str, Any]:
    import uuid

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStateName
    from prefect.states import Suspended

    @flow(name="bench-suspended")
    def placeholder() -> None:  # never runs: only its runs' states matter
        pass

    await asyncio.sleep(args.settle)
    idle = (time.time(), None)
    await asyncio.sleep(args.baseline)
    idle = (idle[0], time.time())
    async with get_client() as client:
        for i in range(k):
            run = await client.create_flow_run(placeholder, name=f"bench-suspended-{i:04d}")
            await client.set_flow_run_state(run.id, Suspended(timeout_seconds=None, pause_key=uuid.uuid4().hex), force=True)
        await asyncio.sleep(5.0)
        since = time.time()
        await asyncio.sleep(args.baseline)
        until = time.time()
        count = await client.count_flow_runs(flow_run_filter=FlowRunFilter(state=dict(name=FlowRunFilterStateName(any_=["Suspended"]))))
    return {"idle": idle, "suspended": (since, until), "count": count}


# --------------------------------------------------------------------------- report


def show(result: dict[str, Any], interval: float) -> None:
    r = result
    print(f"\n== {r['mode']}: {r['runs']} runs, pool limit {r['pool_limit']}: {r['outcome']}")
    print(f"   all waiting after {r.get('all_waiting_after_s')} s (created in {r['timeline_s']['create']} s); "
          f"window {r['window_s']} s = {r['window_intervals']} intervals; release -> all runs ended {r['timeline_s']['release_to_all_final']} s; "
          f"load average {r['loadavg1_in_window']}")
    p = r["processes_in_window"]
    print(f"   in the window: flow-run processes {p['flow_run_processes_min_max']}, python processes of the stack "
          f"{p['stack_python_min_max']} {p['stack_python_by_role']}, flow RSS {p['flow_rss_mib_max']} MiB "
          f"({p['flow_rss_mib_per_process']} MiB each); while starting: up to {r['flow_run_processes_max_while_starting']} flow processes")
    print(f"   watcher VmHWM {r['watcher_vmhwm_mib']} MiB")
    for name, row in r["cpu"].items():
        if isinstance(row, dict):
            print(f"   CPU {name:>8}: {row['window_s']:7.2f} s in the window = {row['per_min']} s/min "
                  f"(idle {row['idle_per_min']} s/min; above idle {row['above_idle_per_min']} s/min, {row['above_idle_per_run_per_min']} per run)")
    print(f"   HEAppE calls per location per interval: {r['heappe_calls_per_location_per_interval']}")
    print("   " + ", ".join(f"{k} {v}" for k, v in r.items() if k.endswith((" per interval", " per watcher poll"))))
    print(f"   calls per interval: {r['calls_per_interval']}")
    print(f"   watcher polls in the window: {r['watcher_polls_in_window']}")
    print(f"   job end -> Resuming: {r['job_end_to_resuming_s']} (interval {interval:g} s); job end -> run end: {r['job_end_to_run_end_s']}; "
          f"job ends spread over {r['job_ends_spread_s']} s")
    print(f"   final states {r['final_states']}, jobs per run {r['jobs_per_run']}, datasets per run {r['datasets_per_run']}, "
          f"suspensions per run {r['suspensions_per_run']}")


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    s, p = results.get("suspend"), results.get("in-process")
    if not s or not p:
        return {}
    out = {}
    for name in ("server", "postgres"):
        a, b = s["cpu"][name]["above_idle_per_run_per_min"], p["cpu"][name]["above_idle_per_run_per_min"]
        out[f"{name}_cpu_per_run_per_min_suspend_vs_in_process"] = [a, b]
        out[f"{name}_ratio_in_process_over_suspend"] = round(b / a, 1) if a and a > 0 else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="suspended runs (N)")
    parser.add_argument("--job-seconds", type=int, default=120, help="each HEAppE job's run time (J)")
    parser.add_argument("--interval", type=float, default=10.0, help="the watcher's poll interval (W)")
    parser.add_argument("--sqlite", action="store_true", help="the server on SQLite instead of PostgreSQL")
    parser.add_argument("--in-process-runs", type=int, default=40, help="runs polling in process (0: skip that case)")
    parser.add_argument("--pool-limit", type=int, default=6, help="the pool's concurrency while the suspending runs start")
    parser.add_argument("--query-seconds", type=float, default=2.0, help="the worker's PREFECT_WORKER_QUERY_SECONDS")
    parser.add_argument("--baseline", type=float, default=60.0, help="seconds of the idle stack measured first")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after the set-up before the baseline")
    parser.add_argument("--end-spread", type=int, default=0, help="spread the jobs' ends over this many seconds")
    parser.add_argument("--start-timeout", type=float, default=1500.0, help="seconds for all runs to come to wait")
    parser.add_argument("--end-timeout", type=float, default=1500.0, help="seconds for all runs to end after the jobs")
    parser.add_argument("--sample-seconds", type=float, default=2.0)
    parser.add_argument("--only", choices=["suspend", "in-process"], help="run one case only")
    parser.add_argument("--server-only", type=int, default=0, metavar="K",
                        help="instead: the server's CPU with K runs forced Suspended, pause-expiration service on and off")
    parser.add_argument("--dir", type=Path, help="where the stacks live (default: a temp dir)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="lexis-bench-suspend-"))
    started = time.monotonic()
    if args.server_only:
        result = server_only(args.server_only, args, root)
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps({"machine": c.machine(), "args": vars(args) | {"json": str(args.json), "dir": str(root)},
                                             "server_only": result, "wall_s": round(time.monotonic() - started)}, indent=2, default=str))
        return
    cases = [("suspend", args.runs), ("in-process", args.in_process_runs)]
    results: dict[str, dict[str, Any]] = {}
    for mode, n in cases:
        if n <= 0 or (args.only and args.only != mode):
            continue
        results[mode] = Case(mode, n, args, root).run()
        show(results[mode], args.interval)
        if args.json:
            args.json.write_text(json.dumps({"machine": c.machine(), "args": vars(args) | {"json": str(args.json), "dir": str(root)},
                                             "cases": results, "compare": compare(results)}, indent=2, default=str))
    comparison = compare(results)
    if comparison:
        print("\ncompare (CPU s per run per minute of wait, above the idle stack):", comparison)
    print(f"\nbench wall time {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"machine": c.machine(), "args": vars(args) | {"json": str(args.json), "dir": str(root)},
                                         "cases": results, "compare": comparison, "wall_s": round(time.monotonic() - started)},
                                        indent=2, default=str))


if __name__ == "__main__":
    main()
