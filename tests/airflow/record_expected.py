"""Record what REAL Airflow 2.10 does with each conformance DAG: ``tests/airflow/expected/<stem>.json``.

Run it with the Airflow interpreter, never the project's (Airflow is not a project dependency)::

    <airflow-venv>/bin/python tests/airflow/record_expected.py            # every DAG file
    <airflow-venv>/bin/python tests/airflow/record_expected.py retries    # only dags/retries.py

Each DAG file defines one module-level ``dag`` and may define ``CASES`` (a list of run confs, default
``[None]``). Every case runs ``dag.test(run_conf=conf)`` in a fresh interpreter of its own, against a
throwaway metadata DB (``AIRFLOW_HOME`` in a temp dir unless already set), and the result is written as::

    {"dag_id": ..., "cases": [
        {"conf": ..., "state": "success"|"failed", "tasks": {task_id: state}},
        {"conf": ..., "error": "ParamValidationError", "message": str(exc)}]}
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DAGS = HERE / "dags"
EXPECTED = HERE / "expected"

# Files whose cases run with dag.test(use_executor=True): each task in its own `airflow tasks run`
# process, as under a scheduler. execution_timeout needs it: in-process, AirflowTaskTimeout (a
# BaseException) escapes dag.test's `except Exception` and aborts the whole test run.
USE_EXECUTOR = {"execution_timeout"}


def _value(state) -> str | None:
    """An Airflow state enum (a str subclass) as its plain spelling."""
    return None if state is None else str(getattr(state, "value", state))


def _run_case(dag_file: Path, index: int, out: Path) -> None:
    """Subprocess body: load one DAG file, run its case ``index``, write the JSON to ``out``."""
    from airflow.exceptions import ParamValidationError
    from airflow.models.dag import DAG

    spec = importlib.util.spec_from_file_location(f"conformance_{dag_file.stem}", dag_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [name for name, value in vars(module).items() if isinstance(value, DAG)]
    if dags != ["dag"]:
        raise SystemExit(f"{dag_file.name}: expected exactly one module-level DAG named 'dag', found {dags}")
    dag = module.dag
    cases = getattr(module, "CASES", [None])
    conf = cases[index]
    try:
        run = dag.test(run_conf=conf, use_executor=dag_file.stem in USE_EXECUTOR)
    except ParamValidationError as exc:
        case = {"conf": conf, "error": type(exc).__name__, "message": str(exc)}
    else:
        tasks = {ti.task_id: _value(ti.state) for ti in run.get_task_instances()}
        case = {"conf": conf, "state": _value(run.state), "tasks": dict(sorted(tasks.items()))}
    out.write_text(json.dumps({"dag_id": dag.dag_id, "n_cases": len(cases), "case": case}))


def _record_case(dag_file: Path, index: int) -> dict | None:
    """Run one case in a fresh interpreter, as a scheduler runs every task in a fresh process.

    One process per case matters: a run mutates the DAG's ``Param`` objects (``Param.resolve`` stores the
    conf value), so a second ``dag.test`` in the same process would see the first run's conf as defaults.
    """
    log = Path(tempfile.gettempdir()) / f"conformance-record-{dag_file.stem}-{index}.log"
    # CONFORMANCE_TMP: where DAG files keep their per-run counters (attempts, pokes)
    with log.open("w") as log_file, tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
        out = Path(scratch) / "case.json"
        proc = subprocess.run(
            [sys.executable, __file__, "--case", str(dag_file), str(index), str(out)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=scratch,
            env={
                **os.environ,
                "CONFORMANCE_TMP": scratch,
                # the executor starts `airflow tasks run`: the airflow script next to this interpreter
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            },
        )
        if proc.returncode != 0:
            print(f"FAILED {dag_file.name} case {index} (log: {log})")
            return None
        return json.loads(out.read_text())


def _prepare_airflow_home(home: str) -> None:
    os.environ.setdefault("AIRFLOW_HOME", home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "--case":
        _run_case(Path(argv[1]), int(argv[2]), Path(argv[3]))
        return 0
    try:
        import airflow
    except ImportError:
        airflow = None
    if airflow is None or getattr(airflow, "__lexis_prefect_shim__", False):
        print(
            "run me with the Python of a virtualenv holding the real apache-airflow==2.10.5 "
            "(not lexis-prefect's shim): see tests/airflow/README.md",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="conformance-airflow-home-") as home:
        _prepare_airflow_home(home)
        return _record(argv)


def _record(argv: list[str]) -> int:
    files = sorted(DAGS.glob("*.py"))
    if argv:
        files = [f for f in files if f.stem in argv]
    EXPECTED.mkdir(exist_ok=True)
    ok = True
    for dag_file in files:
        first = _record_case(dag_file, 0)
        if first is None:
            ok = False
            continue
        results = [first] + [_record_case(dag_file, i) for i in range(1, first["n_cases"])]
        if None in results:
            ok = False
            continue
        cases = [result["case"] for result in results]
        expected = {"dag_id": first["dag_id"], "cases": cases}
        (EXPECTED / f"{dag_file.stem}.json").write_text(json.dumps(expected, indent=2) + "\n")
        print(f"{dag_file.name}: " + ", ".join(c.get("state") or c["error"] for c in cases))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
