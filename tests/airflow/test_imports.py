"""A DAG file's own imports (``from airflow import DAG``, ``from lexis.operators... import``) resolve
to the shim's facade: at interpreter start through ``lexis_prefect_airflow.pth``, in this pytest
process, under Prefect's entrypoint loader; a real installation wins unless forced; and the start
of every interpreter stays cheap.

Most checks run in a fresh interpreter (``sys.executable``), as a DAG file would: what happens at
start-up cannot be observed from inside this process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lexis_prefect.airflow import _finder

FACADE = Path(_finder.FACADE_DIR)


def run(code: str, cwd: Path, env: dict[str, str] | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    """``python [args] -c code`` in a fresh interpreter, with LEXIS_PREFECT_AIRFLOW unset unless given."""
    environ = {k: v for k, v in os.environ.items() if k != _finder.ENV_VAR}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
    return result.stdout


def with_pythonpath(*dirs: Path) -> dict[str, str]:
    parts = [str(d) for d in dirs]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(parts)}


@pytest.fixture
def fake_real(tmp_path: Path) -> Path:
    """A directory holding a stand-in for real installed ``airflow`` and ``lexis`` packages."""
    root = tmp_path / "site"
    for name in ("airflow", "lexis"):
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("REAL = True\n")
    return root


# --- interpreter start ------------------------------------------------------------------------


def test_plain_import_resolves_to_facade_at_startup(tmp_path: Path) -> None:
    out = ok(
        run(
            """
            import json, airflow, lexis
            print(json.dumps([airflow.__file__, lexis.__file__, airflow.__version__,
                              airflow.__lexis_prefect_shim__]))
            """,
            tmp_path,
        )
    )
    airflow_file, lexis_file, version, marker = json.loads(out)
    assert Path(airflow_file) == FACADE / "airflow" / "__init__.py", (
        "`import airflow` does not reach the facade: is lexis_prefect_airflow.pth installed? "
        "(pip install -e .)"
    )
    assert Path(lexis_file) == FACADE / "lexis" / "__init__.py"
    assert version == "2.10.5"
    assert marker is True


def test_startup_hook_imports_nothing_heavy(tmp_path: Path) -> None:
    """The .pth costs only three tiny modules: not prefect, httpx, pydantic, typing, importlib.abc."""
    code = "import sys, json; print(json.dumps(sorted(sys.modules)))"
    with_hook = set(json.loads(ok(run(code, tmp_path))))
    without = set(json.loads(ok(run(code, tmp_path, {_finder.ENV_VAR: "off"}))))
    assert with_hook - without == {"lexis_prefect", "lexis_prefect._lazy", "lexis_prefect.airflow", "lexis_prefect.airflow._finder"}
    assert "_lexis_prefect_airflow" in with_hook  # the module the .pth imports


def test_off_installs_nothing(tmp_path: Path) -> None:
    result = run(
        """
        import sys
        assert not any(m.startswith("lexis_prefect") for m in sys.modules), sorted(sys.modules)
        import airflow
        """,
        tmp_path,
        {_finder.ENV_VAR: "off"},
    )
    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'airflow'" in result.stderr


def test_unknown_mode_warns_and_falls_back(tmp_path: Path) -> None:
    result = run("import airflow; print(airflow.__file__)", tmp_path, {_finder.ENV_VAR: "sometimes"})
    assert Path(ok(result).strip()) == FACADE / "airflow" / "__init__.py"
    assert "LEXIS_PREFECT_AIRFLOW='sometimes' is not one of fallback, force, off" in result.stderr


def test_startup_is_silent_when_the_package_is_gone(tmp_path: Path) -> None:
    """An editable checkout that moved (or a half-uninstalled package) must not break python."""
    spec = importlib.util.find_spec("_lexis_prefect_airflow")
    assert spec is not None and spec.origin, "_lexis_prefect_airflow.py is not installed (pip install -e .)"
    result = run(
        f"""
        import sys
        sys.path.append({os.path.dirname(spec.origin)!r})
        sys.modules["lexis_prefect"] = None  # import fails as if the package were gone
        import _lexis_prefect_airflow
        assert not any(getattr(f, "_lexis_prefect_airflow_shim", False) for f in sys.meta_path)
        """,
        tmp_path,
        None,
        "-S",
    )
    ok(result)
    assert result.stderr == ""


def test_dag_file_run_as_script(tmp_path: Path) -> None:
    dag_file = tmp_path / "dags" / "dag.py"
    dag_file.parent.mkdir()
    dag_file.write_text(
        textwrap.dedent(
            """
            import airflow
            from airflow import DAG
            from airflow.exceptions import AirflowSkipException
            from airflow.models.param import Param

            import lexis_prefect.airflow.dag, lexis_prefect.airflow.params, lexis_prefect.airflow.exceptions as e

            assert DAG is lexis_prefect.airflow.dag.DAG
            assert Param is lexis_prefect.airflow.params.Param
            assert AirflowSkipException is e.AirflowSkipException
            print(airflow.__file__)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(dag_file)],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != _finder.ENV_VAR},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert Path(ok(result).strip()) == FACADE / "airflow" / "__init__.py"


