"""deployments/stack.py: a real local Prefect stack (server, worker, `lexis-prefect watch`) started and
stopped by PID (SQLite; PostgreSQL opt-in)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

STACK_SCRIPT = Path(__file__).parents[2] / "deployments" / "stack.py"


def load_stack_script():
    """Import deployments/stack.py by path (deployments/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("lexis_prefect_stack", STACK_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


script = load_stack_script()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The script as users run it, in the caller's environment (conftest's PREFECT_HOME included)."""
    return subprocess.run([sys.executable, str(STACK_SCRIPT), *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=180)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def assert_all_gone(state: dict) -> None:
    alive = {name: pid for name, pid in state["pids"].items() if script._alive(pid)}
    assert not alive, f"still alive after down: {alive}"


def environ(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def kill_9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while script._alive(pid):
        assert time.monotonic() < deadline, f"PID {pid} survived SIGKILL"
        time.sleep(0.1)


def test_sqlite_stack_up_and_down_through_the_cli(tmp_path: Path) -> None:
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["stream_output"]["default"] = False
    (tmp_path / "template.json").write_text(json.dumps(template))
    stack_dir = tmp_path / "stack"
    up = run_cli("up", "--dir", str(stack_dir), "--pool", "test-pool", "--worker-env", "LEXIS_STACK_TEST=yes",
                 "--base-job-template", str(tmp_path / "template.json"), "--watch-interval", "1")
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads((stack_dir / "stack.json").read_text())
        assert f"export PREFECT_API_URL={state['api_url']}" in up.stdout.splitlines()
        assert state["database"] == "sqlite" and set(state["pids"]) == {"server", "worker", "watcher", "api"}
        assert set(state["starttimes"]) == {"server", "worker", "watcher", "api"} and state["watch_interval"] == 1
        api = state["api_url"]

        assert script._http("GET", f"{api}/health")[0] == 200
        status, pool = script._http("GET", f"{api}/work_pools/test-pool")
        assert status == 200 and pool["type"] == "process"
        assert pool["base_job_template"]["variables"]["properties"]["stream_output"]["default"] is False
        assert [w["name"] for w in script.pool_workers(api, "test-pool")] == ["stack-worker"]
        worker_env = environ(state["pids"]["worker"])
        assert b"LEXIS_STACK_TEST=yes" in worker_env and f"PREFECT_API_URL={api}".encode() in worker_env

        watcher = state["pids"]["watcher"]  # the worker's environment, a home of its own
        assert cmdline(watcher)[1:] == [str(Path(sys.executable).parent / "lexis-prefect"), "watch", "--interval", "1"]
        watcher_env = environ(watcher)
        assert b"LEXIS_STACK_TEST=yes" in watcher_env and f"PREFECT_API_URL={api}".encode() in watcher_env
        assert f"PREFECT_HOME={stack_dir.absolute() / 'watcher-home'}".encode() in watcher_env
        assert state["logs"]["watcher"] == str(stack_dir.absolute() / "logs" / "watcher.log")
        assert "stack: watcher running after" in up.stderr and "watcher=" in up.stdout

        face = state["airflow_api_url"]  # the Airflow REST API face, with the worker's environment
        assert f"# Airflow REST API (Py4Lexis, the LEXIS portal): {face}" in up.stdout.splitlines()
        status, health = script._http("GET", f"{face}/health")
        assert status == 200 and health["metadatabase"] == {"status": "healthy"}
        assert script._http("GET", f"{face}/dags")[0] == 401  # no bearer token
        face_env = environ(state["pids"]["api"])
        assert b"LEXIS_STACK_TEST=yes" in face_env and f"PREFECT_API_URL={api}".encode() in face_env
        assert b"LEXIS_CREDENTIALS_BLOCK=lexis" in face_env

        assert (stack_dir / "prefect-home" / "prefect.db").exists()
        status = run_cli("status", "--dir", str(stack_dir))
        assert status.returncode == 0 and f"watcher: PID {watcher} alive" in status.stdout

        down = run_cli("down", "--dir", str(stack_dir))
        assert down.returncode == 0, down.stderr
        assert down.stderr.index("stopping api") < down.stderr.index("stopping watcher") < down.stderr.index("stopping worker")
        assert_all_gone(state)
        assert not port_open(int(api.rsplit(":", 1)[1].split("/")[0]))
        assert not port_open(int(face.rsplit(":", 1)[1].split("/")[0]))
        assert run_cli("status", "--dir", str(stack_dir)).returncode == 1
        assert run_cli("down", "--dir", str(stack_dir)).returncode == 0  # idempotent
    finally:
        script.down(stack_dir)


def test_separate_worker_and_watcher_failed_up_and_reused_dir(tmp_path: Path) -> None:
    """In-process, on one DIR (one SQLite database, migrated once, to keep this test short):
    up(worker=False) + start_worker() + start_watcher(); a watcher killed with SIGKILL is started
    again, a second live one refused, one that exits or cannot poll reported with its log; down;
    an `up` that fails at the work pool (a name Prefect rejects) stops the server it started; a last
    `up` with the previous `stack-worker` still listed by the server waits for the new worker's own
    heartbeat."""
    stack_dir = tmp_path / "stack"

    def recorded() -> set[str]:
        return set(json.loads((stack_dir / "stack.json").read_text())["pids"])

    try:
        first = script.up(stack_dir, worker=False)
        assert set(first["pids"]) == {"server"} and not script.pool_workers(first["api_url"], "lexis-hpc")
        first = script.start_worker(stack_dir)
        assert recorded() == {"server", "worker"}

        first = script.start_watcher(stack_dir, interval=1)
        killed = first["pids"]["watcher"]
        assert recorded() == {"server", "worker", "watcher"} and first["watch_interval"] == 1
        kill_9(killed)
        assert script.status(stack_dir)[1] == {"server": True, "worker": True, "watcher": False}
        first = script.start_watcher(stack_dir)  # the recorded PID is dead: start again, same interval
        assert first["pids"]["watcher"] != killed and cmdline(first["pids"]["watcher"])[-1] == "1"
        assert script.status(stack_dir)[1] == {"server": True, "worker": True, "watcher": True}
        with pytest.raises(script.StackError, match="a watcher is already running"):
            script.start_watcher(stack_dir)
        assert script.stop_watcher(stack_dir) and recorded() == {"server", "worker"}
        assert not script._alive(first["pids"]["watcher"]) and script.stop_watcher(stack_dir)

        with pytest.raises(script.StackError, match="watcher exited") as failed_start:
            script.start_watcher(stack_dir, worker_env={"PYTHONHOME": "/nonexistent"})
        assert "No module named 'encodings'" in str(failed_start.value)  # the log's tail
        with pytest.raises(script.StackError, match="a poll of the watcher failed"):  # settle=60: no race
            script.start_watcher(stack_dir, worker_env={"PREFECT_API_URL": "http://127.0.0.1:1/api"}, settle=60)
        assert recorded() == {"server", "worker"}
        first = script.start_watcher(stack_dir)
        assert script.down(stack_dir) == []
        assert_all_gone(first)

        with pytest.raises(script.StackError, match="creating work pool"):
            script.up(stack_dir, pool="no/slashes")
        failed = json.loads((stack_dir / "stack.json").read_text())
        assert set(failed["pids"]) == {"server"}
        assert_all_gone(failed)

        with pytest.raises(script.StackError, match="--watch-interval"):
            script.up(stack_dir, watch_interval=0)

        second = script.up(stack_dir, watch_interval=2)
        assert second["pids"]["worker"] != first["pids"]["worker"] and second["watch_interval"] == 2
        assert script.status(stack_dir)[1] == {"server": True, "worker": True, "watcher": True}
        assert script.down(stack_dir) == []
        assert_all_gone(second)
    finally:
        script.down(stack_dir)


def test_bad_base_job_template_fails_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "template.json"
    bad.write_text("{not json")
    done = run_cli("up", "--dir", str(tmp_path / "stack"), "--base-job-template", str(bad))
    assert done.returncode == 1 and "--base-job-template" in done.stderr and not done.stdout
    assert not (tmp_path / "stack" / "stack.json").exists()


def test_down_never_kills_a_reused_pid(tmp_path: Path) -> None:
    """A recorded PID now held by another program (no "prefect" in its command line) is left alone."""
    other = subprocess.Popen(["sleep", "30"])
    try:
        pids = {"watcher": other.pid, "server": other.pid, "worker": 2**22 + 1}
        (tmp_path / "stack.json").write_text(json.dumps({"pids": pids}))
        assert script.stop_watcher(tmp_path) and other.poll() is None
        assert script.down(tmp_path) == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


@pytest.mark.skipif(
    os.environ.get("LEXIS_PREFECT_TEST_POSTGRES") != "1",
    reason="PostgreSQL stack is opt-in: set LEXIS_PREFECT_TEST_POSTGRES=1 (needs apt-get install postgresql)",
)
def test_postgres_stack(tmp_path: Path) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    flow_name = f"stack-check-{uuid.uuid4().hex[:8]}"

    @flow(name=flow_name)
    def trivial() -> None:
        """Only created as a run through the API, never executed."""

    stack_dir = tmp_path / "stack"
    try:
        state = script.up(stack_dir, postgres=True)
        assert state["database"] == "postgresql" and set(state["pids"]) == {"postgres", "server", "worker", "watcher"}
        assert script.pool_workers(state["api_url"], "lexis-hpc")

        with temporary_settings({PREFECT_API_URL: state["api_url"]}):
            with get_client(sync_client=True) as client:
                run = client.create_flow_run(trivial)
        query = f"select flow.name from flow_run join flow on flow.id = flow_run.flow_id where flow_run.id = '{run.id}'"
        psql = [str(script._pg_bindir() / "psql"), "-X", "-At", "-h", "127.0.0.1", "-p", str(state["pg_port"]),
                "-U", "postgres", "prefect", "-c", query]
        out = subprocess.run(psql, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == flow_name

        assert script.down(stack_dir, purge=True) == []
        assert_all_gone(state)
        assert not port_open(state["pg_port"])
    finally:
        script.down(stack_dir, purge=True)
