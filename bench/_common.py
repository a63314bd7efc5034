"""Helpers shared by `fanout.py` and `polling.py`: process figures, the sandbox's request log, the server's rows.

Measurement only; nothing here is imported by the library or the tests.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import sqlite3
import subprocess
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="lexis-bench-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

TICKS = os.sysconf("SC_CLK_TCK")

#: A line of the sandbox's `--log-requests` log: "2026-11-25 19:08:07,123 <logger> GET /path 200 1.2 ms".
REQUEST_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ (GET|POST|PUT|PATCH|DELETE) (\S+) (\d{3}|-) ([\d.]+) ms$"
)


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_status_kib(pid: int, key: str) -> int | None:
    """A `kB` field of /proc/PID/status, e.g. VmHWM (peak RSS) or VmRSS."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def self_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def server_pid() -> int | None:
    """PID of Prefect's embedded API server (a uvicorn subprocess of this process), once it runs."""
    try:
        from prefect.server.api.server import SubprocessASGIServer

        for server in SubprocessASGIServer._instances.values():
            process = getattr(server, "server_process", None)
            if process is not None and process.poll() is None:
                return process.pid
    except Exception:  # noqa: BLE001 (a private API: fall back to /proc)
        pass
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text.rsplit(")", 1)[1].split()
            if fields[1] == me and "uvicorn" in (stat.parent / "cmdline").read_bytes().decode(errors="replace"):
                return int(stat.parent.name)
        except OSError:
            continue
    return None


class ThreadPeak:
    """The most threads this process had at once while inside the `with` (sampled every 0.2 s)."""

    def __enter__(self) -> ThreadPeak:
        self.peak, self._done = threading.active_count(), threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, threading.active_count())

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._sampler.join()


def quiet_console() -> None:
    """Run loggers keep sending INFO to the API (the load being measured), but not to the terminal."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler).__name__ in {"PrefectConsoleHandler", "StreamHandler", "RichHandler"}:
                handler.setLevel(logging.WARNING)


def sandbox_requests(log_file: Path, since: float = 0.0, until: float | None = None) -> list[tuple[float, str, str, str]]:
    """(epoch seconds, method, path, status) of each call the sandbox logged in [since, until]."""
    found = []
    for line in log_file.read_text(errors="replace").splitlines():
        match = REQUEST_LINE.match(line)
        if not match:
            continue
        when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if when < since or (until is not None and when > until):
            continue
        found.append((when, match.group(2), match.group(3), match.group(4)))
    return found


def kind(path: str) -> str:
    """A short name of the call: the last path segment, ids folded."""
    if path.startswith("/_sandbox"):
        return "_sandbox"
    last = re.sub(r"/\d+$|/[0-9a-f-]{16,}$", "", path).rstrip("/").rsplit("/", 1)[-1]
    return last or path


ROW_TABLES = ["flow_run", "task_run", "flow_run_state", "task_run_state", "log", "events", "event_resources", "artifact"]


def server_rows(postgres_port: int | None = None) -> dict[str, int]:
    """Row counts of the server's database (flow/task runs, states, logs, events, artifacts).

    The embedded server's SQLite file under PREFECT_HOME, or with `postgres_port` the `prefect`
    database of `deployments/stack.py up --postgres` (read with psql as user postgres).
    """
    if postgres_port is not None:
        query = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in ROW_TABLES)  # noqa: S608
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(postgres_port), "-U", "postgres", "-d", "prefect", "-AtF", " ", "-c", query],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout
        return {name: int(count) for name, count in (line.split() for line in out.splitlines())}
    database = Path(os.environ["PREFECT_HOME"]) / "prefect.db"
    if not database.exists():
        return {}
    counts: dict[str, int] = {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in ROW_TABLES:
            if table in tables:
                counts[table] = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
    return counts


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: value - before.get(key, 0) for key, value in after.items()}


def machine() -> dict[str, Any]:
    import platform

    import prefect

    return {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        "loadavg_at_start": os.getloadavg(),
    }