def test_prefect_entrypoint_loader(tmp_path: Path) -> None:
    """A worker loads ``dag.py:name`` with Prefect's loader in a fresh interpreter."""
    (tmp_path / "flowfile.py").write_text(
        textwrap.dedent(
            """
            import airflow
            from airflow.models.param import Param
            from prefect import flow

            @flow
            def dag():
                return airflow.__file__, Param(3, type="integer").resolve()
            """
        )
    )
    out = ok(
        run(
            """
            import json
            from prefect.flows import load_flow_from_entrypoint
            print(json.dumps(load_flow_from_entrypoint("flowfile.py:dag").fn()))
            """,
            tmp_path,
        )
    )
    airflow_file, value = json.loads(out.strip().splitlines()[-1])
    assert Path(airflow_file) == FACADE / "airflow" / "__init__.py"
    assert value == 3


def test_this_pytest_process_serves_the_facade() -> None:
    assert _finder.installed() is not None, "the .pth did not install the hook in the pytest process"
    assert _finder.serves("airflow")
    assert _finder.serves("lexis")


# --- the facade modules -----------------------------------------------------------------------

FACADE_MODULES: dict[str, tuple[str, list[str]]] = {
    # facade module: (shim module, names that must be the shim's very objects)
    "airflow": ("lexis_prefect.airflow.dag", ["DAG"]),
    "airflow.models": ("lexis_prefect.airflow.dag", ["DAG"]),
    "airflow.models.dag": ("lexis_prefect.airflow.dag", ["DAG"]),
    "airflow.models.param": ("lexis_prefect.airflow.params", ["Param", "ParamsDict"]),
    "airflow.models.baseoperator": (
        "lexis_prefect.airflow.baseoperator",
        ["BaseOperator", "chain", "cross_downstream"],
    ),
    "airflow.utils.trigger_rule": ("lexis_prefect.airflow.trigger_rule", ["TriggerRule"]),
    "airflow.utils.task_group": ("lexis_prefect.airflow.task_group", ["TaskGroup"]),
    "airflow.operators.empty": ("lexis_prefect.airflow.operators", ["EmptyOperator"]),
    "airflow.operators.python": (
        "lexis_prefect.airflow.operators",
        ["PythonOperator", "BranchPythonOperator", "ShortCircuitOperator", "get_current_context"],
    ),
    "airflow.operators.bash": ("lexis_prefect.airflow.operators", ["BashOperator"]),
    "airflow.sensors.base": ("lexis_prefect.airflow.sensors", ["BaseSensorOperator", "PokeReturnValue"]),
    "airflow.sensors.python": ("lexis_prefect.airflow.sensors", ["PythonSensor"]),
    "airflow.decorators": ("lexis_prefect.airflow.decorators", ["dag", "task", "task_group"]),
    "airflow.operators.branch": ("lexis_prefect.airflow.operators", ["BaseBranchOperator"]),
    "airflow.models.skipmixin": ("lexis_prefect.airflow.operators", ["SkipMixin"]),
    "lexis": ("lexis_prefect.airflow", []),
    "lexis.operators": ("lexis_prefect.airflow", []),
    "lexis.datatypes": ("lexis_prefect.airflow", []),
    "lexis.operators.aai": (
        "lexis_prefect.airflow.lexis",
        ["LexisAAIOperator", "LexisAAITokenKeeperSensor", "LexisAAIStopKeeperOperator"],
    ),
    "lexis.operators.hpc": ("lexis_prefect.airflow.lexis", ["build_hpc_job_step"]),
    "lexis.operators.scheduler.hpc_job": ("lexis_prefect.airflow.lexis", ["FinishOperator"]),
    "lexis.datatypes.hpc": ("lexis_prefect.airflow.lexis", ["SingleHPCJob"]),
}
# airflow.models also re-exports these two
MODELS_EXTRA = {"BaseOperator": "lexis_prefect.airflow.baseoperator", "Param": "lexis_prefect.airflow.params"}


