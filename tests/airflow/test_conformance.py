"""Conformance: the shim runs every DAG file of ``dags/`` to the task states REAL Airflow 2.10.5 gave it.

The reference is ``expected/<stem>.json``, written by ``record_expected.py`` under the real Airflow
interpreter (see README.md). Each (DAG file, conf) case loads the file afresh through the shim's
``airflow`` import hook and runs ``dag.test(run_conf=conf)``.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DAGS = HERE / "dags"
EXPECTED = HERE / "expected"

pytestmark = pytest.mark.usefixtures("prefect_harness")

_module_numbers = itertools.count()


def _cases():
    for path in sorted(EXPECTED.glob("*.json")):
        expected = json.loads(path.read_text())
        for index, case in enumerate(expected["cases"]):
            yield pytest.param(path.stem, expected["dag_id"], case, id=f"{path.stem}-{index}")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A scratch dir for the DAGs' counters (CONFORMANCE_TMP, also the cwd); os.environ restored after."""
    saved = os.environ.copy()
    monkeypatch.setenv("CONFORMANCE_TMP", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


def load_dag(stem: str, monkeypatch: pytest.MonkeyPatch):
    """Import ``dags/<stem>.py`` through the shim, under a module name of its own, and return its ``dag``.

    The module stays in ``sys.modules`` for the test (callables are looked up by module), then goes.
    """
    from lexis_prefect.airflow import _finder

    _finder.install(force=True)
    name = f"conformance_dag_{stem}_{next(_module_numbers)}"
    spec = importlib.util.spec_from_file_location(name, DAGS / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module.dag


def test_every_dag_file_has_expectations() -> None:
    assert sorted(p.stem for p in DAGS.glob("*.py")) == sorted(p.stem for p in EXPECTED.glob("*.json"))


@pytest.mark.parametrize(("stem", "dag_id", "case"), list(_cases()))
def test_conformance(stem: str, dag_id: str, case: dict, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load_dag(stem, monkeypatch)
    assert dag.dag_id == dag_id

    if "error" in case:
        from lexis_prefect.airflow.exceptions import ParamValidationError

        assert case["error"] == "ParamValidationError"
        param = re.match(r"Invalid input for param (\S+):", case["message"]).group(1)
        with pytest.raises(ParamValidationError) as excinfo:
            dag.test(run_conf=case["conf"])
        assert param in str(excinfo.value), f"Airflow said: {case['message']}"
        return

    result = dag.test(run_conf=case["conf"])
    tasks = dict(result.tasks)
    wrong = {
        task_id: {"airflow": case["tasks"].get(task_id), "shim": tasks.get(task_id)}
        for task_id in sorted(set(case["tasks"]) | set(tasks))
        if case["tasks"].get(task_id) != tasks.get(task_id)
    }
    assert not wrong, f"task states differ from Airflow 2.10.5: {json.dumps(wrong, indent=1)}"
    assert result.state == case["state"]
