"""The DAG and task group that a ``with`` block makes current, as Airflow's DagContext keeps them.

An operator built inside ``with DAG(...)`` (also inside a helper such as ``build_hpc_job_step``)
joins that DAG and the innermost open task group, without being passed either.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow.exceptions import AirflowException

if TYPE_CHECKING:
    from lexis_prefect.airflow.dag import DAG
    from lexis_prefect.airflow.task_group import TaskGroup

_dags: list[DAG] = []
_groups: list[TaskGroup] = []

KEY_REGEX = re.compile(r"^[\w.-]+$")
GROUP_KEY_REGEX = re.compile(r"^[\w-]+$")


def push_dag(dag: DAG) -> None:
    _dags.append(dag)


def pop_dag() -> None:
    """Close the innermost ``with DAG`` block; the DAG is auto-registered (see :func:`autoregister`)."""
    dag = _dags.pop()
    if getattr(dag, "auto_register", False):
        autoregister(dag)


# -- auto-registration ---------------------------------------------------------------------------
# Airflow 2.4+ finds a DAG that no module-level name holds: ``DagContext.pop_context_managed_dag``
# adds every DAG leaving a ``with`` block (``@dag`` uses one) whose ``auto_register`` is true to
# ``autoregistered_dags``, with the module the DagBag is importing, and ``DagBag._process_modules``
# takes those besides the module's top-level DAGs. Our loader sets the importing module the same
# way; Prefect's loader (``prefect deploy``, a worker) imports a DAG file without telling us, so
# there the module is the one whose top-level code is running. The DAGs are kept in the module
# itself (:data:`REGISTRY`), and a module ``__getattr__`` serves them by ``dag_id``: an entrypoint
# ``file.py:<dag_id>`` then loads with Prefect's ``getattr(module, name)``, unchanged.

#: The module attribute holding a module's auto-registered DAGs.
REGISTRY = "__lexis_airflow_dags__"
#: The module the loader is importing (Airflow's ``DagContext.current_autoregister_module_name``).
_importing: list[str] = []


class AutoRegistered:
    """A module's auto-registered DAGs, also its ``__getattr__``: ``module.<dag_id>`` is the DAG.

    A dag_id with a dot cannot be an entrypoint name (Prefect splits the name at dots), so the
    DAG's flow function name (dots and dashes made underscores) is served too.
    """

    def __init__(self, module_name: str) -> None:
        self.module_name = module_name
        self.dags: dict[str, DAG] = {}

    def add(self, dag: DAG) -> None:
        self.dags[dag.dag_id] = dag

    def __call__(self, name: str) -> DAG:
        dag = self.dags.get(name)
        if dag is None:
            dag = next((d for d in self.dags.values() if entrypoint_name(d) == name), None)
        if dag is None:
            raise AttributeError(f"module {self.module_name!r} has no attribute {name!r}")
        return dag


def entrypoint_name(dag: DAG) -> str:
    """The name an entrypoint ``file.py:<name>`` may give for an auto-registered DAG besides its id."""
    return dag.dag_id.replace(".", "_").replace("-", "_")


@contextlib.contextmanager
def importing(module_name: str) -> Iterator[None]:
    """While the loader imports ``module_name``, DAGs leaving a ``with`` block register there."""
    _importing.append(module_name)
    try:
        yield
    finally:
        _importing.pop()


def autoregister(dag: DAG) -> None:
    """Register ``dag`` with the module being imported (see the comment above), if there is one.

    Outside an import (a DAG built in a function of a running program, ``python dag.py``'s
    ``__main__``) nothing is registered, as Airflow registers only while a DagBag imports a file.
    """
    module = sys.modules.get(_importing[-1]) if _importing else _module_running_top_level()
    if module is None:
        return
    namespace = vars(module)
    registry = namespace.get(REGISTRY)
    if not isinstance(registry, AutoRegistered):
        registry = namespace[REGISTRY] = AutoRegistered(module.__name__)
    registry.add(dag)
    namespace.setdefault("__getattr__", registry)  # a module's own __getattr__ stays


def registered_dags(module: Any) -> dict[str, DAG]:
    """The DAGs auto-registered with ``module``, by id."""
    registry = vars(module).get(REGISTRY)
    return dict(registry.dags) if isinstance(registry, AutoRegistered) else {}


def _module_running_top_level() -> Any:
    """The imported module whose top-level code is running nearest up the stack, if any."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_name != "<module>":
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    name = frame.f_globals.get("__name__")
    module = sys.modules.get(name) if isinstance(name, str) and name != "__main__" else None
    return module if module is not None and vars(module) is frame.f_globals else None


def current_dag() -> DAG | None:
    return _dags[-1] if _dags else None


def push_group(group: TaskGroup) -> None:
    _groups.append(group)


def pop_group() -> None:
    _groups.pop()


def current_group(dag: DAG | None) -> TaskGroup | None:
    """The innermost open group of ``dag``, else the DAG's root group (Airflow's rule)."""
    for group in reversed(_groups):
        if group.dag is dag:
            return group
    return dag.task_group if dag is not None else None


def validate_key(key: object, *, group: bool = False, max_length: int = 250) -> None:
    """Airflow's id rule: task ids allow ``[A-Za-z0-9_.-]``; group ids no dot (it is the separator)."""
    if not isinstance(key, str):
        raise TypeError(f"The key has to be a string and is {type(key)}:{key}")
    if len(key) > max_length:
        raise AirflowException(f"The key has to be less than {max_length} characters")
    if not (GROUP_KEY_REGEX if group else KEY_REGEX).match(key):
        allowed = "dashes and underscores" if group else "dashes, dots and underscores"
        raise AirflowException(
            f"The key {key!r} has to be made of alphanumeric characters, {allowed} exclusively"
        )


def next_suffix(prefix: str, names: Iterable[str | None]) -> int:
    """The next free N for ``<prefix>__N`` among ``names`` (1 when none is taken): how Airflow
    makes repeated task and group ids unique."""
    pattern = re.compile(rf"^{re.escape(prefix)}__(\d+)$")
    return max((int(m.group(1)) for n in names if n and (m := pattern.match(n))), default=0) + 1
