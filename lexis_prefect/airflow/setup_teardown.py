"""Setup and teardown tasks, as in Airflow 2.10.5.

A setup task creates a resource, a teardown task removes it, and the work between them uses it.
Ported from ``airflow/models/{abstractoperator,baseoperator,xcom_arg,dag,dagrun}.py``,
``airflow/decorators/setup_teardown.py``, ``airflow/utils/task_group.py`` (``get_leaves``) and
``airflow/ti_deps/deps/trigger_rule_dep.py`` (the setup constraint). What the shim needs of them:

- the marks: ``is_setup``/``is_teardown``/``on_failure_fail_dagrun`` on operators and XComArgs,
  ``as_setup()``, ``as_teardown(setups=..., on_failure_fail_dagrun=...)`` and the ``@setup`` /
  ``@teardown`` decorators; a teardown's trigger rule is ``all_done_setup_success``, so it runs
  after its work whatever became of it, unless its setups failed or were skipped;
- the *setup constraint*: a work task whose setups are not its direct upstreams (``s >> w1 >> w2``,
  ``w2`` depends on ``s`` through ``w1``) is ``upstream_failed`` or ``skipped`` as soon as such a
  setup fails or skips, and waits for all of them to succeed;
- the run state: a teardown at the end of the DAG does not decide the run's state unless it is
  ``on_failure_fail_dagrun`` (``DagRun._tis_for_dagrun_state``);
- a task group's leaves skip its teardowns, so ``group >> next`` waits for the work, not the
  teardown.

Not ported: the context-manager form (``with teardown_task:``), which fails with a message.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow.exceptions import AirflowException, UnsupportedArgument
from lexis_prefect.airflow.trigger_rule import Decision, TriggerRule, decide

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator
    from lexis_prefect.airflow.dag import DAG

__all__ = [
    "SetupTeardownMixin",
    "XComArgSetupTeardownMixin",
    "decide_task",
    "effective_leaves",
    "group_leaves",
    "indirect_setups",
    "setup",
    "setup_constraint",
    "teardown",
    "teardown_kwargs",
    "validate_setup_teardown",
]

_NOTSET: Any = object()
_FAILED = ("failed", "upstream_failed")
_CONTEXT_MANAGER = (
    "setup/teardown tasks used as context managers (`with teardown_task:`) are not supported by "
    "lexis-prefect; set the edges with >> instead (see docs/airflow-compat.md, Setup and teardown)"
)


def _as_list(setups: Any) -> list[Any]:
    from lexis_prefect.airflow.baseoperator import DependencyMixin

    return [setups] if isinstance(setups, DependencyMixin) else list(setups)


def _exclusive_mark(attr: str, other: str, kind: str, other_kind: str) -> Any:
    """``is_setup`` / ``is_teardown``: a task is at most one of them (Airflow's setters)."""

    def get(self: Any) -> bool:
        return getattr(self, attr)

    def set_(self: Any, value: bool) -> None:
        if value and getattr(self, other):
            raise ValueError(f"Cannot mark task '{self.task_id}' as {kind}; task is already a {other_kind}.")
        setattr(self, attr, value)

    return property(get, set_)


class SetupTeardownMixin:
    """The setup/teardown marks of an operator (``BaseOperator.is_setup`` and friends in Airflow)."""

    _is_setup: bool = False
    _is_teardown: bool = False
    _on_failure_fail_dagrun: bool = False
    task_id: str
    trigger_rule: TriggerRule

    is_setup = _exclusive_mark("_is_setup", "is_teardown", "setup", "teardown")
    is_teardown = _exclusive_mark("_is_teardown", "is_setup", "teardown", "setup")

    @property
    def on_failure_fail_dagrun(self) -> bool:
        return self._on_failure_fail_dagrun

    @on_failure_fail_dagrun.setter
    def on_failure_fail_dagrun(self, value: bool) -> None:
        if value is True and self.is_teardown is not True:
            raise ValueError(
                f"Cannot set task on_failure_fail_dagrun for '{self.task_id}' because it is not a teardown task."
            )
        self._on_failure_fail_dagrun = value

    def as_setup(self) -> Any:
        self.is_setup = True
        return self

    def as_teardown(self, *, setups: Any = _NOTSET, on_failure_fail_dagrun: Any = _NOTSET) -> Any:
        """Mark a teardown; ``setups`` become setups and its direct upstreams."""
        self.is_teardown = True
        self.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS
        if on_failure_fail_dagrun is not _NOTSET:
            self.on_failure_fail_dagrun = on_failure_fail_dagrun
        if setups is not _NOTSET:
            for s in _as_list(setups):
                s.is_setup = True
                s >> self
        return self

    def __enter__(self) -> Any:
        _refuse_context_manager(self)

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ always raises
        return None


def _refuse_context_manager(task: Any) -> None:
    if not task.is_setup and not task.is_teardown:
        raise AirflowException("Only setup/teardown tasks can be used as context managers.")
    raise UnsupportedArgument(_CONTEXT_MANAGER)


class XComArgSetupTeardownMixin:
    """The same marks on an ``XComArg`` (a ``@task`` call's result): they apply to its operator."""

    operator: Any

    is_setup = property(
        lambda self: self.operator.is_setup, lambda self, v: setattr(self.operator, "is_setup", v)
    )
    is_teardown = property(
        lambda self: self.operator.is_teardown, lambda self, v: setattr(self.operator, "is_teardown", v)
    )
    on_failure_fail_dagrun = property(
        lambda self: self.operator.on_failure_fail_dagrun,
        lambda self, v: setattr(self.operator, "on_failure_fail_dagrun", v),
    )

    def as_setup(self) -> Any:
        self.operator.is_setup = True
        return self

    def as_teardown(self, *, setups: Any = _NOTSET, on_failure_fail_dagrun: Any = _NOTSET) -> Any:
        self.operator.as_teardown(setups=setups, on_failure_fail_dagrun=on_failure_fail_dagrun)
        return self

    def __enter__(self) -> Any:
        _refuse_context_manager(self.operator)

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ always raises
        return None


# -- decorators ----------------------------------------------------------------------------------------
def _decorated(func: Any) -> Any:
    """``func`` as a ``@task`` decorator object (a plain function becomes ``@task``)."""
    from lexis_prefect.airflow.decorators import _TaskGroupFactory, python_task

    if isinstance(func, types.FunctionType):
        func = python_task(func)
    if isinstance(func, _TaskGroupFactory):
        raise AirflowException("Task groups cannot be marked as setup or teardown.")
    return func


def setup(func: Any) -> Any:
    """``@setup``: the task this function makes is a setup task."""
    func = _decorated(func)
    func.is_setup = True
    return func


def teardown(_func: Any = None, *, on_failure_fail_dagrun: bool = False) -> Any:
    """``@teardown`` / ``@teardown(on_failure_fail_dagrun=True)``: the task is a teardown task."""

    def mark(func: Any) -> Any:
        func = _decorated(func)
        func.is_teardown = True
        func.on_failure_fail_dagrun = on_failure_fail_dagrun
        return func

    return mark if _func is None else mark(_func)


def teardown_kwargs(decorator: Any) -> tuple[dict[str, Any], bool]:
    """The operator arguments of a ``@task`` call, and its ``on_failure_fail_dagrun`` (``_TaskDecorator.__call__``).

    A teardown's trigger rule is fixed; ``on_failure_fail_dagrun`` is popped from the decorator's
    arguments as Airflow pops it (so only the first call sees one given to ``@task(...)``).
    """
    if decorator.is_teardown:
        if "trigger_rule" in decorator.kwargs:
            raise ValueError("Trigger rule not configurable for teardown tasks.")
        decorator.kwargs.update(trigger_rule=TriggerRule.ALL_DONE_SETUP_SUCCESS)
    fail_dagrun = decorator.kwargs.pop("on_failure_fail_dagrun", decorator.on_failure_fail_dagrun)
    return decorator.kwargs, fail_dagrun


def mark_decorated(decorator: Any, op: Any, fail_dagrun: bool) -> None:
    """Give the operator a ``@task`` call made the decorator's setup/teardown marks."""
    op.is_setup = decorator.is_setup
    op.is_teardown = decorator.is_teardown
    op.on_failure_fail_dagrun = fail_dagrun


# -- graph rules ------------------------------------------------------------------------------------------
def validate_setup_teardown(dag: DAG) -> None:
    """``DAG.validate_setup_teardown``: a setup's direct work downstream must be ``all_success``."""
    for task in dag.tasks:
        if task.is_setup:
            for down in task.downstream_list:
                if not down.is_teardown and down.trigger_rule != TriggerRule.ALL_SUCCESS:
                    raise ValueError("Setup tasks must be followed with trigger rule ALL_SUCCESS.")


def effective_leaves(dag: DAG) -> list[BaseOperator]:
    """The tasks whose states decide the run's (``DagRun._tis_for_dagrun_state``).

    A teardown is ignored, and so is a task followed only by ignored teardowns, unless the teardown
    is ``on_failure_fail_dagrun``; a DAG of teardowns only falls back to its plain leaves.
    """

    def ignorable(task: Any) -> bool:
        return task.is_teardown and not task.on_failure_fail_dagrun

    leaves = [t for t in dag.tasks if all(ignorable(d) for d in t.downstream_list) and not ignorable(t)]
    return leaves or [t for t in dag.tasks if not t.downstream_task_ids]


def group_leaves(tasks: Sequence[BaseOperator]) -> list[BaseOperator]:
    """A task group's leaves, looking through its teardowns (``TaskGroup.get_leaves``)."""
    ids = {t.task_id for t in tasks}

    def has_non_teardown_downstream(task: Any, exclude: str) -> bool:
        return any(
            d.task_id != exclude and d.task_id in ids and not d.is_teardown for d in task.downstream_list
        )

    def first_non_teardown(task: Any) -> Iterable[Any]:
        for up in task.upstream_list:
            if up.task_id not in ids:
                continue
            if up.is_teardown:
                yield from first_non_teardown(up)
            elif task.is_teardown and up.is_setup:
                continue  # not through the teardown-to-setup edge
            elif not has_non_teardown_downstream(up, exclude=task.task_id):
                yield up

    found: list[BaseOperator] = []
    for task in tasks:
        if task.downstream_task_ids.isdisjoint(ids):
            found.extend([task] if not task.is_teardown else first_non_teardown(task))
    return found


def _relevant_setups(task: Any) -> list[Any]:
    """``get_upstreams_only_setups``: upstream setups that have no teardown or one downstream of ``task``."""
    downstream_teardowns = {t.task_id for t in task.get_flat_relatives(upstream=False) if t.is_teardown}
    return [
        up
        for up in task.get_flat_relatives(upstream=True)
        if up.is_setup
        and (
            not any(d.is_teardown for d in up.downstream_list)
            or not up.downstream_task_ids.isdisjoint(downstream_teardowns)
        )
    ]


def indirect_setups(task: Any) -> list[str]:
    """The relevant setups of a work task that are not its direct upstreams (none for a teardown)."""
    if task.is_teardown:
        return []
    return sorted(s.task_id for s in _relevant_setups(task) if s.task_id not in task.upstream_task_ids)


def setup_constraint(states: Sequence[str], n_setups: int) -> Decision | None | bool:
    """The setup constraint of ``trigger_rule_dep`` over the finished indirect setups' ``states``.

    :return: ``"upstream_failed"`` or ``"skipped"`` (the task is marked so, the direct upstreams
        are not looked at), ``False`` while a setup has not succeeded (the task waits, though its
        direct upstreams may still mark it), ``True`` when all ``n_setups`` succeeded.
    """
    if any(s in _FAILED for s in states):
        return "upstream_failed"
    if "skipped" in states:
        return "skipped"
    return sum(1 for s in states if s == "success") >= n_setups


def decide_task(task: Any, finished: Mapping[str, str], indirect: Sequence[str]) -> Decision | None:
    """``TriggerRuleDep`` for one task: its indirect setups' constraint, then its own trigger rule.

    :param finished: the states of its direct upstreams and indirect setups that have ended
    :param indirect: its indirect setups (:func:`indirect_setups`)
    """
    constraint: Decision | None | bool = True
    if indirect:
        constraint = setup_constraint([finished[s] for s in indirect if s in finished], len(indirect))
        if isinstance(constraint, str):
            return constraint
    ups = task.upstream_list
    verdict = decide(
        task.trigger_rule,
        [finished[u.task_id] for u in ups if u.task_id in finished],
        len(ups),
        setup_states=[finished[u.task_id] for u in ups if u.is_setup and u.task_id in finished],
        n_setup=sum(1 for u in ups if u.is_setup),
    )
    # a setup still running keeps a task that its own upstreams would let run waiting
    return None if verdict == "run" and constraint is False else verdict
