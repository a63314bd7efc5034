"""Record what REAL Airflow 2.10 does with each conformance DAG: ``tests/airflow/expected/<stem>.json``.

Run it with the Airflow interpreter, never the project's (Airflow is not a project dependency)::

    /work/airflow-venv/bin/python tests/airflow/record_expected.py            # every DAG file
    /work/airflow-venv/bin/python tests/airflow/record_expected.py retries    # only dags/retries.py

Each DAG file defines one module-level ``dag`` and may define ``CASES`` (a list of run confs, default
``[None]``). Every case runs ``dag.test(run_conf=conf)`` in a fresh subprocess per DAG file, against a
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


def _value(state) -> str | None:
    """An Airflow state enum (a str subclass) as its plain spelling."""
    return None if state is None else str(getattr(state, "value", state))


def _run_one(dag_file: Path, out: Path) -> None:
    """Subprocess body: load one DAG file, run its cases, write the JSON to ``out``."""
    from airflow.exceptions import ParamValidationError
    from airflow.models.dag import DAG

    spec = importlib.util.spec_from_file_location(f"conformance_{dag_file.stem}", dag_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [name for name, value in vars(module).items() if isinstance(value, DAG)]
    if dags != ["dag"]:
        raise SystemExit(f"{dag_file.name}: expected exactly one module-level DAG named 'dag', found {dags}")
    dag = module.dag
    cases = []
    for conf in getattr(module, "CASES", [None]):
        try:
            run = dag.test(run_conf=conf)
        except ParamValidationError as exc:
            cases.append({"conf": conf, "error": type(exc).__name__, "message": str(exc)})
            continue
        tasks = {ti.task_id: _value(ti.state) for ti in run.get_task_instances()}
        cases.append({"conf": conf, "state": _value(run.state), "tasks": dict(sorted(tasks.items()))})
    out.write_text(json.dumps({"dag_id": dag.dag_id, "cases": cases}, indent=2) + "\n")


def _prepare_airflow_home() -> None:
    if "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="conformance-airflow-home-")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--one":
        _run_one(Path(argv[1]), Path(argv[2]))
        return 0
    try:
        import airflow  # noqa: F401
    except ImportError:
        print("run me with the real Airflow's Python, e.g. /work/airflow-venv/bin/python", file=sys.stderr)
        return 2
    _prepare_airflow_home()
    files = sorted(DAGS.glob("*.py"))
    if argv:
        files = [f for f in files if f.stem in argv]
    EXPECTED.mkdir(exist_ok=True)
    failed = []
    for dag_file in files:
        out = EXPECTED / f"{dag_file.stem}.json"
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            tmp_path = Path(tmp.name)
        log = Path(tempfile.gettempdir()) / f"conformance-record-{dag_file.stem}.log"
        # CONFORMANCE_TMP: where DAG files keep their per-run counters (attempts, pokes)
        with log.open("w") as log_file, tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
            proc = subprocess.run(
                [sys.executable, __file__, "--one", str(dag_file), str(tmp_path)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=scratch,
                env={**os.environ, "CONFORMANCE_TMP": scratch},
            )
        if proc.returncode != 0:
            failed.append(dag_file.name)
            print(f"FAILED {dag_file.name} (log: {log})")
            continue
        result = json.loads(tmp_path.read_text())
        tmp_path.unlink()
        out.write_text(json.dumps(result, indent=2) + "\n")
        summary = ", ".join(c.get("state") or c["error"] for c in result["cases"])
        print(f"{dag_file.name}: {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
