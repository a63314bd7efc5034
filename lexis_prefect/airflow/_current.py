"""The DAG and task group that a ``with`` block makes current, as Airflow's DagContext keeps them.

An operator built inside ``with DAG(...)`` (also inside a helper such as ``build_hpc_job_step``)
joins that DAG and the innermost open task group, without being passed either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

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
    _dags.pop()


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
