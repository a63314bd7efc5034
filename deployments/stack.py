#!/usr/bin/env python3
"""Start and stop a local Prefect stack (optional PostgreSQL, server, process work pool, worker, watcher,
Airflow REST API face) by PID.

No Docker: every piece is a plain process of this machine, recorded in DIR/stack.json so that
`down` can stop exactly what `up` started.

    python deployments/stack.py up --dir DIR [--postgres] [--pool NAME] [--port N]
                                   [--base-job-template PATH] [--no-worker] [--no-watcher]
                                   [--watch-interval SECONDS] [--worker-env KEY=VALUE ...]
                                   [--no-api] [--api-port N]
    python deployments/stack.py down --dir DIR [--purge]
    python deployments/stack.py status --dir DIR

`up` prints `export PREFECT_API_URL=...` (and a `#` summary) on stdout, so
`eval "$(python deployments/stack.py up --dir /tmp/stack)"` points the shell at the new server;
progress goes to stderr. Everything lives under DIR: prefect-home/ (server PREFECT_HOME and its
SQLite database), worker-home/, watcher-home/, pg/ (PostgreSQL data),
logs/{postgres,server,worker,watcher,api}.log and stack.json. Running `up` again on a stopped DIR
reuses its databases.

The watcher is `lexis-prefect watch --interval SECONDS` (default 10), started after the worker
with the worker's environment (`--worker-env` included) but a PREFECT_HOME of its own: it resumes
the deployment runs that suspended while their HEAppE jobs run. `--no-watcher` leaves it out;
`--no-worker` leaves out both.

The Airflow REST API face is `lexis-prefect api --port N` (a free port unless `--api-port`), started
last with the worker's environment and LEXIS_CREDENTIALS_BLOCK=lexis unless that is set (the block
name prefect.yaml's deployments use; the face reads it when a request comes, so it may be saved
after `up`). Py4Lexis and the LEXIS portal talk to its URL, `airflow_api_url` in stack.json (printed
by `up`). `--no-api` leaves it out.

`down` stops the API face, the watcher, the worker, then the server, then PostgreSQL, and exits non-zero naming
anything that survived; it is safe to repeat. `status` prints stack.json and whether each PID is
alive (exit 1 if any is not).

As root, PostgreSQL runs as the `postgres` system user (it refuses root). When that user cannot
reach DIR (e.g. pytest's 0700 /tmp/pytest-of-root), the data directory is created under the system
temp dir instead, DIR/pg is a symlink to it, and `down --purge` removes it.

Importable (tests load it by path): `up(dir, ...) -> dict` (stack.json), `down(dir, purge=False)
-> list[str]` (what survived), `start_worker(dir, ...)` (for a stack started with worker=False),
`start_watcher(dir, ...)` / `stop_watcher(dir)` (also to restart a watcher that died),
`status(dir)` and `main(argv)`. Linux only: /proc tells our processes from reused PIDs.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_POOL = "lexis-hpc"
WORKER_NAME = "stack-worker"
SERVER_TIMEOUT = 90.0
WORKER_TIMEOUT = 60.0
WATCH_INTERVAL = 10.0
WATCHER_SETTLE = 5.0
STOP_TIMEOUT = 20.0
API_TIMEOUT = 60.0
MARKERS = {"server": "prefect", "worker": "prefect", "watcher": "lexis-prefect", "postgres": "postgres",
           "api": "lexis-prefect"}

# Popen objects of processes started by this interpreter: kept so that `down` in the same process
# (tests) can reap them, instead of leaving zombies and "still running" ResourceWarnings.
_CHILDREN: dict[int, subprocess.Popen] = {}


class StackError(RuntimeError):
    """A step of `up` or `down` failed; the message says which and why (and shows the log tail)."""


# --------------------------------------------------------------------------- small helpers


def _log(message: str) -> None:
    """Progress to stderr: stdout is reserved for the `eval`-able export lines."""
    print(f"stack: {message}", file=sys.stderr, flush=True)


def _script(name: str, install: str) -> str:
    """A console script of this interpreter's environment (so the stack runs the code we import)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise StackError(f"no `{name}` next to {sys.executable} nor on PATH; {install}")
    return found


def _prefect() -> str:
    return _script("prefect", "pip install prefect")


def _lexis_prefect() -> str:  # the watcher
    return _script("lexis-prefect", "pip install -e . (this repository)")


