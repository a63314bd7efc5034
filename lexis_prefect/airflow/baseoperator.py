"""``BaseOperator``: what an Airflow task is at parse time (arguments, edges, templates).

What it does at run time lives in :mod:`lexis_prefect.airflow.execution.taskinstance` (one Prefect task
run per Airflow task) and :mod:`lexis_prefect.airflow.execution.runner` (trigger rules, leaf rule). The
argument handling follows Airflow 2.10 (``airflow/models/baseoperator.py``): ``default_args`` fill
unspecified keyword arguments at every level of the class hierarchy, operators take keyword
arguments only, and an argument no operator accepts is an error at import naming the task. An
accepted argument that would change run-time behaviour but that the shim cannot honour
(``depends_on_past``, ``pool``, ``sla``...) warns when set, so nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from lexis_prefect.airflow import _current
from lexis_prefect.airflow.exceptions import (
    AirflowException,
    FailStopDagInvalidTriggerRule,
    RemovedInAirflow3Warning,
    UnsupportedArgument,
)
from lexis_prefect.airflow.params import ParamsDict
from lexis_prefect.airflow.setup_teardown import SetupTeardownMixin
from lexis_prefect.airflow.trigger_rule import TriggerRule

if TYPE_CHECKING:
    from lexis_prefect.airflow.dag import DAG
    from lexis_prefect.airflow.task_group import TaskGroup

#: Accepted, kept, but not honoured: each changes run-time behaviour, so setting one warns.
IGNORED_WITH_WARNING: dict[str, Any] = {
    "depends_on_past": False,
    "wait_for_downstream": False,
    "ignore_first_depends_on_past": True,
    "wait_for_past_depends_before_skipping": False,
    "pool": None,
    "pool_slots": 1,
    "sla": None,
    "run_as_user": None,
    "executor": None,
    "executor_config": None,
    "resources": None,
    "max_active_tis_per_dag": None,
    "max_active_tis_per_dagrun": None,
    "task_concurrency": None,
}

#: Accepted and kept, with no run-time effect in a one-run-at-a-time engine (UI, scheduling hints).
ACCEPTED: dict[str, Any] = {
    "owner": "airflow",
    "email_on_retry": True,
    "email_on_failure": True,
    "start_date": None,
    "end_date": None,
    "email": None,
    "priority_weight": 1,
    "weight_rule": "downstream",
    "queue": "default",
    "map_index_template": None,
    "inlets": None,
    "outlets": None,
    "doc": None,
    "doc_md": None,
    "doc_json": None,
    "doc_yaml": None,
    "doc_rst": None,
    "task_display_name": None,
    "logger_name": None,
    "allow_nested_operators": True,
}

#: The rules a task of a ``fail_stop`` DAG may have (Airflow's FailStopDagInvalidTriggerRule).
FAIL_STOP_RULES = (TriggerRule.ALL_SUCCESS, TriggerRule.ALL_DONE_SETUP_SUCCESS)
MAX_RETRY_DELAY = 24 * 60 * 60  # Airflow's [core] max_retry_delay cap, seconds


def _as_list(value: Any) -> list[Any]:
    """``inlets`` / ``outlets`` as Airflow stores them: a list is kept, one object wrapped, none empty."""
    if not value:
        return []
    return value if isinstance(value, list) else [value]


def _as_timedelta(value: timedelta | float | int, name: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise TypeError(f"{name} must be a timedelta or a number of seconds, got {type(value).__name__}")


class DependencyMixin:
    """``>>`` and ``<<`` between tasks, task groups, XComArgs and lists of them (Airflow's rules)."""

    roots: Any
    leaves: Any

    def set_upstream(self, other: Any) -> None:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def set_downstream(self, other: Any) -> None:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> Any:
        """``[a, b] >> self``: a list has no ``>>``."""
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return self


def _relatives(other: Any) -> list[Any]:
    """``other`` as a flat list of nodes: a sequence (not a str) of them, or one."""
    if isinstance(other, DependencyMixin):
        return [other]
    if isinstance(other, Sequence) and not isinstance(other, str):
        if not all(isinstance(o, DependencyMixin) for o in other):
            bad = next(o for o in other if not isinstance(o, DependencyMixin))
            raise AirflowException(
                f"Relationships can only be set between Operators; received {type(bad).__name__}"
            )
        return list(other)
    raise AirflowException(f"Relationships can only be set between Operators; received {type(other).__name__}")


class BaseOperator(DependencyMixin, SetupTeardownMixin):
    """An Airflow task: subclasses implement ``execute(context)``.

    ``template_fields`` are rendered with Jinja right before ``execute``, on a shallow copy of the
    operator, as Airflow does; the DAG file's operator objects are never mutated by a run.
    """

    template_fields: ClassVar[Sequence[str]] = ()
    template_ext: ClassVar[Sequence[str]] = ()
    template_fields_renderers: ClassVar[dict[str, str]] = {}
    ui_color: ClassVar[str] = "#fff"
    ui_fgcolor: ClassVar[str] = "#000"
    #: True for operators whose ``execute`` is a coroutine function run on an event loop.
    is_async: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _apply_defaults(cls.__dict__["__init__"])  # type: ignore[method-assign]
        if isinstance(cls.__dict__.get("template_fields"), str):
            cls.template_fields = (cls.template_fields,)  # type: ignore[assignment]

    def __init__(
        self,
        task_id: str,
        *,
        dag: DAG | None = None,
        task_group: TaskGroup | None = None,
        params: Mapping[str, Any] | None = None,
        default_args: dict[str, Any] | None = None,
        trigger_rule: str = TriggerRule.ALL_SUCCESS,
        retries: int | None = 0,
        retry_delay: timedelta | float = timedelta(seconds=300),
        retry_exponential_backoff: bool = False,
        max_retry_delay: timedelta | float | None = None,
        execution_timeout: timedelta | None = None,
        do_xcom_push: bool = True,
        multiple_outputs: bool = False,
        on_execute_callback: Callable | list[Callable] | None = None,
        on_failure_callback: Callable | list[Callable] | None = None,
        on_success_callback: Callable | list[Callable] | None = None,
        on_retry_callback: Callable | list[Callable] | None = None,
        on_skipped_callback: Callable | list[Callable] | None = None,
        pre_execute: Callable | None = None,
        post_execute: Callable | None = None,
        _airflow_from_mapped: bool = False,
        **kwargs: Any,
    ) -> None:
        self._check_kwargs(task_id, kwargs)
        dag = dag or _current.current_dag()
        task_group = task_group or _current.current_group(dag)
        self.task_id = task_group.child_id(task_id) if task_group else task_id
        _current.validate_key(self.task_id)
        self.task_group: TaskGroup | None = None
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self._dag: DAG | None = None
        if _airflow_from_mapped:  # one map index's operator: the mapped task stands in the DAG
            self.task_group, self._dag = task_group, dag
        elif task_group is not None:
            task_group.add(self)
        self.trigger_rule = _trigger_rule(trigger_rule, dag, task_id)
        if dag is not None and dag.fail_stop and self.trigger_rule not in FAIL_STOP_RULES:
            raise FailStopDagInvalidTriggerRule()
        self.retries = int(retries or 0)
        if self.retries < 0:
            raise AirflowException(f"'retries' of task {self.task_id!r} must be >= 0, got {retries}")
        self.retry_delay = _as_timedelta(retry_delay, "retry_delay")
        self.retry_exponential_backoff = retry_exponential_backoff
        self.max_retry_delay = None if max_retry_delay is None else _as_timedelta(max_retry_delay, "max_retry_delay")
        if execution_timeout is not None and not isinstance(execution_timeout, timedelta):
            raise ValueError(
                f"execution_timeout must be timedelta object but passed as type: {type(execution_timeout)}"
            )
        self.execution_timeout = execution_timeout
        self.params = ParamsDict(params)
        self.default_args = default_args or {}
        self.do_xcom_push = do_xcom_push
        self.multiple_outputs = multiple_outputs
        self.on_execute_callback = on_execute_callback
        self.on_failure_callback = on_failure_callback
        self.on_success_callback = on_success_callback
        self.on_retry_callback = on_retry_callback
        self.on_skipped_callback = on_skipped_callback
        self._pre_execute_hook = pre_execute
        self._post_execute_hook = post_execute
        for name, default in {**ACCEPTED, **IGNORED_WITH_WARNING}.items():
            setattr(self, name, kwargs.get(name, default))
        # Lineage: Airflow keeps a list (one object is wrapped); datasets among them emit events
        self.inlets = _as_list(self.inlets)
        self.outlets = _as_list(self.outlets)
        if dag is not None and not _airflow_from_mapped:
            self.dag = dag

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """``Op.partial(task_id=..., **fixed).expand(**mapped)``: dynamic task mapping."""
        from lexis_prefect.airflow.mapping.operator import partial

        return partial(cls, **kwargs)

    def _check_kwargs(self, task_id: str, kwargs: dict[str, Any]) -> None:
        unknown = {k: v for k, v in kwargs.items() if k not in ACCEPTED and k not in IGNORED_WITH_WARNING}
        if unknown:
            raise UnsupportedArgument(
                f"Invalid arguments were passed to {type(self).__name__} (task_id: {task_id}). "
                f"Invalid arguments were:\n**kwargs: {unknown}"
            )
        for name, value in kwargs.items():
            if name in IGNORED_WITH_WARNING and value != IGNORED_WITH_WARNING[name]:
                warnings.warn(
                    f"{type(self).__name__} (task_id: {task_id}): {name}={value!r} is not honoured by "
                    "lexis-prefect and is ignored (see docs/airflow-compat.md)",
                    UserWarning,
                    stacklevel=4,
                )

    # -- DAG membership ---------------------------------------------------------------------
    @property
    def dag(self) -> DAG:
        if self._dag is None:
            raise AirflowException(f"Operator {self} has not been assigned to a DAG yet")
        return self._dag

    @dag.setter
    def dag(self, dag: DAG) -> None:
        if self._dag is dag:
            return
        if self._dag is not None:
            raise AirflowException(f"The DAG assigned to {self} can not be changed.")
        self._dag = dag
        dag.add_task(self)

    def has_dag(self) -> bool:
        return self._dag is not None

    @property
    def dag_id(self) -> str:
        return self._dag.dag_id if self._dag is not None else f"adhoc_{self.owner}"

    @property
    def node_id(self) -> str:
        return self.task_id

    @property
    def label(self) -> str:
        group = self.task_group
        if group is not None and group.prefix_group_id and group.group_id:
            return self.task_id[len(group.group_id) + 1 :]
        return self.task_id

    @property
    def task_type(self) -> str:
        return type(self).__name__

    # -- edges --------------------------------------------------------------------------------
    @property
    def roots(self) -> list[BaseOperator]:
        return [self]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self]

    def set_upstream(self, other: Any) -> None:
        self._set_relatives(other, upstream=True)

    def set_downstream(self, other: Any) -> None:
        self._set_relatives(other, upstream=False)

    def _set_relatives(self, other: Any, *, upstream: bool) -> None:
        nodes = _relatives(other)
        for node in nodes:
            if getattr(node, "_airflow_edge_modifier", False):  # Label: it links once both sides are known
                node.update_relative(self, upstream=not upstream)
        tasks = [t for node in nodes for t in (node.leaves if upstream else node.roots)]
        dags = {id(t._dag): t._dag for t in [self, *tasks] if t._dag is not None}
        if len(dags) > 1:
            names = sorted(d.dag_id for d in dags.values())
            raise AirflowException(f"Tried to set relationships between tasks in more than one DAG: {names}")
        if not dags:
            raise AirflowException(
                "Tried to create relationships between tasks that don't have DAGs yet. "
                f"Set the DAG for at least one task and try again: {[self, *tasks]}"
            )
        dag = next(iter(dags.values()))
        for task in [self, *tasks]:
            if task._dag is None:
                task.dag = dag
        for task in tasks:
            if upstream:
                task.downstream_task_ids.add(self.task_id)
                self.upstream_task_ids.add(task.task_id)
            else:
                self.downstream_task_ids.add(task.task_id)
                task.upstream_task_ids.add(self.task_id)

    @property
    def upstream_list(self) -> list[BaseOperator]:
        return [self.dag.get_task(t) for t in sorted(self.upstream_task_ids)]

    @property
    def downstream_list(self) -> list[BaseOperator]:
        return [self.dag.get_task(t) for t in sorted(self.downstream_task_ids)]

    def get_direct_relative_ids(self, upstream: bool = False) -> set[str]:
        return set(self.upstream_task_ids if upstream else self.downstream_task_ids)

    def get_flat_relative_ids(self, upstream: bool = False) -> set[str]:
        """Every task reachable downstream (or upstream) of this one."""
        found: set[str] = set()
        todo = list(self.get_direct_relative_ids(upstream))
        while todo:
            task_id = todo.pop()
            if task_id not in found:
                found.add(task_id)
                todo.extend(self.dag.get_task(task_id).get_direct_relative_ids(upstream))
        return found

    def get_flat_relatives(self, upstream: bool = False) -> list[BaseOperator]:
        return [self.dag.get_task(t) for t in sorted(self.get_flat_relative_ids(upstream))]

    @property
    def output(self) -> Any:
        """The ``XComArg`` of this task's return value (``op.output``)."""
        from lexis_prefect.airflow.xcom_arg import XComArg

        return XComArg(self)

    # -- run time -----------------------------------------------------------------------------
    def execute(self, context: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement execute(context)")

    def pre_execute(self, context: Any) -> None:
        if self._pre_execute_hook is not None:
            self._pre_execute_hook(context)

    def post_execute(self, context: Any, result: Any = None) -> None:
        if self._post_execute_hook is not None:
            self._post_execute_hook(context, result)

    def on_kill(self) -> None:
        """Called when the task is stopped (execution timeout); operators with a process kill it."""

    def prepare_for_execution(self) -> BaseOperator:
        """The shallow copy that is rendered and executed (Airflow's rule)."""
        return copy.copy(self)

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        from lexis_prefect.airflow.execution.templating import render_template_fields

        render_template_fields(self, context, jinja_env)

    def render_template(self, content: Any, context: Any, jinja_env: Any = None) -> Any:
        from lexis_prefect.airflow.execution.templating import render_template

        return render_template(self, content, context, jinja_env)

    def xcom_push(self, context: Any, key: str, value: Any) -> None:
        context["ti"].xcom_push(key=key, value=value)

    def xcom_pull(self, context: Any, task_ids: str | Iterable[str] | None = None, key: str = "return_value", **kwargs: Any) -> Any:
        return context["ti"].xcom_pull(task_ids=task_ids, key=key, **kwargs)

    def retry_delays(self, logical_date: str) -> list[float]:
        """Seconds before each retry, as Airflow's ``next_retry_datetime`` computes them."""
        import hashlib
        import math

        base = self.retry_delay.total_seconds()
        cap = min(self.max_retry_delay.total_seconds(), MAX_RETRY_DELAY) if self.max_retry_delay else MAX_RETRY_DELAY
        delays = []
        for try_number in range(1, self.retries + 1):
            if not self.retry_exponential_backoff:
                delays.append(base)
                continue
            min_backoff = max(1, math.ceil(base * 2 ** (try_number - 1)))
            key = f"{self.dag_id}#{self.task_id}#{logical_date}#{try_number}".encode()
            ti_hash = int(hashlib.sha1(key).hexdigest(), 16)
            delays.append(float(min(min_backoff + ti_hash % min_backoff, cap)))
        return delays

    @property
    def log(self) -> logging.Logger | logging.LoggerAdapter:
        """The Prefect run logger inside a task run (logs reach the UI), else a plain logger."""
        from prefect.exceptions import MissingContextError
        from prefect.logging import get_run_logger

        with contextlib.suppress(MissingContextError):
            return get_run_logger()
        return logging.getLogger(f"airflow.task.operators.{type(self).__name__}")

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    # Operators are keyed by identity (edges are by id); Airflow's deep compare is not needed.
    __hash__ = object.__hash__


def _trigger_rule(rule: Any, dag: DAG | None, task_id: str) -> TriggerRule:
    if rule == "dummy":
        warnings.warn("dummy Trigger Rule is deprecated. Please use `TriggerRule.ALWAYS`.", RemovedInAirflow3Warning, stacklevel=5)
        rule = TriggerRule.ALWAYS
    if rule == "none_failed_or_skipped":
        warnings.warn(
            "none_failed_or_skipped Trigger Rule is deprecated. Please use `none_failed_min_one_success`.",
            RemovedInAirflow3Warning,
            stacklevel=5,
        )
        rule = TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    if not TriggerRule.is_valid(rule):
        raise AirflowException(
            f"The trigger_rule must be one of {sorted(TriggerRule.all_triggers())},"
            f"'{dag.dag_id if dag else ''}.{task_id}'; received '{rule}'."
        )
    return TriggerRule(rule)


def _merged_defaults(kwargs: dict[str, Any]) -> tuple[dict[str, Any], ParamsDict]:
    """Airflow's ``get_merged_defaults``: DAG, then group, then the task's own default_args/params."""
    dag = kwargs.get("dag") or _current.current_dag()
    group = kwargs.get("task_group") or (_current.current_group(dag) if dag else None)
    args: dict[str, Any] = dict(dag.default_args) if dag else {}
    params = copy.deepcopy(dag.params) if dag else ParamsDict()
    if group is not None and group.default_args:
        args.update(group.default_args)
    task_params = kwargs.pop("params", None)
    if task_params:
        if not isinstance(task_params, Mapping):
            raise TypeError("params must be a mapping")
        params.update(task_params)
    task_default_args = kwargs.pop("default_args", None)
    if task_default_args:
        if not isinstance(task_default_args, Mapping):
            raise TypeError("default_args must be a mapping")
        args.update(task_default_args)
        params.update(task_default_args.get("params") or {})
    return args, params


def _apply_defaults(init: Callable[..., None], also: Iterable[str] = ()) -> Callable[..., None]:
    """Fill ``init``'s unspecified keyword arguments from ``default_args`` (Airflow's metaclass).

    ``also`` names keyword-only-through-``**kwargs`` arguments that default_args may fill too.
    """
    signature = inspect.signature(init)
    accepted = {
        name
        for name, p in signature.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    } | set(also)
    required = {
        name
        for name, p in signature.parameters.items()
        if name in accepted and p.default is inspect.Parameter.empty and name != "task_id"
    }

    @functools.wraps(init)
    def apply_defaults(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if args:
            raise AirflowException("Use keyword arguments when initializing operators")
        default_args, params = _merged_defaults(kwargs)
        for name in accepted:
            if name not in kwargs and name in default_args:
                kwargs[name] = default_args[name]
        missing = sorted(required.difference(kwargs))
        if missing:
            noun = "argument" if len(missing) == 1 else "arguments"
            raise AirflowException(f"missing keyword {noun} {', '.join(repr(m) for m in missing)}")
        if params:
            kwargs["params"] = params
        outermost = not getattr(self, "_BaseOperator__initialising", False)
        self._BaseOperator__initialising = True
        try:
            init(self, **kwargs, default_args=default_args)
        finally:
            if outermost:
                self._BaseOperator__initialising = False
        if outermost:
            from lexis_prefect.airflow.xcom_arg import set_xcomargs_dependencies

            set_xcomargs_dependencies(self)

    return apply_defaults


BaseOperator.__init__ = _apply_defaults(  # type: ignore[method-assign]
    BaseOperator.__init__, also=[*ACCEPTED, *IGNORED_WITH_WARNING]
)


def chain(*elements: Any) -> None:
    """``chain(a, [b, c], d)``: each element downstream of the one before; equal-length lists pairwise."""
    for up, down in zip(elements, elements[1:]):
        up_is_list = isinstance(up, Sequence) and not isinstance(up, str)
        down_is_list = isinstance(down, Sequence) and not isinstance(down, str)
        if up_is_list and down_is_list:
            if len(up) != len(down):
                raise AirflowException(
                    f"Chain not supported for different length Iterable. Got {len(up)} and {len(down)}."
                )
            for u, d in zip(up, down):
                u.set_downstream(d)
        elif up_is_list:
            for u in up:
                u.set_downstream(down)
        else:
            up.set_downstream(down)


def cross_downstream(from_tasks: Sequence[Any], to_tasks: Any) -> None:
    """Every task of ``from_tasks`` upstream of every task of ``to_tasks``."""
    for task in from_tasks:
        task.set_downstream(to_tasks)