@pytest.fixture(scope="module")
def facade_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """Import every facade module in one fresh (forced) interpreter; per module: error or names."""
    code = f"""
        import importlib, json, traceback
        checks = {json.dumps({m: [s, n] for m, (s, n) in FACADE_MODULES.items()})}
        extra = {json.dumps(MODELS_EXTRA)}
        report = {{}}
        for module, (shim, names) in checks.items():
            entry = report[module] = {{"error": None, "file": None, "same": {{}}}}
            try:
                facade = importlib.import_module(module)
                entry["file"] = facade.__file__
                pairs = [(n, shim) for n in names]
                if module == "airflow.models":
                    pairs += list(extra.items())
                for name, source in pairs:
                    entry["same"][name] = getattr(facade, name) is getattr(importlib.import_module(source), name)
                for name in getattr(facade, "__all__", []):
                    getattr(facade, name)
            except BaseException:
                entry["error"] = traceback.format_exc()
        print(json.dumps(report))
    """
    out = ok(run(code, tmp_path_factory.mktemp("facade"), {_finder.ENV_VAR: "force"}))
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("module", sorted(FACADE_MODULES))
def test_facade_module_reexports_the_shim(module: str, facade_report: dict[str, dict[str, object]]) -> None:
    entry = facade_report[module]
    assert entry["error"] is None, entry["error"]
    assert str(entry["file"]).startswith(str(FACADE) + os.sep)
    expected = set(FACADE_MODULES[module][1]) | (set(MODELS_EXTRA) if module == "airflow.models" else set())
    assert entry["same"] == dict.fromkeys(expected, True)


def test_exceptions_facade_has_every_shim_exception(tmp_path: Path) -> None:
    out = ok(
        run(
            """
            import json
            import airflow.exceptions as facade
            import lexis_prefect.airflow.exceptions as shim
            names = [n for n, v in vars(shim).items()
                     if isinstance(v, type) and issubclass(v, BaseException) and not n.startswith("_")]
            print(json.dumps({n: getattr(facade, n, None) is getattr(shim, n) for n in names}))
            """,
            tmp_path,
        )
    )
    same = json.loads(out)
    assert {"AirflowException", "AirflowSkipException", "ParamValidationError"} <= set(same)
    assert all(same.values()), same


@pytest.mark.parametrize(
    ("statement", "missing"),
    [
        ("import airflow.providers.http.operators.http", "airflow.providers.http"),  # only .standard is served
        ("from airflow.operators.email import EmailOperator", "airflow.operators.email"),
        ("from lexis.operators.data import DDIOperator", "lexis.operators.data"),
    ],
)
def test_unsupported_module_says_so(tmp_path: Path, statement: str, missing: str) -> None:
    out = ok(
        run(
            f"""
            import json
            try:
                {statement}
            except ModuleNotFoundError as exc:
                print(json.dumps([exc.name, str(exc)]))
            """,
            tmp_path,
        )
    )
    name, message = json.loads(out)
    assert name == missing
    assert f"No module named {missing!r}" in message
    assert "lexis-prefect Airflow shim" in message
    assert "does not provide" in message
    assert "docs/airflow-compat.md" in message


# --- a real installation: fallback and force -------------------------------------------------