def _paths(dir: Path) -> dict[str, Path]:
    """Where each piece lives under DIR (one place, so up/down/status agree)."""
    dir = Path(dir).absolute()
    return {
        "dir": dir,
        "json": dir / "stack.json",
        "prefect_home": dir / "prefect-home",
        "worker_home": dir / "worker-home",
        "watcher_home": dir / "watcher-home",
        "pg": dir / "pg",
        "logs": dir / "logs",
    }


def _free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it; a small race remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    """Someone else's server on our port would answer our health checks: refuse early instead."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 30) -> str:
    """The end of a log, for error messages: the reason a process died is usually there."""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text[-lines:])


def _run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a short command; a failure becomes a StackError that shows its output."""
    result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)
    if result.returncode != 0:
        raise StackError(f"{what} failed ({result.returncode}): {shlex.join(cmd)}\n{result.stdout}{result.stderr}")
    return result


def _load(dir: Path) -> dict | None:
    path = _paths(dir)["json"]
    return json.loads(path.read_text()) if path.exists() else None


def _save(dir: Path, state: dict) -> None:
    """Written after every process start, so `down` can clean up even after a killed `up`."""
    path = _paths(dir)["json"]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def _http(method: str, url: str, body: dict | None = None, timeout: float = 5.0):
    """(status, parsed JSON or None); direct to loopback, never through an HTTP(S)_PROXY."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            payload = response.read()
            return response.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as error:
        return error.code, None


# --------------------------------------------------------------------------- processes and PIDs


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat fields after the command name (state first), or None when there is no such PID."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    return raw.rsplit(")", 1)[1].split()


def _starttime(pid: int) -> int | None:
    """Kernel start time of PID: with the PID it identifies a process even after PID reuse."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def _alive(pid: int | None) -> bool:
    """Running (zombies are dead: they only wait to be reaped)."""
    if not pid:
        return False
    _reap(pid)
    fields = _proc_stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def _is_ours(pid: int, marker: str, starttime: int | None = None) -> bool:
    """Alive and still the process we started: a reused PID must never be killed."""
    if not _alive(pid):
        return False
    if starttime is not None and _starttime(pid) != starttime:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline


def _group_members(pgid: int) -> list[int]:
    """Live processes of a process group: our children (flow runs, uvicorn) die with their leader."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def _reap(pid: int) -> None:
    """Collect the exit status of a process this interpreter started, so it is no zombie. Other
    children of the caller are left alone: their Popen objects own their exit status."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)


def _wait_gone(pids: callable, timeout: float) -> bool:
    """Poll until `pids()` is empty; True if it emptied in time."""
    deadline = time.monotonic() + timeout
    while pids():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _stop_group(pid: int, marker: str, starttime: int | None = None, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM the process group we started (own session: pgid == pid), SIGKILL after `timeout`.

    True when nothing of it is left. A PID now held by another program counts as gone: a process
    group id cannot be reused while any member lives, so leftover members are still ours.
    """
    if _alive(pid) and not _is_ours(pid, marker, starttime):
        return True

    def members() -> list[int]:
        _reap(pid)
        return _group_members(pid)

    if not members():
        return True
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's stack: reported as surviving
            return False
        if _wait_gone(members, wait):
            return True
    return False


def _spawn(cmd: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    """A long-running process in its own session (killable as a group, immune to our terminal's ^C)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def _stop_on_failure(proc: subprocess.Popen, marker: str, wait: callable, *args) -> None:
    """Run a readiness wait; if it fails, stop the process first (it is not in stack.json yet)."""
    try:
        wait(*args)
    except BaseException:
        _stop_group(proc.pid, marker)
        raise


def _record(state: dict, name: str, pid: int) -> None:
    """Remember a started PID with its start time (the PID-reuse guard used by `down`)."""
    state["pids"][name] = pid
    state.setdefault("starttimes", {})[name] = _starttime(pid)


# --------------------------------------------------------------------------- environments


def _clean_env(env: dict | None) -> dict:
    """The caller's environment without PREFECT_* settings: a test harness's or a user's profile
    (API URL, database, ephemeral mode) must not leak into our server."""
    base = dict(os.environ if env is None else env)
    return {k: v for k, v in base.items() if not k.startswith("PREFECT_")}


def _server_env(paths: dict, db_url: str, api_url: str, ui_url: str, env: dict | None) -> dict:
    """Home and database of this stack only; the UI told the same API URL the server listens on."""
    return {
        **_clean_env(env),
        "PREFECT_HOME": str(paths["prefect_home"]),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": db_url,
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_UI_URL": ui_url,
        "PREFECT_CLI_PROMPT": "false",
    }


def _client_env(home: Path, api_url: str, env: dict | None, extra: dict | None = None) -> dict:
    """For CLI calls and the worker: the caller's environment (flow runs inherit it, e.g. LEXIS_*),
    pointed at our server. An API key would make Prefect talk to Prefect Cloud, so it goes."""
    base = dict(os.environ if env is None else env)
    base.pop("PREFECT_API_KEY", None)
    base.pop("PREFECT_PROFILE", None)
    return {
        **base,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
        **(extra or {}),
    }


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bindir() -> Path:
    """The server binaries: pg_config's bindir, else the newest /usr/lib/postgresql/*/bin, else PATH."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split(".")])
    candidates += reversed(versions)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise StackError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; on Debian/Ubuntu: apt-get install postgresql"
    )


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the `postgres` system user."""
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise StackError("running as root needs a `postgres` system user (apt-get install postgresql creates it)")
    return ["runuser", "-u", "postgres", "--", *cmd]


def _postgres_can_use(path: Path) -> bool:
    """Whether the `postgres` user can reach `path` (every parent must be searchable by it)."""
    if os.geteuid() != 0:
        return True
    return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(path)]).returncode == 0


