"""``TaskGroup``: an id prefix plus Airflow's eager edge expansion; nothing of it reaches Prefect.

``x >> group`` links ``x`` to the group's roots *as they are when ``>>`` runs*, and
``group >> y`` links the group's leaves to ``y``: a task added to the group afterwards gets no
edge, exactly as in Airflow 2.10 (``airflow/utils/task_group.py``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow import _current
from lexis_prefect.airflow.baseoperator import DependencyMixin
from lexis_prefect.airflow.setup_teardown import group_leaves
from lexis_prefect.airflow.exceptions import (
    AirflowException,
    DuplicateTaskIdFound,
    TaskAlreadyInTaskGroup,
)

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator
    from lexis_prefect.airflow.dag import DAG


class TaskGroup(DependencyMixin):
    """A named set of tasks; its id prefixes theirs (``job.submit``) when ``prefix_group_id``."""

    def __init__(
        self,
        group_id: str | None,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: dict[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
    ) -> None:
        self.prefix_group_id = prefix_group_id
        self.default_args = copy.deepcopy(default_args or {})
        self.tooltip, self.ui_color, self.ui_fgcolor = tooltip, ui_color, ui_fgcolor
        self.children: dict[str, Any] = {}
        self.parent_group: TaskGroup | None = None
        dag = dag or (parent_group.dag if parent_group else None) or _current.current_dag()
        self.dag = dag
        if group_id is None:
            if parent_group:
                raise AirflowException("Root TaskGroup cannot have parent_group")
            self.used_group_ids: set[str | None] = set()
            self._group_id = None
            return
        if prefix_group_id:
            _current.validate_key(group_id, group=True, max_length=200)
        elif not isinstance(group_id, str) or not group_id:
            raise ValueError("group_id must be a non-empty str")
        if dag is None:
            raise AirflowException("TaskGroup can only be used inside a dag")
        parent_group = parent_group or _current.current_group(dag)
        assert parent_group is not None
        if parent_group.dag is not dag:
            raise RuntimeError(f"Cannot mix TaskGroups from different DAGs: {dag} and {parent_group.dag}")
        self.used_group_ids = parent_group.used_group_ids
        self._group_id = self._unique_id(group_id, add_suffix_on_collision)
        parent_group.add(self)
        self.default_args = {**parent_group.default_args, **self.default_args}
        self.used_group_ids.add(self.group_id)

    def _unique_id(self, group_id: str, add_suffix: bool) -> str:
        if group_id not in self.used_group_ids:
            return group_id
        if not add_suffix:
            raise DuplicateTaskIdFound(f"group_id '{group_id}' has already been added to the DAG")
        base = re.split(r"__\d+$", group_id)[0]
        return f"{base}__{_current.next_suffix(base, self.used_group_ids)}"

    # -- identity ---------------------------------------------------------------------------
    @property
    def group_id(self) -> str | None:
        parent = self.parent_group
        if parent is not None and parent.prefix_group_id and parent._group_id:
            return parent.child_id(self._group_id)
        return self._group_id

    node_id = group_id

    @property
    def label(self) -> str | None:
        return self._group_id

    @property
    def is_root(self) -> bool:
        return not self._group_id

    def child_id(self, label: str) -> str:
        """``label`` prefixed with this group's id when ``prefix_group_id``."""
        group_id = self.group_id
        return f"{group_id}.{label}" if self.prefix_group_id and group_id else label

    def add(self, node: Any) -> Any:
        """Adopt a task or a (still empty) child group; ids are unique DAG-wide."""
        existing = getattr(node, "task_group", None) if not isinstance(node, TaskGroup) else None
        if existing is not None and existing is not self:
            raise TaskAlreadyInTaskGroup(
                f"cannot add {node.node_id!r} to {self.node_id!r} (already in {existing.node_id!r})"
            )
        if isinstance(node, TaskGroup):
            node.parent_group = self
        else:
            node.task_group = self
        key = node.node_id
        if key in self.children:
            kind = "Task Group" if isinstance(node, TaskGroup) else "Task"
            raise DuplicateTaskIdFound(f"{kind} id '{key}' has already been added to the DAG")
        self.children[key] = node
        return node

    # -- graph ------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[BaseOperator]:
        for child in self.children.values():
            yield from (child if isinstance(child, TaskGroup) else (child,))

    @property
    def roots(self) -> list[BaseOperator]:
        """Tasks of the group with no upstream inside it, as of now."""
        tasks = list(self)
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if t.upstream_task_ids.isdisjoint(ids)]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Tasks of the group with no downstream inside it, as of now (looking through teardowns)."""
        return group_leaves(list(self))

    def set_upstream(self, other: Any) -> None:
        for task in self.roots:
            task.set_upstream(other)

    def set_downstream(self, other: Any) -> None:
        for task in self.leaves:
            task.set_downstream(other)

    # -- with TaskGroup(...) ------------------------------------------------------------------
    def __enter__(self) -> TaskGroup:
        _current.push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _current.pop_group()

    def __repr__(self) -> str:
        return f"<TaskGroup: {self.group_id}>"
