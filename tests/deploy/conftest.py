"""The deployment stack of the README, for real: a `prefect server` (SQLite, or PostgreSQL with
LEXIS_PREFECT_TEST_POSTGRES=1) and a `process` worker started by `deployments/stack.py`, the LEXIS
sandbox, the Blocks saved with our CLI, and `prefect --no-prompt deploy --all` of the repository's
`prefect.yaml`. Every piece is a subprocess, stopped by PID at the end.

These tests talk to that server, not to Prefect's test harness: each call goes through `api()`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import PrefectClient, get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from lexis_prefect.sandbox import SandboxProcess

REPO = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("LEXIS_PREFECT_TEST_POSTGRES") == "1"
#: The worker looks for scheduled runs every 2 s (Prefect's default: 10 s): runs start, and resumed
#: runs come back, sooner.
WORKER_ENV = {"PREFECT_WORKER_QUERY_SECONDS": "2"}


def load_stack_script() -> Any:
    """`deployments/stack.py`: a script, not a package module."""
    spec = importlib.util.spec_from_file_location("lexis_stack_script", REPO / "deployments" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Stack:
    """What the deployment tests need to reach: the server, the sandbox, and how to run commands."""

    api_url: str
    ui_url: str
    sandbox: SandboxProcess
    env: dict[str, str]
    dir: Path
    info: dict[str, Any]
    deployments: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run `prefect` or `lexis-prefect` (or another console script of this venv) against the stack."""
        done = subprocess.run(
            [str(BIN / args[0]), *args[1:]], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            pytest.fail(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}\n{self.logs()}")
        return done

    def logs(self) -> str:
        tails = []
        for name, path in self.info.get("logs", {}).items():
            text = Path(path).read_text(errors="replace") if Path(path).exists() else ""
            tails.append(f"--- {name} log (tail) ---\n{text[-3000:]}")
        return "\n".join(tails)

    def api(self, coroutine_function: Any, *args: Any) -> Any:
        """Run `await coroutine_function(client, *args)` against the stack's server."""

        async def call() -> Any:
            async with get_client() as client:
                return await coroutine_function(client, *args)

        with temporary_settings({PREFECT_API_URL: self.api_url}):
            return asyncio.run(call())


def _clean_environment(home: Path) -> dict[str, str]:
    """This process's environment without any LEXIS_* or PREFECT_* setting of the test session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEXIS_", "PREFECT_"))}
    return {**env, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Server + worker + sandbox + Blocks + `prefect deploy --all`, once for the session."""
    script = load_stack_script()
    where = tmp_path_factory.mktemp("stack")
    env = _clean_environment(where / "client-home")
    # Two users: the Airflow REST API face's tests check that one cannot see the other's runs.
    with SandboxProcess("--job-seconds", "2", "--user", "demo:demo", "--user", "alice:alice") as sandbox:
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        info = script.up(where, postgres=POSTGRES, env=env, worker_env=WORKER_ENV, watch_interval=1, api=True)
        try:
            env = {**env, "PREFECT_API_URL": info["api_url"], "PWD": str(REPO)}
            running = Stack(info["api_url"], info["ui_url"], sandbox, env, where, info)
            _configure(running)
            yield running
        finally:
            survivors = script.down(where, purge=True)
            assert not survivors, f"still running after down: {survivors}"


def _configure(stack: Stack) -> None:
    """What the README's deployment guide does: register and save the Blocks, then deploy."""
    stack.cli("prefect", "block", "register", "-m", "lexis_prefect")
    stack.cli("lexis-prefect", "blocks", "save-credentials", "lexis", "--sandbox", stack.sandbox.url)
    stack.cli("lexis-prefect", "blocks", "save-token", "--login", "--credentials", "lexis")
    started = time.monotonic()
    stack.cli("prefect", "--no-prompt", "deploy", "--all")
    stack.info["deploy_seconds"] = time.monotonic() - started

    async def read(client: PrefectClient) -> dict[str, Any]:
        return {f"{d.name}": d for d in await client.read_deployments()}

    listed = stack.api(read)
    stack.deployments.update({_full_name(stack, d): d for d in listed.values()})


def _full_name(stack: Stack, deployment: Any) -> str:
    async def flow_name(client: PrefectClient) -> str:
        return (await client.read_flow(deployment.flow_id)).name

    return f"{stack.api(flow_name)}/{deployment.name}"


def run_id_of(output: str) -> str:
    """The flow run id `prefect deployment run` printed (its UI URL ends with it)."""
    for line in output.splitlines():
        if "/runs/flow-run/" in line:
            return line.rsplit("/runs/flow-run/", 1)[1].strip().split()[0]
    raise AssertionError(f"no flow run URL in:\n{output}")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