def _pg_datadir(paths: dict) -> Path:
    """DIR/pg, owned by `postgres` when we are root. If that user cannot reach DIR, the data lives
    under the system temp dir and DIR/pg is a symlink to it (DIR itself stays untouched)."""
    link = paths["pg"]
    if link.is_symlink():
        if link.resolve().is_dir():
            return link.resolve()
        link.unlink()  # its data was purged: start afresh
    if os.geteuid() == 0 and not _postgres_can_use(paths["dir"]):
        data = Path(tempfile.mkdtemp(prefix="lexis-stack-pg-"))
        link.symlink_to(data)
    else:
        data = link
        data.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(data, entry.pw_uid, entry.pw_gid)
    return data


def _pg_socket_opt(data: Path, port: int) -> str:
    """`-k DIR` for the Unix socket, in the data dir; TCP only when that path is too long for a socket."""
    if len(f"{data}/.s.PGSQL.{port}") < 100:
        return f"-k {shlex.quote(str(data))}"
    return "-k ''"


def start_postgres(dir: Path, port: int | None = None) -> dict:
    """initdb (once) and start PostgreSQL on 127.0.0.1 with trust auth (`create_database` follows).

    Returns {"pid", "port", "url", "data"}. pg_ctl gets our log file as its stdout rather than
    `-l PATH`: as root the `postgres` user may not be able to open DIR/logs by path.
    """
    started = time.monotonic()
    paths = _paths(dir)
    bindir = _pg_bindir()
    port = port or _free_port()
    data = _pg_datadir(paths)
    log = paths["logs"] / "postgres.log"
    if not (data / "PG_VERSION").exists():
        _initdb(bindir, data, log)
    options = f"-p {port} {_pg_socket_opt(data, port)} -c listen_addresses=127.0.0.1"
    _log(f"starting PostgreSQL on 127.0.0.1:{port}")
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60", "start"]
    returncode = _run_logged(_as_postgres(pg_ctl), log)
    pid = _postmaster_pid(data)
    if returncode != 0 or pid is None:
        stop_postgres(str(data), pid)  # a postmaster still starting after pg_ctl's timeout
        raise StackError(f"pg_ctl start failed ({returncode}); {log}:\n{_tail(log)}")
    _log(f"PostgreSQL ready after {time.monotonic() - started:.1f} s (PID {pid})")
    return {"pid": pid, "port": port, "data": str(data),
            "url": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"}


def _initdb(bindir: Path, data: Path, log: Path) -> None:
    """A new cluster with superuser `postgres` and trust auth: it listens on loopback only."""
    _log(f"initdb {data}")
    cmd = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
           "--auth-local=trust", "--auth-host=trust", "-E", "UTF8"]
    if _run_logged(_as_postgres(cmd), log) != 0:
        raise StackError(f"initdb failed; {log}:\n{_tail(log)}")


def _run_logged(cmd: list[str], log: Path) -> int:
    """Run a PostgreSQL tool with output appended to the log we opened (as root: the `postgres`
    user may be unable to open that path itself, and the postmaster inherits the descriptor)."""
    with open(log, "ab") as out:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd="/").returncode


