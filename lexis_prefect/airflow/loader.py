"""Loading an Airflow DAG file on the shim, for the CLI and the tests.

The file is imported as a module of its own (not ``__main__``, so its ``dag.test()`` footer does
not run), with the shim forced in front of any real Airflow installation: whoever calls this has
asked for the DAG to run on Prefect. The DAGs are found as Airflow's DagBag finds them: those the
module holds at top level, and those auto-registered while it was imported (a ``with DAG(...)``
block or a ``@dag`` function called without binding the DAG to a name; see
``lexis_prefect.airflow._current.autoregister``), returned by id.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from lexis_prefect.airflow.exceptions import AirflowException


class DagFileError(AirflowException):
    """The DAG file cannot be imported, or holds no (or not the named) DAG."""


def load_dags(path: str | Path) -> dict[str, object]:
    """Import ``path`` and return its DAGs by ``dag_id``; any import error becomes a DagFileError."""
    from lexis_prefect.airflow import _current, _finder
    from lexis_prefect.airflow.dag import DAG

    _finder.install(force=True)
    file = Path(path).resolve()
    if not file.is_file():
        raise DagFileError(f"{path}: no such file")
    name = f"lexis_dag_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise DagFileError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent))  # a DAG file may import modules next to it, as in a DAG folder
    sys.modules[name] = module
    try:
        with _current.importing(name):
            spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise DagFileError(f"{path}: cannot load the DAG file: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(file.parent))
    dags = {obj.dag_id: obj for obj in vars(module).values() if isinstance(obj, DAG)}
    dags.update(_current.registered_dags(module))
    if not dags:
        raise DagFileError(
            f"{path}: no DAG found: none at the top level of the file and none auto-registered "
            "(a `with DAG(...)` block or a called `@dag` function, with auto_register left true)"
        )
    return dags


def load_dag(path: str | Path, dag_id: str | None = None) -> object:
    """The one DAG of ``path`` (or the one named ``dag_id``)."""
    dags = load_dags(path)
    if dag_id is not None:
        if dag_id not in dags:
            raise DagFileError(f"{path}: no DAG {dag_id!r}; it holds {sorted(dags)}")
        return dags[dag_id]
    if len(dags) > 1:
        raise DagFileError(f"{path}: holds several DAGs {sorted(dags)}; choose one with --dag-id")
    return next(iter(dags.values()))
