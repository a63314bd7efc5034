"""End to end: Prefect's test harness plus a real sandbox subprocess, the library configured by LEXIS_* variables."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from lexis_prefect import hpc
from lexis_prefect.sandbox import SandboxProcess

FLOWS = Path(__file__).parents[2] / "flows"


def load_flow_module(name: str):
    """Import `flows/<name>.py` (flows/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"flows_{name}", FLOWS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess("--job-seconds", "1") as sb:
        sb.settings(queue_seconds=0.1, staging_seconds=0.1)
        yield sb


def point_lexis_at(sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make resolve_credentials() find the sandbox (LEXIS_* variables, no credentials block)."""
    monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
    for name, value in sandbox.environment().items():
        monkeypatch.setenv(name, value)


@contextlib.contextmanager
def logging_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxProcess]:
    """A sandbox of the test's own that logs every request (1 s jobs), with LEXIS_* pointed at it."""
    with SandboxProcess("--job-seconds", "1", "--log-requests") as sandbox:
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        point_lexis_at(sandbox, monkeypatch)
        yield sandbox


@pytest.fixture
def lexis_env(sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch, prefect_harness) -> SandboxProcess:
    """Point resolve_credentials() at the sandbox; on a Prefect test server."""
    point_lexis_at(sandbox, monkeypatch)
    sandbox.set_faults()
    for location in ("Karolina", "Barbora"):
        sandbox.set_available(location, True)
    return sandbox


@pytest.fixture
def fast_step_retries() -> Iterator[None]:
    """The job step's whole-task retries after 0.5 s and then 1 s instead of 5, 20 and 60 s: a fault test
    then waits on its faults, not on the production delays. Same retries, same conditions.

    The step's tasks share the one `hpc.STEP_RETRY_DELAYS` list (Prefect keeps the list it is given),
    so it is changed in place."""
    assert hpc.create_job.retry_delay_seconds is hpc.STEP_RETRY_DELAYS, "Prefect copied the delays: change this fixture"
    saved = list(hpc.STEP_RETRY_DELAYS)
    hpc.STEP_RETRY_DELAYS[:] = [0.5, 1.0]
    try:
        yield
    finally:
        hpc.STEP_RETRY_DELAYS[:] = saved


def demo_token(sandbox: SandboxProcess, user: str = "demo", password: str = "demo") -> SecretStr:
    """A fresh user access token from the sandbox's AAI (password grant)."""
    return sandbox.demo_token(user, password)