def _postmaster_pid(data: Path) -> int | None:
    """First line of postmaster.pid, the postmaster's PID (root can read it even when mode 0600)."""
    try:
        return int((data / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def create_database(port: int) -> None:
    """Database `prefect`; an existing one (a DIR started before) is kept."""
    cmd = [str(_pg_bindir() / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "prefect"]
    result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise StackError(f"createdb prefect failed: {result.stderr.strip()}")


def stop_postgres(data: str | None, pid: int | None, starttime: int | None = None) -> bool:
    """`pg_ctl stop -m fast`; signals to the postmaster if that fails. True when it is gone."""
    if not pid or not _is_ours(pid, MARKERS["postgres"], starttime):
        return True
    if data and Path(data, "postmaster.pid").exists():
        try:
            pg_ctl = [str(_pg_bindir() / "pg_ctl"), "-D", data, "-m", "fast", "-w",
                      "-t", str(int(STOP_TIMEOUT)), "stop"]
            cmd = _as_postgres(pg_ctl)
            subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, cwd="/", timeout=STOP_TIMEOUT + 10)
        except (StackError, subprocess.TimeoutExpired, OSError):
            pass
    # SIGINT = fast shutdown, SIGQUIT = immediate, then SIGKILL (children exit when the postmaster dies).
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
        if _wait_gone(lambda: [pid] if _is_ours(pid, MARKERS["postgres"], starttime) else [], 5.0):
            return True
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return _wait_gone(lambda: [pid] if _alive(pid) else [], 5.0)


# --------------------------------------------------------------------------- Prefect server and pool


def start_server(dir: Path, port: int, db_url: str, env: dict | None = None) -> subprocess.Popen:
    """`prefect server start` on 127.0.0.1:PORT, returned once /api/health answers 200.

    The working directory is DIR, so anything Prefect writes relative to it stays in the stack.
    """
    paths = _paths(dir)
    api_url, ui_url = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}"
    log = paths["logs"] / "server.log"
    cmd = [_prefect(), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    _log(f"starting Prefect server on {ui_url} ({db_url.split(':', 1)[0]})")
    started = time.monotonic()
    proc = _spawn(cmd, _server_env(paths, db_url, api_url, ui_url, env), log, paths["dir"])
    _stop_on_failure(proc, MARKERS["server"], _wait_healthy, proc, api_url, log)
    _log(f"server healthy after {time.monotonic() - started:.1f} s (PID {proc.pid})")
    return proc


def _wait_healthy(proc: subprocess.Popen, api_url: str, log: Path, timeout: float = SERVER_TIMEOUT,
                  what: str = "Prefect server") -> None:
    """Poll API_URL/health (the server's, or the API face's); fail early (with the log) if the process
    dies meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with {proc.returncode}; {log}:\n{_tail(log)}")
        try:
            if _http("GET", f"{api_url}/health", timeout=2.0)[0] == 200:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise StackError(f"{what} not healthy after {timeout:.0f} s; {log}:\n{_tail(log)}")


def create_pool(api_url: str, pool: str, home: Path, base_job_template: str | None = None,
                env: dict | None = None) -> None:
    """`prefect work-pool create NAME --type process --overwrite` (re-running `up` updates the pool)."""
    cmd = [_prefect(), "work-pool", "create", pool, "--type", "process", "--overwrite"]
    if base_job_template:
        cmd += ["--base-job-template", str(Path(base_job_template).absolute())]
    _log(f"work pool {pool!r} (process)")
    _run(cmd, f"creating work pool {pool!r}", env=_client_env(home, api_url, env), cwd=home)


# --------------------------------------------------------------------------- worker


def start_worker(dir, worker_env: dict | None = None, env: dict | None = None,
                 timeout: float = WORKER_TIMEOUT) -> dict:
    """Start the worker for the stack in DIR (e.g. one brought up with `worker=False`), record it in
    stack.json and return the updated content; returns once the worker's heartbeat reached the server.
    """
    state = _load(dir)
    if not state or "server" not in state.get("pids", {}):
        raise StackError(f"no Prefect server recorded in {_paths(dir)['json']}; run `up` first")
    if "worker" in _alive_names(state):
        raise StackError(f"a worker is already running for {dir} (PID {state['pids']['worker']})")
    proc = _start_worker_process(dir, state["api_url"], state["pool"], worker_env, env, timeout)
    _record(state, "worker", proc.pid)
    state["worker_name"] = WORKER_NAME
    state["logs"]["worker"] = str(_paths(dir)["logs"] / "worker.log")
    _save(dir, state)
    return state


def _start_worker_process(dir, api_url: str, pool: str, worker_env: dict | None, env: dict | None,
                          timeout: float) -> subprocess.Popen:
    """`prefect worker start` for POOL, returned once the server lists its heartbeat.

    `--no-create-pool-if-not-found`: Prefect's worker silently creates a missing pool, which would
    hide a worker pointed at the wrong server; `up` creates the pool itself.
    """
    paths = _paths(dir)
    home = paths["worker_home"]
    home.mkdir(parents=True, exist_ok=True)
    log = paths["logs"] / "worker.log"
    cmd = [_prefect(), "worker", "start", "--pool", pool, "--type", "process", "--name", WORKER_NAME,
           "--install-policy", "never", "--no-create-pool-if-not-found"]
    _log(f"starting worker {WORKER_NAME!r} for pool {pool!r}")
    started, since = time.monotonic(), datetime.now(timezone.utc)
    proc = _spawn(cmd, _client_env(home, api_url, env, worker_env), log, home)
    _stop_on_failure(proc, MARKERS["worker"], _wait_worker, proc, api_url, pool, since, log, timeout)
    _log(f"worker registered after {time.monotonic() - started:.1f} s (PID {proc.pid})")
    return proc


def pool_workers(api_url: str, pool: str) -> list[dict]:
    """The workers the server knows for POOL ([] when the pool does not exist or no answer came)."""
    try:
        status, body = _http("POST", f"{api_url}/work_pools/{pool}/workers/filter", {})
    except (OSError, ValueError):
        return []
    return body if status == 200 and isinstance(body, list) else []


def _heartbeat_since(worker: dict, since: datetime) -> bool:
    """Whether this worker record was refreshed after `since`: a reused DIR keeps the record of
    the previous run's `stack-worker`, which must not pass for the new one."""
    stamp = worker.get("last_heartbeat_time")
    if not stamp:
        return False
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) >= since


def _wait_worker(proc: subprocess.Popen, api_url: str, pool: str, since: datetime, log: Path,
                 timeout: float) -> None:
    """Poll the pool's workers until ours has sent a heartbeat (the first comes at start-up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"worker exited with {proc.returncode}; {log}:\n{_tail(log)}")
        workers = pool_workers(api_url, pool)
        if any(w.get("name") == WORKER_NAME and _heartbeat_since(w, since) for w in workers):
            return
        time.sleep(0.5)
    raise StackError(f"worker not registered with pool {pool!r} after {timeout:.0f} s; {log}:\n{_tail(log)}")


# --------------------------------------------------------------------------- watcher


def start_watcher(dir, worker_env: dict | None = None, env: dict | None = None, interval: float | None = None,
                  settle: float = WATCHER_SETTLE) -> dict:
    """Start `lexis-prefect watch` for the stack in DIR, record it in stack.json and return the updated
    content. It gets the worker's environment: pass the `worker_env` and `env` given to `up` again
    (stack.json keeps no environment, which may hold secrets). `interval` defaults to the last one
    recorded. A watcher that died (killed, crashed) is simply started again; a live one is refused.
    """
    state = _load(dir)
    if not state or "server" not in state.get("pids", {}):
        raise StackError(f"no Prefect server recorded in {_paths(dir)['json']}; run `up` first")
    if "watcher" in _alive_names(state):
        raise StackError(f"a watcher is already running for {dir} (PID {state['pids']['watcher']})")
    interval = _check_interval(state.get("watch_interval", WATCH_INTERVAL) if interval is None else interval)
    proc = _start_watcher_process(dir, state["api_url"], interval, worker_env, env, settle)
    _record(state, "watcher", proc.pid)
    state["watch_interval"] = interval
    state["logs"]["watcher"] = str(_paths(dir)["logs"] / "watcher.log")
    _save(dir, state)
    return state


def stop_watcher(dir) -> bool:
    """Stop the watcher of the stack in DIR (only if its PID is still ours) and drop it from
    stack.json; True when no watcher of ours runs any more (one that had died already counts)."""
    state = _load(dir)
    if not state or "watcher" not in state.get("pids", {}):
        return True
    if "watcher" in _alive_names(state):
        _log(f"stopping watcher (PID {state['pids']['watcher']})")
        _stop_group(state["pids"]["watcher"], MARKERS["watcher"], state.get("starttimes", {}).get("watcher"))
        if "watcher" in _alive_names(state):
            return False
    state["pids"].pop("watcher")
    state.get("starttimes", {}).pop("watcher", None)
    _save(dir, state)
    return True


def _check_interval(interval) -> float:
    """A bad --watch-interval fails before anything is started (the watcher would refuse it later)."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        raise StackError(f"--watch-interval must be a number of seconds > 0, got {interval!r}")
    return float(interval)


def _start_watcher_process(dir, api_url: str, interval: float, worker_env: dict | None, env: dict | None,
                           settle: float) -> subprocess.Popen:
    """`lexis-prefect watch` with the worker's client environment and a PREFECT_HOME of its own."""
    paths = _paths(dir)
    home = paths["watcher_home"]
    home.mkdir(parents=True, exist_ok=True)
    log = paths["logs"] / "watcher.log"
    offset = log.stat().st_size if log.exists() else 0  # the log is appended to: read only this run's lines
    cmd = [_lexis_prefect(), "watch", "--interval", f"{interval:g}"]
    _log(f"starting watcher (a poll every {interval:g} s)")
    started = time.monotonic()
    proc = _spawn(cmd, _client_env(home, api_url, env, worker_env), log, home)
    _stop_on_failure(proc, MARKERS["watcher"], _wait_watcher, proc, log, offset, settle)
    _log(f"watcher running after {time.monotonic() - started:.1f} s (PID {proc.pid})")
    return proc


def _wait_watcher(proc: subprocess.Popen, log: Path, offset: int, settle: float) -> None:
    """Until the watcher logs a poll ("poll: ...") or has run `settle` seconds: an idle poll is logged
    at DEBUG only, so on a quiet stack nothing shows; `settle` covers its start-up and first poll.
    Fails, with the log, if it exits or a poll fails ("poll failed", a WARNING): the server is
    healthy by now, so that is the watcher's configuration (e.g. its PREFECT_API_URL)."""
    deadline = time.monotonic() + settle
    while True:
        try:
            with open(log, "rb") as out:
                out.seek(offset)
                text = out.read().decode(errors="replace")
        except OSError:
            text = ""
        if proc.poll() is not None:
            raise StackError(f"watcher exited with {proc.returncode}; {log}:\n{_tail(log)}")
        if "poll failed" in text:
            raise StackError(f"a poll of the watcher failed; {log}:\n{_tail(log)}")
        if "poll: " in text or time.monotonic() > deadline:
            return
        time.sleep(0.2)


# --------------------------------------------------------------------------- Airflow REST API face


def start_api(dir, worker_env: dict | None = None, env: dict | None = None, port: int | None = None,
              timeout: float = API_TIMEOUT) -> dict:
    """Start `lexis-prefect api` (Airflow's REST API v1 over the stack's server) for the stack in DIR,
    record it in stack.json (`airflow_api_url`) and return the updated content, once /api/v1/health
    answers 200."""
    state = _load(dir)
    if not state or "server" not in state.get("pids", {}):
        raise StackError(f"no Prefect server recorded in {_paths(dir)['json']}; run `up` first")
    if "api" in _alive_names(state):
        raise StackError(f"an API face is already running for {dir} (PID {state['pids']['api']})")
    port = port or _free_port()
    if _port_in_use(port):
        raise StackError(f"127.0.0.1:{port} is already in use")
    paths = _paths(dir)
    home = paths["dir"] / "api-home"
    home.mkdir(parents=True, exist_ok=True)
    log = paths["logs"] / "api.log"
    url = f"http://127.0.0.1:{port}/api/v1"
    environment = _client_env(home, state["api_url"], env, worker_env)
    environment.setdefault("LEXIS_CREDENTIALS_BLOCK", "lexis")
    cmd = [_lexis_prefect(), "api", "--host", "127.0.0.1", "--port", str(port)]
    _log(f"starting the Airflow REST API face on {url}")
    started = time.monotonic()
    proc = _spawn(cmd, environment, log, home)
    _stop_on_failure(proc, MARKERS["api"], _wait_healthy, proc, url, log, timeout, "API face")
    _log(f"API face answering after {time.monotonic() - started:.1f} s (PID {proc.pid})")
    _record(state, "api", proc.pid)
    state["airflow_api_url"] = url
    state["logs"]["api"] = str(log)
    _save(dir, state)
    return state


# --------------------------------------------------------------------------- up / down / status


def _refuse_running(dir: Path) -> None:
    """Two stacks in one DIR would share databases and overwrite each other's stack.json."""
    state = _load(dir)
    if state and _alive_names(state):
        raise StackError(f"a stack is already running in {dir} ({', '.join(_alive_names(state))}); run `down` first")


def _alive_names(state: dict) -> list[str]:
    """Names in stack.json whose PID still runs the program we started."""
    starttimes = state.get("starttimes", {})
    return [name for name, pid in state.get("pids", {}).items()
            if _is_ours(pid, MARKERS.get(name, ""), starttimes.get(name))]


def up(dir, postgres: bool = False, pool: str = DEFAULT_POOL, port: int | None = None,
       base_job_template: str | None = None, worker: bool = True, worker_env: dict | None = None,
       env: dict | None = None, watcher: bool = True, watch_interval: float = WATCH_INTERVAL,
       api: bool = False, api_port: int | None = None) -> dict:
    """Start the stack in DIR and return what stack.json holds. On any failure (or ^C) everything
    started so far is stopped again before the error propagates. The watcher starts only with the
    worker (`worker=False` leaves out both). `api`: the Airflow REST API face too (on `api_port`,
    else a free port; the command line starts it unless `--no-api`)."""
    paths = _paths(dir)
    paths["dir"].mkdir(parents=True, exist_ok=True)
    _refuse_running(paths["dir"])
    for key in ("prefect_home", "logs"):
        paths[key].mkdir(parents=True, exist_ok=True)
    _check_template(base_job_template)
    watch_interval = _check_interval(watch_interval)
    port = port or _free_port()
    if _port_in_use(port):
        raise StackError(f"127.0.0.1:{port} is already in use")
    state = _initial_state(paths, pool, port, postgres)
    _save(paths["dir"], state)
    try:
        _start_all(paths, state, postgres, port, base_job_template, worker, worker_env, env,
                   watch_interval if watcher else None)
        if api:
            state.update(start_api(paths["dir"], worker_env, env, api_port))
    except BaseException:
        _log("start-up failed; stopping what was started")
        down(paths["dir"])
        raise
    state["status"] = "up"
    _save(paths["dir"], state)
    return state


def _check_template(path: str | None) -> None:
    """A missing or malformed base job template fails before anything is started, not after the server."""
    if path is None:
        return
    try:
        template = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise StackError(f"--base-job-template {path}: {error}")
    if not isinstance(template, dict) or "job_configuration" not in template:
        raise StackError(f"--base-job-template {path}: not a base job template (no job_configuration)")


def _initial_state(paths: dict, pool: str, port: int, postgres: bool) -> dict:
    """stack.json before anything runs; PIDs and the worker are added as they start."""
    names = ["postgres"] * postgres + ["server"]
    logs = {name: str(paths["logs"] / f"{name}.log") for name in names}
    return {
        "status": "starting",
        "api_url": f"http://127.0.0.1:{port}/api",
        "ui_url": f"http://127.0.0.1:{port}",
        "pool": pool,
        "database": "postgresql" if postgres else "sqlite",
        "pids": {},
        "starttimes": {},
        "logs": logs,
        "prefect_home": str(paths["prefect_home"]),
    }


def _start_all(paths, state, postgres, port, base_job_template, worker, worker_env, env,
               watch_interval) -> None:
    """The start-up sequence; `state` is saved after each process so a failure can be undone.
    `watch_interval` None: no watcher."""
    db_url = f"sqlite+aiosqlite:///{paths['prefect_home'] / 'prefect.db'}"
    if postgres:
        pg = start_postgres(paths["dir"])
        _record(state, "postgres", pg["pid"])
        state.update(pg_data=pg["data"], pg_port=pg["port"], database_url=pg["url"])
        _save(paths["dir"], state)
        create_database(pg["port"])
        db_url = pg["url"]
    server = start_server(paths["dir"], port, db_url, env)
    _record(state, "server", server.pid)
    _save(paths["dir"], state)
    create_pool(state["api_url"], state["pool"], paths["prefect_home"], base_job_template, env)
    if worker:
        state.update(start_worker(paths["dir"], worker_env, env))
        if watch_interval is not None:
            state.update(start_watcher(paths["dir"], worker_env, env, watch_interval))


def down(dir, purge: bool = False) -> list[str]:
    """Stop watcher, worker, server, then PostgreSQL (by PID, only if the PID is still ours); return
    the names still alive afterwards ([] when clean). Repeating it is harmless. `purge` also deletes
    the PostgreSQL data when it lives outside DIR (see the module docstring)."""
    paths = _paths(dir)
    state = _load(paths["dir"])
    if state is None:
        return []
    pids, starttimes = state.get("pids", {}), state.get("starttimes", {})
    running = set(_alive_names(state))
    for name in ("api", "watcher", "worker", "server"):
        if name in running:
            _log(f"stopping {name} (PID {pids[name]})")
            _stop_group(pids[name], MARKERS[name], starttimes.get(name))
    if "postgres" in running:
        _log(f"stopping PostgreSQL (PID {pids['postgres']})")
        stop_postgres(state.get("pg_data"), pids["postgres"], starttimes.get("postgres"))
    survivors = _alive_names(state)
    state["status"] = "down" if not survivors else "partly-down"
    _save(paths["dir"], state)
    if purge and not survivors:
        _purge_external(paths, state)
    return survivors


def _purge_external(paths: dict, state: dict) -> None:
    """Remove PostgreSQL data kept outside DIR (DIR itself is the caller's to delete)."""
    data = state.get("pg_data")
    if data and not Path(data).is_relative_to(paths["dir"]) and Path(data).name.startswith("lexis-stack-pg-"):
        shutil.rmtree(data, ignore_errors=True)
        if paths["pg"].is_symlink():
            paths["pg"].unlink()


def status(dir) -> tuple[dict | None, dict[str, bool]]:
    """stack.json (None if there is none) and, per recorded process, whether it is alive."""
    state = _load(dir)
    if state is None:
        return None, {}
    alive = set(_alive_names(state))
    return state, {name: name in alive for name in state.get("pids", {})}


# --------------------------------------------------------------------------- command line


def _parse_env_pairs(pairs: list[str]) -> dict:
    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise StackError(f"--worker-env wants KEY=VALUE, got {pair!r}")
        result[key] = value
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stack.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the stack")
    p_up.add_argument("--dir", required=True, type=Path, help="where everything lives (created if missing)")
    p_up.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    p_up.add_argument("--pool", default=DEFAULT_POOL, help=f"process work pool (default {DEFAULT_POOL})")
    p_up.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
    p_up.add_argument("--base-job-template", default=None, metavar="PATH", help="JSON template for the pool")
    p_up.add_argument("--no-worker", dest="worker", action="store_false", help="server and pool only")
    p_up.add_argument("--no-watcher", dest="watcher", action="store_false",
                      help="no `lexis-prefect watch` beside the worker (suspended runs are not resumed)")
    p_up.add_argument("--watch-interval", type=float, default=WATCH_INTERVAL, metavar="SECONDS",
                      help=f"seconds between the watcher's polls (default {WATCH_INTERVAL:g})")
    p_up.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE",
                      help="extra environment for the worker, its flow runs and the watcher (repeatable)")
    p_up.add_argument("--no-api", dest="api", action="store_false",
                      help="no `lexis-prefect api` (the Airflow REST API face for Py4Lexis and the LEXIS portal)")
    p_up.add_argument("--api-port", type=int, default=None, help="port of the Airflow REST API face (default: a free one)")
    p_down = sub.add_parser("down", help="stop the stack")
    p_down.add_argument("--dir", required=True, type=Path)
    p_down.add_argument("--purge", action="store_true", help="also delete PostgreSQL data kept outside DIR")
    p_status = sub.add_parser("status", help="print stack.json and which PIDs are alive")
    p_status.add_argument("--dir", required=True, type=Path)
    return parser


