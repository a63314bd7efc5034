"""``Label`` / ``EdgeModifier`` (``airflow.utils.edgemodifier``, 2.10.5): a label on edges.

``a >> Label("yes") >> b`` makes the edge ``a >> b`` as Airflow does, once both sides are known,
including Airflow's rule that nodes from different task groups are linked through their groups
(all leaves of ``a``'s group to all roots of ``b``'s). The label text is kept per edge in
``dag.edge_info`` (Airflow's ``DAG.set_edge_info``); Prefect has no edge labels to show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lexis_prefect.airflow.baseoperator import BaseOperator, DependencyMixin

__all__ = ["EdgeModifier", "Label"]


class EdgeModifier(DependencyMixin):
    """Holds the nodes on each side and links them when both are known (progressively)."""

    #: BaseOperator._set_relatives hands an edge modifier the operator instead of linking to it.
    _airflow_edge_modifier = True

    def __init__(self, label: str | None = None) -> None:
        self.label = label
        self._upstream: list[Any] = []
        self._downstream: list[Any] = []

    @property
    def roots(self) -> list[Any]:
        return self._downstream

    @property
    def leaves(self) -> list[Any]:
        return self._upstream

    @staticmethod
    def _make_list(item_or_list: Any) -> Sequence[Any]:
        return item_or_list if isinstance(item_or_list, Sequence) else [item_or_list]

    def _save_nodes(self, nodes: Any, stream: list[Any]) -> None:
        from lexis_prefect.airflow.task_group import TaskGroup
        from lexis_prefect.airflow.xcom_arg import XComArg

        for node in self._make_list(nodes):
            if isinstance(node, (TaskGroup, XComArg, BaseOperator)):
                stream.append(node)
            else:
                raise TypeError(
                    f"Cannot use edge labels with {type(node).__name__}, only tasks, XComArg or TaskGroups"
                )

    def _convert_streams_to_task_groups(self) -> None:
        """Nodes of different task groups are linked through their groups (Airflow's rule)."""
        from lexis_prefect.airflow.task_group import TaskGroup
        from lexis_prefect.airflow.xcom_arg import XComArg

        group_ids = set()
        for node in [*self._upstream, *self._downstream]:
            task = node.operator if isinstance(node, XComArg) else node
            if isinstance(task, BaseOperator) and task.task_group:
                group_ids.add("root" if task.task_group.is_root else task.task_group.group_id)
            elif isinstance(node, TaskGroup):
                group_ids.add(node.group_id)
        if len(group_ids) != 1:
            self._upstream = self._convert_stream_to_task_groups(self._upstream)
            self._downstream = self._convert_stream_to_task_groups(self._downstream)

    @staticmethod
    def _convert_stream_to_task_groups(stream: Sequence[Any]) -> list[Any]:
        return [
            node.task_group
            if isinstance(node, BaseOperator) and node.task_group and not node.task_group.is_root
            else node
            for node in stream
        ]

    def set_upstream(self, other: Any) -> None:
        self._save_nodes(other, self._upstream)
        if self._upstream and self._downstream:
            self._convert_streams_to_task_groups()
        for node in self._downstream:
            node.set_upstream(other)
            self._record(other, node)

    def set_downstream(self, other: Any) -> None:
        self._save_nodes(other, self._downstream)
        if self._upstream and self._downstream:
            self._convert_streams_to_task_groups()
        for node in self._upstream:
            node.set_downstream(other)
            self._record(node, other)

    def update_relative(self, other: Any, upstream: bool = True) -> None:
        """Called by the operator on the other side of ``>>``/``<<``."""
        if upstream:
            self.set_upstream(other)
        else:
            self.set_downstream(other)

    def _record(self, ups: Any, downs: Any) -> None:
        """Keep the label of each task-to-task edge just made on the DAG (``dag.edge_info``)."""
        up_tasks = [t for node in self._make_list(ups) for t in node.leaves]
        down_tasks = [t for node in self._make_list(downs) for t in node.roots]
        for up in up_tasks:
            for down in down_tasks:
                if up.has_dag() and down.task_id in up.downstream_task_ids:
                    self.add_edge_info(up.dag, up.task_id, down.task_id)

    def add_edge_info(self, dag: Any, upstream_id: str, downstream_id: str) -> None:
        """Airflow's ``dag.set_edge_info(up, down, {"label": ...})``."""
        edge_info = dag.__dict__.setdefault("edge_info", {})
        edge_info.setdefault(upstream_id, {})[downstream_id] = {"label": self.label}


def Label(label: str) -> EdgeModifier:  # noqa: N802 - Airflow's spelling
    """An EdgeModifier that sets a human-readable label on the edge."""
    return EdgeModifier(label=label)
