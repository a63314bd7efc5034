"""Mapped task groups: ``@task_group`` functions ``.partial()`` / ``.expand()`` / ``.expand_kwargs()``.

As in Airflow 2.10 (``airflow/decorators/task_group.py``, ``MappedTaskGroup``), the function runs
once at parse time with a :class:`MappedArgument` per mapped parameter; every task built inside is
an ordinary operator that is expanded at run time into one task instance per map index of the
group, and index ``i`` of a task reads index ``i`` of the tasks upstream of it in the group.
A mapped task inside a mapped group, and a mapped group inside another, are refused (Airflow
refuses the first; the second is not supported here and says so).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow.exceptions import UnsupportedArgument
from lexis_prefect.airflow.mapping.expand_input import (
    DictOfListsExpandInput,
    ExpandInput,
    ListOfDictsExpandInput,
    MappedArgument,
    prevent_duplicates,
)
from lexis_prefect.airflow.task_group import TaskGroup
from lexis_prefect.airflow.trigger_rule import TriggerRule

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator


class MappedTaskGroup(TaskGroup):
    """A task group whose tasks are expanded over ``expand_input`` at run time."""

    def __init__(self, *, expand_input: ExpandInput, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if closest_mapped_group(self.parent_group) is not None:
            raise UnsupportedArgument(
                f"Mapped task group {self.group_id!r} is inside another mapped task group: nested mapped task "
                "groups are not supported by lexis-prefect (see docs/airflow-compat.md)"
            )
        self.expand_input = expand_input

    def add(self, node: Any) -> Any:
        if getattr(node, "trigger_rule", None) == TriggerRule.ALWAYS:
            raise ValueError("Task-generated mapping within a mapped task group is not allowed with trigger rule 'always'")
        return super().add(node)

    def iter_mapped_dependencies(self) -> list[BaseOperator]:
        """The upstreams whose return value the group expands over."""
        return [op for op, _ in self.expand_input.iter_references()]


def closest_mapped_group(group: TaskGroup | None) -> MappedTaskGroup | None:
    """The innermost mapped task group around ``group`` (itself included), if any."""
    while group is not None:
        if isinstance(group, MappedTaskGroup):
            return group
        group = group.parent_group
    return None


def _create(factory: Any, expand_input: ExpandInput, kwargs: dict[str, Any]) -> Any:
    with MappedTaskGroup(expand_input=expand_input, add_suffix_on_collision=True, **factory.tg_kwargs) as group:
        if factory.function.__doc__ and not group.tooltip:
            group.tooltip = factory.function.__doc__
        retval = factory.function(**kwargs)
    return group if retval is None else retval


def group_partial(factory: Any, kwargs: dict[str, Any]) -> Any:
    """``@task_group`` function ``.partial(**fixed)``."""
    from lexis_prefect.airflow.mapping.operator import validate_function_args

    validate_function_args(inspect.signature(factory.function), "partial", kwargs)
    old = factory.partial_kwargs
    prevent_duplicates(old, kwargs, fail_reason="duplicate partial")
    made = factory.override()
    made.partial_kwargs = {**kwargs, **old}
    return made


def group_expand(factory: Any, kwargs: dict[str, Any]) -> Any:
    """``@task_group`` function ``.expand(**mapped)``: build the group once, mapped."""
    from lexis_prefect.airflow.mapping.operator import validate_function_args

    if not kwargs:
        raise TypeError("no arguments to expand against")
    validate_function_args(inspect.signature(factory.function), "expand", kwargs)
    prevent_duplicates(factory.partial_kwargs, kwargs, fail_reason="mapping already partial")
    expand_input = DictOfListsExpandInput(kwargs)
    arguments = {k: MappedArgument(expand_input, k, factory.function.__name__) for k in kwargs}
    return _create(factory, expand_input, {**factory.partial_kwargs, **arguments})


def group_expand_kwargs(factory: Any, kwargs: Any) -> Any:
    """``@task_group`` function ``.expand_kwargs(list_of_dicts_or_xcomarg)``."""
    from lexis_prefect.airflow.mapping.operator import check_expand_kwargs_arg

    check_expand_kwargs_arg(kwargs)
    parameters = inspect.signature(factory.function).parameters
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters.values()):
        raise TypeError("calling expand_kwargs() on task group function with * or ** is not supported")
    expand_input = ListOfDictsExpandInput(kwargs)
    names = [k for k in parameters if k not in factory.partial_kwargs]
    arguments = {k: MappedArgument(expand_input, k, factory.function.__name__) for k in names}
    return _create(factory, expand_input, {**factory.partial_kwargs, **arguments})
