"""Every public Airflow module path that DAG files import is served, or fails at import saying so.

The paths are generated from the real Airflow packages by ``modules/generate.py`` (Airflow 2.10.5:
``modules/airflow2.txt``; Airflow 3.3.2: ``modules/airflow3.txt``) and checked in. For each, the
shim's ``import`` either works or raises an ImportError that names the module and the coverage page
(docs/airflow-compat.md); a facade that breaks with any other error (a name it re-exports that the
shim lacks, a typo) fails here. Adding a facade keeps this green by itself; nothing to update.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from lexis_prefect.airflow import _finder

HERE = Path(__file__).resolve().parent / "modules"
COVERAGE_DOC = "docs/airflow-compat.md"


def _paths(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def _outcome(path: str) -> str:
    """``served``, or the ImportError's message (re-raised if it does not say where coverage is)."""
    _finder.install(force=True)
    try:
        importlib.import_module(path)
    except ImportError as exc:
        assert COVERAGE_DOC in str(exc), f"{path}: {exc!r} does not point to {COVERAGE_DOC}"
        parents = [path.rsplit(".", n)[0] for n in range(path.count(".") + 1)]
        assert any(repr(p) in str(exc) for p in parents), f"{path}: {exc!r} names neither it nor a parent package"
        return str(exc)
    return "served"


@pytest.mark.parametrize("path", _paths("airflow2.txt") + _paths("airflow3.txt"))
def test_module_is_served_or_fails_naming_itself_and_the_coverage_page(path: str) -> None:
    _outcome(path)


@pytest.mark.parametrize(
    "path",
    [
        "airflow", "airflow.decorators", "airflow.exceptions", "airflow.models", "airflow.models.baseoperator",
        "airflow.models.dag", "airflow.models.param", "airflow.models.xcom_arg", "airflow.models.taskinstance",
        "airflow.models.dagrun", "airflow.operators.bash", "airflow.operators.empty", "airflow.operators.python",
        "airflow.sensors.base", "airflow.sensors.python", "airflow.utils.context", "airflow.utils.helpers",
        "airflow.utils.task_group", "airflow.utils.trigger_rule",
        "airflow.sdk", "airflow.sdk.exceptions", "airflow.sdk.bases.operator", "airflow.sdk.bases.sensor",
        "airflow.sdk.bases.branch", "airflow.sdk.bases.skipmixin",
        "airflow.providers.standard.operators.bash", "airflow.providers.standard.operators.empty",
        "airflow.providers.standard.operators.python", "airflow.providers.standard.operators.branch",
        "airflow.providers.standard.sensors.python",
    ],
)  # fmt: skip
def test_the_modules_the_shim_serves(path: str) -> None:
    assert _outcome(path) == "served"


def test_the_lists_hold_the_modules_issue_20_names() -> None:
    listed = set(_paths("airflow2.txt"))
    for path in ("airflow.models.xcom_arg", "airflow.models.dagrun", "airflow.models.variable",
                 "airflow.utils.dates", "airflow.utils.weekday", "airflow.datasets", "airflow.timetables.trigger"):  # fmt: skip
        assert path in listed