def test_fallback_lets_a_real_installation_win(tmp_path: Path, fake_real: Path) -> None:
    result = run(
        """
        import json, airflow, lexis
        from lexis_prefect.airflow._finder import serves, describe
        print(json.dumps([airflow.__file__, lexis.__file__, serves("airflow"), describe("airflow")]))
        """,
        tmp_path,
        with_pythonpath(fake_real),
    )
    airflow_file, lexis_file, served, text = json.loads(ok(result))
    assert Path(airflow_file) == fake_real / "airflow" / "__init__.py"
    assert Path(lexis_file) == fake_real / "lexis" / "__init__.py"
    assert served is False
    assert str(fake_real / "airflow" / "__init__.py") in text and "force" in text
    assert "ShimShadowsAirflowWarning" not in result.stderr


def test_force_env_serves_the_shim_and_names_what_it_hides(tmp_path: Path, fake_real: Path) -> None:
    result = run(
        """
        import airflow
        print(airflow.__file__)
        """,
        tmp_path,
        {_finder.ENV_VAR: "force", **with_pythonpath(fake_real)},
    )
    assert Path(ok(result).strip()) == FACADE / "airflow" / "__init__.py"
    assert "ShimShadowsAirflowWarning" in result.stderr
    assert str(fake_real / "airflow" / "__init__.py") in result.stderr
    assert "<string>:2:" in result.stderr  # the warning points at the import line


def test_install_force_in_process(tmp_path: Path, fake_real: Path) -> None:
    """What the CLI does: install(force=True) before loading the DAG file."""
    result = run(
        """
        import json, warnings, sys
        from lexis_prefect.airflow import _finder
        before = _finder.serves("airflow")
        _finder.install(force=True)
        _finder.install()  # never demotes
        _finder.install(force=True)  # idempotent
        assert sum(getattr(f, "_lexis_prefect_airflow_shim", False) for f in sys.meta_path) == 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import airflow
            import lexis
        print(json.dumps([before, _finder.serves("airflow"), airflow.__file__, lexis.__file__,
                          [str(w.message) for w in caught], _finder.describe("airflow")]))
        """,
        tmp_path,
        with_pythonpath(fake_real),
    )
    before, after, airflow_file, lexis_file, warned, text = json.loads(ok(result))
    assert (before, after) == (False, True)
    assert Path(airflow_file) == FACADE / "airflow" / "__init__.py"
    assert Path(lexis_file) == FACADE / "lexis" / "__init__.py"
    assert len(warned) == 2
    assert str(fake_real / "airflow" / "__init__.py") in warned[0]
    assert str(fake_real / "lexis" / "__init__.py") in warned[1]
    assert "force mode" in text and str(fake_real / "airflow" / "__init__.py") in text


def test_forcing_after_a_real_import_warns(tmp_path: Path, fake_real: Path) -> None:
    result = run(
        """
        import airflow
        from lexis_prefect.airflow import _finder
        _finder.install(force=True)
        """,
        tmp_path,
        with_pythonpath(fake_real),
    )
    ok(result)
    assert "already imported from" in result.stderr
    assert "cannot replace it in this process" in result.stderr


def test_a_bare_airflow_directory_does_not_hide_the_shim(tmp_path: Path) -> None:
    """A project folder named airflow/ (no __init__.py) in the working directory is not Airflow."""
    (tmp_path / "airflow" / "dags").mkdir(parents=True)
    (tmp_path / "lexis").mkdir()
    out = ok(
        run(
            """
            import json, airflow, lexis
            print(json.dumps([airflow.__file__, list(lexis.__path__)]))
            """,
            tmp_path,
        )
    )
    airflow_file, lexis_path = json.loads(out)
    assert Path(airflow_file) == FACADE / "airflow" / "__init__.py"
    # a namespace lexis may be real LEXIS code, so it wins in fallback mode
    assert lexis_path == [str(tmp_path / "lexis")]


def test_uninstall(tmp_path: Path) -> None:
    result = run(
        """
        import sys
        from lexis_prefect.airflow import _finder
        _finder.uninstall()
        assert _finder.installed() is None
        assert not _finder.serves("airflow")
        print(_finder.describe("airflow"))
        import airflow
        """,
        tmp_path,
    )
    assert result.returncode == 1
    assert "not importable" in result.stdout
    assert "No module named 'airflow'" in result.stderr
