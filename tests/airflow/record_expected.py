"""Record what REAL Airflow does with each conformance DAG: ``tests/airflow/expected/<stem>.json``.

Run it with the Airflow interpreter, never the project's (Airflow is not a project dependency)::

    <airflow-venv>/bin/python tests/airflow/record_expected.py            # every DAG file
    <airflow-venv>/bin/python tests/airflow/record_expected.py retries    # only dags/retries.py

The Airflow major of the interpreter picks the directories: Airflow 2.10.5 records ``dags/`` into
``expected/``; Airflow 3 records ``dags3/`` (DAG files written for Airflow 3, ``airflow.sdk``) into
``expected3/``.

Each DAG file defines one module-level ``dag`` and may define ``CASES`` (a list of run confs, default
``[None]``) and ``TEST_KWARGS`` (more keyword arguments of every case's ``dag.test``, e.g. Airflow 3's
``logical_date``, or ``execution_date`` for the data interval and the dates the templates see),
``RECORD_XCOMS`` (task ids whose return values are recorded as ``"xcoms"``) and ``SYNC_TO_DB`` (write
the DAG to the metadata DB first, as Airflow's DAG processor does, so that its datasets exist and
their events are recorded). A file named ``discovery_*`` binds no DAG to a name: it is loaded with Airflow's own
``DagBag`` (auto-registration), which must find exactly one DAG, and the ids it found are recorded
as ``found``. Every case runs ``dag.test(run_conf=conf)`` in a fresh interpreter of its own, against a
throwaway metadata DB (``AIRFLOW_HOME`` in a temp dir unless already set), and the result is written as::

    {"dag_id": ..., "cases": [
        {"conf": ..., "state": "success"|"failed", "tasks": {task_id: state, mapped_task_id: [state, ...]}},
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
#: (DAG files, expected states) by Airflow major
DIRS = {2: (HERE / "dags", HERE / "expected"), 3: (HERE / "dags3", HERE / "expected3")}
DAGS, EXPECTED = DIRS[2]

# Files whose cases run with dag.test(use_executor=True): each task in its own `airflow tasks run`
# process, as under a scheduler. execution_timeout needs it: in-process, AirflowTaskTimeout (a
# BaseException) escapes dag.test's `except Exception` and aborts the whole test run.
USE_EXECUTOR = {"execution_timeout"}


def _value(state) -> str | None:
    """An Airflow state enum (a str subclass) as its plain spelling."""
    return None if state is None else str(getattr(state, "value", state))


def _major() -> int:
    import airflow

    return int(airflow.__version__.split(".")[0])


def _airflow_names() -> tuple[type, type]:
    """(DAG, ParamValidationError) of the running Airflow major."""
    if _major() >= 3:
        from airflow.sdk import DAG
        from airflow.sdk.exceptions import ParamValidationError
    else:
        from airflow.exceptions import ParamValidationError
        from airflow.models.dag import DAG
    return DAG, ParamValidationError


def _discover(dag_file: Path) -> tuple[object, list[str]]:
    """(the one DAG, every id found) of a ``discovery_*`` file, as Airflow's DagBag finds them."""
    if _major() >= 3:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(dag_file))
    else:
        from airflow.models.dagbag import DagBag

        bag = DagBag(dag_folder=str(dag_file), include_examples=False)
    if bag.import_errors or len(bag.dags) != 1:
        raise SystemExit(f"{dag_file.name}: the DagBag must find exactly one DAG: {sorted(bag.dags)} {bag.import_errors}")
    return next(iter(bag.dags.values())), sorted(bag.dags)


def _task_states(tis) -> dict:
    """Each task's state; a mapped task's as the list of its map indexes' states, in index order.

    A mapped task that never expanded (zero-length input, or marked before expansion) has one task
    instance, map index -1, and is recorded as a plain state, as Airflow reports it.
    """
    plain: dict[str, str | None] = {}
    mapped: dict[str, dict[int, str | None]] = {}
    for ti in tis:
        if ti.map_index < 0:
            plain[ti.task_id] = _value(ti.state)
        else:
            mapped.setdefault(ti.task_id, {})[ti.map_index] = _value(ti.state)
    for task_id, states in mapped.items():
        if sorted(states) != list(range(len(states))):
            raise SystemExit(f"{task_id}: map indexes {sorted(states)} are not 0..n-1")
        plain[task_id] = [states[i] for i in range(len(states))]
    return dict(sorted(plain.items()))


def _run_case(dag_file: Path, index: int, out: Path) -> None:
    """Subprocess body: load one DAG file, run its case ``index``, write the JSON to ``out``."""
    DAG, ParamValidationError = _airflow_names()
    found = None
    if dag_file.stem.startswith("discovery_"):
        dag, found = _discover(dag_file)
        # the module the DagBag imported the file as (for CASES)
        module = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == str(dag_file))
    else:
        spec = importlib.util.spec_from_file_location(f"conformance_{dag_file.stem}", dag_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dags = [name for name, value in vars(module).items() if isinstance(value, DAG)]
        if dags != ["dag"]:
            raise SystemExit(f"{dag_file.name}: expected exactly one module-level DAG named 'dag', found {dags}")
        dag = module.dag
    cases = getattr(module, "CASES", [None])
    conf = cases[index]
    if getattr(module, "SYNC_TO_DB", False):
        dag.sync_to_db()  # as the DAG processor would: its datasets exist, so their events are recorded
    try:
        run = dag.test(run_conf=conf, use_executor=dag_file.stem in USE_EXECUTOR, **getattr(module, "TEST_KWARGS", {}))
    except ParamValidationError as exc:
        case = {"conf": conf, "error": type(exc).__name__, "message": str(exc)}
    else:
        case = {"conf": conf, "state": _value(run.state), "tasks": _task_states(run.get_task_instances())}
        case.update(_run_facts(run))
        if hasattr(module, "RECORD_XCOMS"):
            case["xcoms"] = {task_id: _return_value(run, task_id) for task_id in module.RECORD_XCOMS}
    result = {"dag_id": dag.dag_id, "n_cases": len(cases), "case": case}
    if found is not None:
        result["found"] = found
    out.write_text(json.dumps(result))


def _run_facts(run) -> dict:
    """What an Airflow 3 run says about itself that differs from 2.10 (the DAG files check the rest)."""
    if _major() < 3:
        return {}
    return {"logical_date_set": run.logical_date is not None, "run_id_prefix": run.run_id.split("__")[0]}


def _return_value(run, task_id: str):
    """A task's return value in the finished run (what the templates and the context gave it)."""
    from airflow.models.xcom import XCom

    return XCom.get_one(run_id=run.run_id, dag_id=run.dag_id, task_id=task_id, key="return_value")


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
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DIRS[_major()][0]))
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
            "run me with the Python of a virtualenv holding the real apache-airflow==2.10.5 (or 3.x) "
            "(not lexis-prefect's shim): see tests/airflow/README.md",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="conformance-airflow-home-") as home:
        _prepare_airflow_home(home)
        return _record(argv)


def _record(argv: list[str]) -> int:
    dags_dir, expected_dir = DIRS[min(_major(), 3)]
    files = sorted(dags_dir.glob("*.py"))
    if argv:
        files = [f for f in files if f.stem in argv]
    expected_dir.mkdir(exist_ok=True)
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
        if "found" in first:
            expected["found"] = first["found"]
        (expected_dir / f"{dag_file.stem}.json").write_text(json.dumps(expected, indent=2) + "\n")
        print(f"{dag_file.name}: " + ", ".join(c.get("state") or c["error"] for c in cases))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
