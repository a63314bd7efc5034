"""The mapped task at parse time: ``Op.partial(...).expand(...)``, ``@task.partial/expand/expand_kwargs``.

A :class:`MappedOperator` is one node of the DAG (one task id, its edges, its trigger rule and
retries), standing for all its map indexes. At run time each index renders into an ordinary
("unmapped") operator built from the partial arguments and that index's expanded ones, as
Airflow 2.10's ``MappedOperator.unmap`` does (``airflow/models/mappedoperator.py``,
``airflow/decorators/base.py``); the errors raised at definition are Airflow's.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow import _current
from lexis_prefect.airflow.baseoperator import ACCEPTED, IGNORED_WITH_WARNING, BaseOperator
from lexis_prefect.airflow.exceptions import AirflowException
from lexis_prefect.airflow.mapping.expand_input import (
    DictOfListsExpandInput,
    ExpandInput,
    ListOfDictsExpandInput,
    ensure_xcomarg_return_value,
    is_mappable,
    prevent_duplicates,
)
from lexis_prefect.airflow.trigger_rule import TriggerRule
from lexis_prefect.airflow.xcom_arg import XComArg

if TYPE_CHECKING:
    from lexis_prefect.airflow.dag import DAG
    from lexis_prefect.airflow.task_group import TaskGroup

#: Arguments that configure the mapped task itself (trigger rule, retries...), not its indexes' work.
_NODE_ARGS = ("task_id", "dag", "task_group", "params", "default_args")


@functools.cache
def _base_names() -> frozenset[str]:
    params = inspect.signature(inspect.unwrap(BaseOperator.__init__)).parameters
    names = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD}
    return frozenset((names | set(ACCEPTED) | set(IGNORED_WITH_WARNING)) - {"self", "_airflow_from_mapped", *_NODE_ARGS})


@functools.cache
def _init_names(cls: type) -> tuple[str, ...]:
    """The keyword arguments ``cls.__init__`` itself declares (Airflow's ``__param_names``)."""
    if "__init__" not in cls.__dict__:
        return ()
    params = inspect.signature(inspect.unwrap(cls.__dict__["__init__"])).parameters
    names = [n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if cls is BaseOperator:
        names += [*ACCEPTED, *IGNORED_WITH_WARNING]
    return tuple(n for n in names if not n.startswith("_"))


def validate_mapping_kwargs(op: type[BaseOperator], func: str, value: dict[str, Any]) -> None:
    """Every argument must be one the operator takes; ``expand`` ones must be mappable."""
    unknown_args = value.copy()
    for klass in op.mro():
        for name in _init_names(klass):
            arg = unknown_args.pop(name, _NOTSET)
            if func == "expand" and arg is not _NOTSET and not is_mappable(arg):
                raise ValueError(
                    f"{op.__name__}.expand() got an unexpected type {type(arg).__name__!r} for keyword argument {name}"
                )
        if not unknown_args:
            return
    if len(unknown_args) == 1:
        error = f"an unexpected keyword argument {unknown_args.popitem()[0]!r}"
    else:
        error = "unexpected keyword arguments " + ", ".join(repr(n) for n in unknown_args)
    raise TypeError(f"{op.__name__}.{func}() got {error}")


_NOTSET: Any = object()


def check_expand_kwargs_arg(kwargs: Any) -> None:
    """What ``expand_kwargs`` takes: an XComArg, or a list of dicts and XComArgs."""
    if isinstance(kwargs, Sequence) and not isinstance(kwargs, str):
        for item in kwargs:
            if not isinstance(item, (XComArg, Mapping)):
                raise TypeError(f"expected XComArg or list[dict], not {type(kwargs).__name__}")
    elif not isinstance(kwargs, XComArg):
        raise TypeError(f"expected XComArg or list[dict], not {type(kwargs).__name__}")


class OperatorPartial:
    """What ``Op.partial(...)`` returns: call ``.expand()`` or ``.expand_kwargs()`` on it."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: dict[str, Any]) -> None:
        if "task_id" not in kwargs:
            raise TypeError("partial() missing 1 required keyword-only argument: 'task_id'")
        if "task_concurrency" in kwargs:
            raise TypeError("unexpected argument: task_concurrency")
        self.operator_class = operator_class
        self.kwargs = kwargs
        validate_mapping_kwargs(operator_class, "partial", {k: v for k, v in kwargs.items() if k not in _NODE_ARGS})
        self.dag: DAG | None = kwargs.get("dag") or _current.current_dag()
        self.task_group: TaskGroup | None = kwargs.get("task_group") or _current.current_group(self.dag)

    def expand(self, **mapped_kwargs: Any) -> MappedOperator:
        if not mapped_kwargs:
            raise TypeError("no arguments to expand against")
        validate_mapping_kwargs(self.operator_class, "expand", mapped_kwargs)
        prevent_duplicates(self.kwargs, mapped_kwargs, fail_reason="unmappable or already specified")
        return self._expand(DictOfListsExpandInput(mapped_kwargs), strict=False)

    def expand_kwargs(self, kwargs: Any, *, strict: bool = True) -> MappedOperator:
        check_expand_kwargs_arg(kwargs)
        return self._expand(ListOfDictsExpandInput(kwargs), strict=strict)

    def _expand(self, expand_input: ExpandInput, *, strict: bool) -> MappedOperator:
        ensure_xcomarg_return_value(expand_input.value)
        kwargs = {**self.kwargs, "dag": self.dag, "task_group": self.task_group}
        return MappedOperator(
            operator_class=self.operator_class,
            expand_input=expand_input,
            partial_kwargs={k: v for k, v in kwargs.items() if k not in _NODE_ARGS},
            disallow_kwargs_override=strict,
            **{k: kwargs[k] for k in _NODE_ARGS if kwargs.get(k) is not None},
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.operator_class.__name__}.partial({args})"


def partial(operator_class: type[BaseOperator], **kwargs: Any) -> OperatorPartial:
    """``Op.partial(task_id=..., **fixed)``: the arguments every map index shares."""
    return OperatorPartial(operator_class, kwargs)


class MappedOperator(BaseOperator):
    """A task expanded at run time into one task instance per map index.

    ``expand_input_attr`` says which arguments expand: the operator's own (classic operators)
    or the callable's ``op_kwargs`` (TaskFlow, :class:`DecoratedMappedOperator`).
    """

    template_fields: Sequence[str] = ()  # the unmapped operator of each index is what renders

    def __init__(
        self,
        *,
        operator_class: type[BaseOperator],
        expand_input: ExpandInput,
        partial_kwargs: dict[str, Any],
        task_id: str,
        dag: DAG | None = None,
        task_group: TaskGroup | None = None,
        params: Any = None,
        default_args: dict[str, Any] | None = None,
        disallow_kwargs_override: bool = False,
    ) -> None:
        from lexis_prefect.airflow.mapping.task_group import closest_mapped_group

        if closest_mapped_group(task_group) is not None:
            raise NotImplementedError("operator expansion in an expanded task group is not yet supported")
        if partial_kwargs.get("sla") is not None:
            raise AirflowException(f"SLAs are unsupported with mapped tasks. Please set `sla=None` for task {task_id!r}.")
        self.operator_class = operator_class
        self.expand_input = expand_input
        self.partial_kwargs = partial_kwargs
        self.partial_params = params
        self.partial_default_args = default_args
        self.disallow_kwargs_override = disallow_kwargs_override
        node = {k: v for k, v in partial_kwargs.items() if k in _base_names()}
        limit = node.pop("max_active_tis_per_dagrun", None)  # honoured here, so no "ignored" warning
        super().__init__(task_id=task_id, dag=dag, task_group=task_group, params=params, default_args=default_args, **node)
        self.max_active_tis_per_dagrun = limit
        self.operator_template_fields = tuple(operator_class.template_fields)
        self._set_mapping_upstreams()

    def _set_mapping_upstreams(self) -> None:
        """The tasks whose XComs it expands over, or that templated partial arguments pull, are upstream."""
        from lexis_prefect.airflow.mapping.expand_input import iter_references

        refs = list(self.expand_input.iter_references())
        for name in self.operator_template_fields:
            refs.extend(iter_references(self.partial_kwargs.get(name)))
        for upstream, _ in refs:
            self.set_upstream(upstream)

    @property
    def task_type(self) -> str:
        return self.operator_class.__name__

    @property
    def custom_operator_name(self) -> str:
        return getattr(self.operator_class, "custom_operator_name", self.operator_class.__name__)

    def iter_mapped_dependencies(self) -> list[BaseOperator]:
        """The upstreams whose return value this task expands over."""
        return [op for op, _ in self.expand_input.iter_references()]

    # -- run time ---------------------------------------------------------------------------
    def prepare_for_execution(self) -> MappedOperator:
        return self  # the unmapped operator made at rendering is the execution copy

    def expanded_kwargs(self, context: dict[str, Any]) -> tuple[dict[str, Any], set[int]]:
        """This index's arguments for the operator class and the ids of the mapped values."""
        ti = context["ti"]
        mapped, seen = self.expand_input.resolve(context, ti.map_index, ti.length_of)
        if self.disallow_kwargs_override:
            prevent_duplicates(self.partial_kwargs, mapped, fail_reason="unmappable or already specified")
        return {**self.partial_kwargs, **mapped}, seen

    def unmap(self, kwargs: dict[str, Any]) -> BaseOperator:
        """The ordinary operator of one map index (not added to the DAG)."""
        kwargs.pop("max_active_tis_per_dagrun", None)  # the mapped task honours it, per run
        params = dict(self.partial_params or {})
        params.update(kwargs.pop("params", None) or {})
        op = self.operator_class(
            task_id=self.task_id,
            dag=self.dag,
            task_group=self.task_group,
            params=params,
            default_args=self.partial_default_args,
            _airflow_from_mapped=True,
            **kwargs,
        )
        op.task_id = self.task_id  # the class may have prefixed or suffixed it: keep the DAG's id
        op.upstream_task_ids = self.upstream_task_ids
        op.downstream_task_ids = self.downstream_task_ids
        return op

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Unmap this index's operator, make it the context's ``task`` and render it; values
        that came from the expansion are not rendered (Airflow's rule)."""
        from lexis_prefect.airflow.execution.templating import render_template_fields

        kwargs, seen = self.expanded_kwargs(context)
        op = self.unmap(kwargs)
        op.params = context["params"]
        context["task"] = op
        render_template_fields(op, context, jinja_env, seen)

    def __repr__(self) -> str:
        return f"<Mapped({self.task_type}): {self.task_id}>"


class DecoratedMappedOperator(MappedOperator):
    """A mapped ``@task``: the expanded values are the callable's keyword arguments."""

    def expanded_kwargs(self, context: dict[str, Any]) -> tuple[dict[str, Any], set[int]]:
        ti = context["ti"]
        op_kwargs, seen = self.expand_input.resolve(context, ti.map_index, ti.length_of)
        partial_op_kwargs = self.partial_kwargs.get("op_kwargs") or {}
        if self.disallow_kwargs_override:
            prevent_duplicates(partial_op_kwargs, op_kwargs, fail_reason="mapping already partial")
        return {**self.partial_kwargs, "op_kwargs": {**partial_op_kwargs, **op_kwargs}}, seen


# -- TaskFlow: @task ... .partial() / .expand() / .expand_kwargs() ------------------------------------
def _validate_arg_names(decorator: Any, func: str, kwargs: dict[str, Any]) -> None:
    """Context keys (``ti``, ``params``...) cannot be mapped; the rest as any expandable function."""
    from lexis_prefect.airflow.decorators import KNOWN_CONTEXT_KEYS

    context_keys = KNOWN_CONTEXT_KEYS.intersection(kwargs)
    if len(context_keys) == 1:
        raise ValueError(f"cannot call {func}() on task context variable {next(iter(context_keys))!r}")
    if context_keys:
        raise ValueError(f"cannot call {func}() on task context variables {', '.join(repr(n) for n in context_keys)}")
    validate_function_args(decorator.function_signature, func, kwargs)


def validate_function_args(signature: inspect.Signature, func: str, kwargs: dict[str, Any]) -> None:
    """Airflow's ``ExpandableFactory._validate_arg_names``: every name a parameter of the function."""
    parameters = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    left = kwargs.copy()
    for name, p in parameters.items():
        if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL):
            continue
        value = left.pop(name, _NOTSET)
        if func == "expand" and value is not _NOTSET and not is_mappable(value):
            raise ValueError(f"expand() got an unexpected type {type(value).__name__!r} for keyword argument {name!r}")
    if len(left) == 1:
        raise TypeError(f"{func}() got an unexpected keyword argument {next(iter(left))!r}")
    if left:
        raise TypeError(f"{func}() got unexpected keyword arguments {', '.join(repr(n) for n in left)}")


def decorated_partial(decorator: Any, kwargs: dict[str, Any]) -> Any:
    """``@task`` function ``.partial(**fixed)``: a decorator whose calls share these arguments."""
    _validate_arg_names(decorator, "partial", kwargs)
    old = decorator.kwargs.get("op_kwargs", {})
    prevent_duplicates(old, kwargs, fail_reason="duplicate partial")
    return decorator.override(op_kwargs={**kwargs, **old})


def decorated_expand(decorator: Any, map_kwargs: dict[str, Any]) -> XComArg:
    """``@task`` function ``.expand(**mapped)``."""
    if decorator.kwargs.get("trigger_rule") == TriggerRule.ALWAYS and any(isinstance(v, XComArg) for v in map_kwargs.values()):
        raise ValueError("Task-generated mapping within a task using 'expand' is not allowed with trigger rule 'always'.")
    if not map_kwargs:
        raise TypeError("no arguments to expand against")
    _validate_arg_names(decorator, "expand", map_kwargs)
    prevent_duplicates(decorator.kwargs, map_kwargs, fail_reason="mapping already partial")
    return _decorated_mapped(decorator, DictOfListsExpandInput(map_kwargs), strict=False)


def decorated_expand_kwargs(decorator: Any, kwargs: Any, strict: bool) -> XComArg:
    """``@task`` function ``.expand_kwargs(list_of_dicts_or_xcomarg)``."""
    if (
        decorator.kwargs.get("trigger_rule") == TriggerRule.ALWAYS
        and not isinstance(kwargs, XComArg)
        and any(isinstance(v, XComArg) for kw in kwargs if not isinstance(kw, XComArg) for v in kw.values())
    ):
        raise ValueError("Task-generated mapping within a task using 'expand_kwargs' is not allowed with trigger rule 'always'.")
    check_expand_kwargs_arg(kwargs)
    return _decorated_mapped(decorator, ListOfDictsExpandInput(kwargs), strict=strict)


def _decorated_mapped(decorator: Any, expand_input: ExpandInput, *, strict: bool) -> XComArg:
    from lexis_prefect.airflow.decorators import get_unique_task_id

    ensure_xcomarg_return_value(expand_input.value)
    kwargs = dict(decorator.kwargs)
    if "task_concurrency" in kwargs:
        raise TypeError("unexpected argument: task_concurrency")
    dag = kwargs.pop("dag", None) or _current.current_dag()
    group = kwargs.pop("task_group", None) or _current.current_group(dag)
    task_id = get_unique_task_id(kwargs.pop("task_id"), dag, group)
    node = {k: kwargs.pop(k) for k in ("params", "default_args") if k in kwargs}
    kwargs.setdefault("op_args", [])
    kwargs.setdefault("op_kwargs", {})
    op = DecoratedMappedOperator(
        operator_class=decorator.operator_class,
        expand_input=expand_input,
        partial_kwargs={**kwargs, "python_callable": decorator.function, "multiple_outputs": decorator.multiple_outputs},
        task_id=task_id,
        dag=dag,
        task_group=group,
        disallow_kwargs_override=strict,
        **node,
    )
    if decorator.function.__doc__ and not op.doc_md:
        op.doc_md = decorator.function.__doc__
    return XComArg(op)
