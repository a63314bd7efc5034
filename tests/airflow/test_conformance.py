"""Conformance: the shim runs every DAG file of ``dags/`` to the task states REAL Airflow 2.10.5 gave it,
and every file of ``dags3/`` (written for Airflow 3) to those REAL Airflow 3 gave it.

The reference is ``expected/<stem>.json`` (``expected3/``), written by ``record_expected.py`` under the
real Airflow interpreter (see README.md). Each (DAG file, conf) case loads the file afresh through the
shim's ``airflow`` import hook and runs ``dag.test(run_conf=conf)``. A ``discovery_*`` file binds no
DAG to a name: the DAGs auto-registered while it was imported must be the ones Airflow's DagBag found.
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
#: (DAG files, expected states, the Airflow release that recorded them) by Airflow major
MAJORS = {2: (DAGS, EXPECTED, "2.10.5"), 3: (HERE / "dags3", HERE / "expected3", "3.3.2")}

pytestmark = pytest.mark.usefixtures("prefect_harness")

_module_numbers = itertools.count()


def _cases():
    for major, (_, expected_dir, _) in MAJORS.items():
        for path in sorted(expected_dir.glob("*.json")):
            expected = json.loads(path.read_text())
            for index, case in enumerate(expected["cases"]):
                prefix = "" if major == 2 else "af3-"
                yield pytest.param(major, path.stem, expected, case, id=f"{prefix}{path.stem}-{index}")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A scratch dir for the DAGs' counters (CONFORMANCE_TMP, also the cwd); os.environ restored after."""
    saved = os.environ.copy()
    monkeypatch.setenv("CONFORMANCE_TMP", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


def load_module(stem: str, monkeypatch: pytest.MonkeyPatch, dags: Path = DAGS):
    """Import ``<dags>/<stem>.py`` through the shim, under a module name of its own.

    The module stays in ``sys.modules`` for the test (callables are looked up by module), then goes.
    """
    from lexis_prefect.airflow import _current, _finder

    _finder.install(force=True)
    name = f"conformance_dag_{stem}_{next(_module_numbers)}"
    spec = importlib.util.spec_from_file_location(name, dags / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    with _current.importing(name):
        spec.loader.exec_module(module)
    return module


def found_dags(module) -> dict:
    """The DAGs the shim's loader finds in ``module``: top-level ones and auto-registered ones."""
    from lexis_prefect.airflow import _current
    from lexis_prefect.airflow.dag import DAG

    dags = {d.dag_id: d for d in vars(module).values() if isinstance(d, DAG)}
    return {**dags, **_current.registered_dags(module)}


def load_dag(stem: str, monkeypatch: pytest.MonkeyPatch, dags: Path = DAGS):
    """The DAG of ``<dags>/<stem>.py``: its module-level ``dag``, else the one DAG found."""
    module = load_module(stem, monkeypatch, dags)
    (dag,) = found_dags(module).values()
    return dag


@pytest.mark.parametrize("major", sorted(MAJORS))
def test_every_dag_file_has_expectations(major: int) -> None:
    dags, expected, _ = MAJORS[major]
    assert sorted(p.stem for p in dags.glob("*.py")) == sorted(p.stem for p in expected.glob("*.json"))


@pytest.mark.parametrize(("major", "stem", "expected", "case"), list(_cases()))
def test_conformance(major: int, stem: str, expected: dict, case: dict, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dags, _, release = MAJORS[major]
    module = load_module(stem, monkeypatch, dags)
    if "found" in expected:
        assert sorted(found_dags(module)) == expected["found"]
    dag = found_dags(module)[expected["dag_id"]]
    test_kwargs = getattr(module, "TEST_KWARGS", {})

    if "error" in case:
        from lexis_prefect.airflow.exceptions import ParamValidationError

        assert case["error"] == "ParamValidationError"
        param = re.match(r"Invalid input for param (\S+):", case["message"]).group(1)
        with pytest.raises(ParamValidationError) as excinfo:
            dag.test(run_conf=case["conf"], **test_kwargs)
        assert param in str(excinfo.value), f"Airflow said: {case['message']}"
        return

    result = dag.test(run_conf=case["conf"], **test_kwargs)
    tasks = dict(result.tasks)
    wrong = {
        task_id: {"airflow": case["tasks"].get(task_id), "shim": tasks.get(task_id)}
        for task_id in sorted(set(case["tasks"]) | set(tasks))
        if case["tasks"].get(task_id) != tasks.get(task_id)
    }
    assert not wrong, f"task states differ from Airflow {release}: {json.dumps(wrong, indent=1)}"
    assert result.state == case["state"]
    if "logical_date_set" in case:  # Airflow 3 runs record what they say about themselves
        assert (result.logical_date is not None) == case["logical_date_set"]
        assert result.run_id.split("__")[0] == case["run_id_prefix"]
    for task_id, value in case.get("xcoms", {}).items():
        assert result.xcom_pull(task_id) == value, f"{task_id}'s return value differs from Airflow {release}'s"
