"""One DAG file, three ways to run it: ``python dag.py``, the CLI, and in-process on the harness.

Each gives the task states real Airflow 2.10.5 recorded for the file (``expected/``), and the same
run state. The DAG (``chain_and_edges``) has every Airflow state in its default run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from tests.airflow.test_conformance import load_dag

HERE = Path(__file__).resolve().parent
STEM = "chain_and_edges"
DAG_FILE = HERE / "dags" / f"{STEM}.py"
EXPECTED = json.loads((HERE / "expected" / f"{STEM}.json").read_text())["cases"][0]
STATES_LINE = re.compile(r"dag\.test: DAG (\S+) run (\S+) ended (\w+); task states: (\{.*\})$", re.M)


def _env(tmp_path: Path, api_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        CONFORMANCE_TMP=str(tmp_path),
    )
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _run(args: list[str], tmp_path: Path, api_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `args` on the server at `api_url`, or (none given) on its own embedded server, as a user's first run."""
    return subprocess.run(args, cwd=tmp_path, env=_env(tmp_path, api_url), capture_output=True, text=True, timeout=300)


def test_expected_run_has_every_airflow_state():
    assert EXPECTED["conf"] is None
    assert set(EXPECTED["tasks"].values()) == {"success", "failed", "skipped", "upstream_failed"}


def test_python_dag_py(tmp_path):
    proc = _run([sys.executable, str(DAG_FILE)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]  # like Airflow's dag.test(): the outcome is in the log
    match = STATES_LINE.search(proc.stderr)
    assert match, proc.stderr[-3000:]
    assert match.group(1) == EXPECTED.get("dag_id", STEM) or match.group(1) == STEM
    assert match.group(3) == EXPECTED["state"]
    assert json.loads(match.group(4)) == EXPECTED["tasks"]


@pytest.mark.usefixtures("prefect_harness")
def test_cli_json(tmp_path):
    # On the harness's server: `python dag.py` above already pays for starting an embedded one.
    command = [sys.executable, "-m", "lexis_prefect.cli", "airflow", "test", str(DAG_FILE), "--json"]
    proc = _run(command, tmp_path, PREFECT_API_URL.value())
    assert proc.returncode == (0 if EXPECTED["state"] == "success" else 1), proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last == {"dag_id": STEM, "state": EXPECTED["state"], "tasks": EXPECTED["tasks"]}


@pytest.mark.usefixtures("prefect_harness")
def test_in_process_on_the_harness(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFORMANCE_TMP", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = load_dag(STEM, monkeypatch).test()
    assert (result.state, result.tasks) == (EXPECTED["state"], EXPECTED["tasks"])