def _cmd_up(args) -> int:
    state = up(args.dir, postgres=args.postgres, pool=args.pool, port=args.port,
               base_job_template=args.base_job_template, worker=args.worker,
               worker_env=_parse_env_pairs(args.worker_env), watcher=args.watcher,
               watch_interval=args.watch_interval, api=args.api, api_port=args.api_port)
    print(f"export PREFECT_API_URL={shlex.quote(state['api_url'])}")
    if state.get("airflow_api_url"):
        print(f"# Airflow REST API (Py4Lexis, the LEXIS portal): {state['airflow_api_url']}")
    pids = " ".join(f"{k}={v}" for k, v in state["pids"].items())
    print(f"# stack up: {state['ui_url']} ({state['database']}), pool {state['pool']}, {pids}; "
          f"stop: python {shlex.quote(__file__)} down --dir {shlex.quote(str(Path(args.dir).absolute()))}")
    return 0


def _cmd_down(args) -> int:
    survivors = down(args.dir, purge=args.purge)
    if survivors:
        print(f"still running: {', '.join(survivors)}", file=sys.stderr)
        return 1
    return 0


def _cmd_status(args) -> int:
    state, alive = status(args.dir)
    if state is None:
        print(f"no stack.json in {args.dir}", file=sys.stderr)
        return 1
    print(json.dumps(state, indent=2))
    for name, pid in state.get("pids", {}).items():
        print(f"{name}: PID {pid} {'alive' if alive[name] else 'not running'}")
    return 0 if alive and all(alive.values()) else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status}
    try:
        return handlers[args.command](args)
    except StackError as error:
        print(f"stack: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
