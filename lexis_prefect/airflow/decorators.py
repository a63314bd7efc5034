"""Airflow 2.10's TaskFlow decorators: ``@dag``, ``@task`` (and ``.branch``, ``.short_circuit``,
``.sensor``, ``.bash``) and ``@task_group``.

Ported from ``airflow/decorators/{base,python,branch_python,short_circuit,sensor,bash,task_group}.py``
and ``airflow/models/dag.py`` ``dag()`` (2.10.5). Calling a ``@task`` function inside a DAG creates
the operator and returns an :class:`~lexis_prefect.airflow.xcom_arg.XComArg`; XComArgs among its
arguments become upstream edges and are replaced by the pulled values when it runs. Calling a
``@dag`` function builds and returns the DAG; its arguments become DAG params and reach the tasks
as :class:`DagParam` objects, resolved at run time (from the run's conf, else the default).
Dynamic task mapping (``.partial``/``.expand``/``.expand_kwargs``) is in
:mod:`lexis_prefect.airflow.mapping`; ``@task.virtualenv`` and ``@task.external_python`` live in
:mod:`lexis_prefect.airflow.standard.virtualenv`; the docker/kubernetes/... task flavours are not
supported and say so.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import sys
import textwrap
import typing
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow import _current
from lexis_prefect.airflow.baseoperator import BaseOperator
from lexis_prefect.airflow.exceptions import AirflowException
from lexis_prefect.airflow.operators import (
    NOTSET_COMMAND,
    BashOperator,
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
    determine_kwargs,
)
from lexis_prefect.airflow.params import NOTSET
from lexis_prefect.airflow.sensors import PythonSensor
from lexis_prefect.airflow.setup_teardown import mark_decorated, teardown_kwargs
from lexis_prefect.airflow.task_group import TaskGroup
from lexis_prefect.airflow.xcom_arg import XComArg

if TYPE_CHECKING:
    from lexis_prefect.airflow.dag import DAG

__all__ = ["DagParam", "dag", "task", "task_group"]

#: ``airflow.utils.context.KNOWN_CONTEXT_KEYS`` (2.10.5).
KNOWN_CONTEXT_KEYS: set[str] = {
    "conf", "conn", "dag", "dag_run", "data_interval_end", "data_interval_start", "ds", "ds_nodash",
    "execution_date", "expanded_ti_count", "exception", "inlets", "inlet_events", "logical_date",
    "macros", "map_index_template", "next_ds", "next_ds_nodash", "next_execution_date", "outlets",
    "outlet_events", "params", "prev_data_interval_start_success", "prev_data_interval_end_success",
    "prev_ds", "prev_ds_nodash", "prev_execution_date", "prev_execution_date_success",
    "prev_start_date_success", "prev_end_date_success", "reason", "run_id", "task", "task_instance",
    "task_instance_key_str", "test_mode", "templates_dict", "ti", "tomorrow_ds", "tomorrow_ds_nodash",
    "triggering_dataset_events", "ts", "ts_nodash", "ts_nodash_with_tz", "try_number", "var",
    "yesterday_ds", "yesterday_ds_nodash",
}  # fmt: skip


# -- unique task ids --------------------------------------------------------------------------------
def get_unique_task_id(task_id: str, dag: DAG | None = None, task_group: TaskGroup | None = None) -> str:
    """``task_id``, or ``task_id__N`` with the next free N if the DAG has it already (decorated tasks)."""
    dag = dag or _current.current_dag()
    if not dag:
        return task_id
    task_group = task_group or _current.current_group(dag)
    tg_task_id = task_group.child_id(task_id) if task_group else task_id
    if tg_task_id not in dag.task_ids:
        return task_id
    prefix = re.split(r"__\d+$", tg_task_id)[0]
    core = re.split(r"__\d+$", task_id)[0]
    return f"{core}__{_current.next_suffix(prefix, dag.task_ids)}"


# -- decorated operators ---------------------------------------------------------------------------
class DecoratedOperator(BaseOperator):
    """Wraps a Python callable and the arguments of the call that created the task.

    At creation the arguments are bound to the function's signature (a wrong call fails at import,
    as in Airflow); parameters named like context keys (``ti``, ``params``...) may only default to
    None, because the context fills them. ``default_args`` entries named like a parameter of the
    function become keyword arguments of the call (Airflow's ``_hook_apply_defaults``).
    """

    template_fields: Sequence[str] = ("op_args", "op_kwargs")
    template_fields_renderers = {"op_args": "py", "op_kwargs": "py"}
    shallow_copy_attrs: Sequence[str] = ("python_callable",)

    def __init__(
        self,
        *,
        python_callable: Callable,
        task_id: str,
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        kwargs_to_upstream: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        task_id = get_unique_task_id(task_id, kwargs.get("dag"), kwargs.get("task_group"))
        self.python_callable = python_callable
        kwargs_to_upstream = kwargs_to_upstream or {}
        op_args = op_args or []
        op_kwargs = op_kwargs or {}
        signature = inspect.signature(python_callable)
        faulty_parameters = [
            param.name
            for param in signature.parameters.values()
            if param.name in KNOWN_CONTEXT_KEYS and param.default not in (None, inspect.Parameter.empty)
        ]
        if faulty_parameters:
            raise ValueError(f"Context key parameter {faulty_parameters[0]} can't have a default other than None")
        parameters = [
            param.replace(default=None) if param.name in KNOWN_CONTEXT_KEYS else param
            for param in signature.parameters.values()
        ]
        try:
            signature = signature.replace(parameters=parameters)
        except ValueError as err:
            message = textwrap.dedent(
                f"""
                The function signature broke while assigning defaults to context key parameters.

                The decorator is replacing the signature
                > {python_callable.__name__}({', '.join(str(param) for param in signature.parameters.values())})

                with
                > {python_callable.__name__}({', '.join(str(param) for param in parameters)})

                which isn't valid: {err}
                """
            )
            raise ValueError(message) from err
        signature.bind(*op_args, **op_kwargs)
        self.op_args = op_args
        self.op_kwargs = op_kwargs
        super().__init__(task_id=task_id, **kwargs_to_upstream, **kwargs)

    def execute(self, context: Any) -> Any:
        return_value = super().execute(context)
        return self._handle_output(return_value=return_value, context=context, xcom_push=self.xcom_push)

    def _handle_output(self, return_value: Any, context: Any, xcom_push: Callable) -> Any:
        return return_value

    def get_python_source(self) -> str:
        return textwrap.dedent(inspect.getsource(self.python_callable))


def _hook_apply_defaults(python_callable: Callable, kwargs: dict[str, Any]) -> None:
    """``default_args`` entries named like a parameter of the function fill its keyword arguments."""
    default_args = kwargs.get("default_args") or {}
    op_kwargs = kwargs.get("op_kwargs") or {}
    for arg in inspect.signature(python_callable).parameters:
        if arg not in op_kwargs and arg in default_args:
            op_kwargs[arg] = default_args[arg]
    kwargs["op_kwargs"] = op_kwargs


class _PythonDecoratedOperator(DecoratedOperator, PythonOperator):
    """The operator of ``@task``: a PythonOperator whose arguments come from the call."""

    template_fields: Sequence[str] = ("templates_dict", "op_args", "op_kwargs")
    template_fields_renderers = {"templates_dict": "json", "op_args": "py", "op_kwargs": "py"}
    custom_operator_name: str = "@task"

    def __init__(self, *, python_callable: Callable, op_args: Any, op_kwargs: Any, **kwargs: Any) -> None:
        kwargs["op_kwargs"] = op_kwargs
        _hook_apply_defaults(python_callable, kwargs)
        op_kwargs = kwargs.pop("op_kwargs")
        kwargs_to_upstream = {"python_callable": python_callable, "op_args": op_args, "op_kwargs": op_kwargs}
        super().__init__(
            kwargs_to_upstream=kwargs_to_upstream,
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            **kwargs,
        )


class _BranchPythonDecoratedOperator(_PythonDecoratedOperator, BranchPythonOperator):
    """The operator of ``@task.branch``."""

    template_fields = BranchPythonOperator.template_fields
    custom_operator_name: str = "@task.branch"


class _ShortCircuitDecoratedOperator(_PythonDecoratedOperator, ShortCircuitOperator):
    """The operator of ``@task.short_circuit``."""

    template_fields = ShortCircuitOperator.template_fields
    custom_operator_name: str = "@task.short_circuit"


class DecoratedSensorOperator(PythonSensor):
    """The operator of ``@task.sensor``: a PythonSensor poking the decorated function."""

    template_fields: Sequence[str] = ("op_args", "op_kwargs")
    template_fields_renderers: dict[str, str] = {"op_args": "py", "op_kwargs": "py"}
    custom_operator_name = "@task.sensor"
    shallow_copy_attrs: Sequence[str] = ("python_callable",)

    def __init__(self, *, task_id: str, **kwargs: Any) -> None:
        kwargs["task_id"] = get_unique_task_id(task_id, kwargs.get("dag"), kwargs.get("task_group"))
        super().__init__(**kwargs)


class _BashDecoratedOperator(DecoratedOperator, BashOperator):
    """The operator of ``@task.bash``: the function returns the command, which then runs as BashOperator's.

    The returned command is rendered with Jinja before it runs, as Airflow re-renders it.
    """

    template_fields: Sequence[str] = (*DecoratedOperator.template_fields, *BashOperator.template_fields)
    template_fields_renderers: dict[str, str] = {
        **DecoratedOperator.template_fields_renderers,
        **BashOperator.template_fields_renderers,
    }
    custom_operator_name: str = "@task.bash"

    def __init__(
        self,
        *,
        python_callable: Callable,
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("multiple_outputs", None):
            warnings.warn(
                f"`multiple_outputs=True` is not supported in {self.custom_operator_name} tasks. Ignoring.",
                UserWarning,
                stacklevel=3,
            )
        kwargs["op_kwargs"] = op_kwargs
        _hook_apply_defaults(python_callable, kwargs)
        op_kwargs = kwargs.pop("op_kwargs")
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            bash_command=NOTSET_COMMAND,
            multiple_outputs=False,
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        context.update(self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        self.bash_command = self.python_callable(*self.op_args, **kwargs)
        if not isinstance(self.bash_command, str) or self.bash_command.strip() == "":
            raise TypeError("The returned value from the TaskFlow callable must be a non-empty string.")
        # Airflow re-renders the template fields once the command is known (RenderedTaskInstanceFields)
        self.bash_command = self.render_template(self.bash_command, context)
        return BashOperator.execute(self, context)


# -- the decorator object ----------------------------------------------------------------------------
class _TaskDecorator:
    """A decorated function: calling it inside a DAG creates the task and returns its ``XComArg``."""

    _airflow_is_task_decorator = True
    #: Set by ``@setup`` / ``@teardown`` (:mod:`lexis_prefect.airflow.setup_teardown`).
    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False

    def __init__(
        self,
        function: Callable,
        operator_class: type[BaseOperator],
        multiple_outputs: bool | None = None,
        kwargs: dict[str, Any] | None = None,
        decorator_name: str = "task",
    ) -> None:
        self.function = function
        self.operator_class = operator_class
        # inferred first, as attrs does in Airflow: task("x") fails here with AttributeError
        self.multiple_outputs = self._infer_multiple_outputs() if multiple_outputs is None else multiple_outputs
        if not callable(function):
            raise TypeError(f"'function' must be callable (got {function!r} that is a {type(function)}).")
        self.kwargs = dict(kwargs or {})
        self.decorator_name = decorator_name
        if "self" in self.function_signature.parameters:
            raise TypeError(f"@{self.decorator_name} does not support methods")
        self.kwargs.setdefault("task_id", self.function.__name__)

    @functools.cached_property
    def function_signature(self) -> inspect.Signature:
        return inspect.signature(self.function)

    def _infer_multiple_outputs(self) -> bool:
        """True when the return annotation is a Mapping (``-> dict[str, int]``), as Airflow infers it."""
        if "return" not in self.function.__annotations__:
            return False
        try:

            def fake() -> None: ...

            fake.__annotations__ = {"return": self.function.__annotations__["return"]}
            return_type = typing.get_type_hints(fake, self.function.__globals__).get("return", Any)
        except NameError as e:
            warnings.warn(
                f"Cannot infer multiple_outputs for TaskFlow function {self.function.__name__!r} with forward"
                f" type references that are not imported. (Error was {e})",
                stacklevel=4,
            )
            return False
        except TypeError:
            return False
        ttype = getattr(return_type, "__origin__", return_type)
        return isinstance(ttype, type) and issubclass(ttype, Mapping)

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        op_kwargs, fail_dagrun = teardown_kwargs(self)
        op = self.operator_class(
            python_callable=self.function,
            op_args=args,
            op_kwargs=kwargs,
            multiple_outputs=self.multiple_outputs,
            **op_kwargs,
        )
        mark_decorated(self, op, fail_dagrun)
        op_doc_attrs = [op.doc, op.doc_json, op.doc_md, op.doc_rst, op.doc_yaml]
        if self.function.__doc__ and not any(op_doc_attrs):
            op.doc_md = self.function.__doc__
        return XComArg(op)

    @property
    def __wrapped__(self) -> Callable:
        return self.function

    def override(self, **kwargs: Any) -> _TaskDecorator:
        """The same decorated function with other operator arguments (``task_id``, ``retries``...)."""
        result = _TaskDecorator(
            function=self.function,
            operator_class=self.operator_class,
            multiple_outputs=self.multiple_outputs,
            kwargs={**self.kwargs, **kwargs},
            decorator_name=self.decorator_name,
        )
        result.is_setup, result.is_teardown = self.is_setup, self.is_teardown
        result.on_failure_fail_dagrun = self.on_failure_fail_dagrun
        return result

    def partial(self, **kwargs: Any) -> _TaskDecorator:
        """The same function with some arguments fixed for ``.expand()`` (dynamic task mapping)."""
        from lexis_prefect.airflow.mapping.operator import decorated_partial

        return decorated_partial(self, kwargs)

    def expand(self, **kwargs: Any) -> XComArg:
        """One task instance per value (per combination) of ``kwargs``, made at run time."""
        from lexis_prefect.airflow.mapping.operator import decorated_expand

        return decorated_expand(self, kwargs)

    def expand_kwargs(self, kwargs: Any, *, strict: bool = True) -> XComArg:
        """One task instance per dict of keyword arguments in ``kwargs``."""
        from lexis_prefect.airflow.mapping.operator import decorated_expand_kwargs

        return decorated_expand_kwargs(self, kwargs, strict)

    def __repr__(self) -> str:
        return f"<@{self.decorator_name} {self.function.__qualname__} ({self.operator_class.__name__})>"


def task_decorator_factory(
    python_callable: Callable | None = None,
    *,
    multiple_outputs: bool | None = None,
    decorated_operator_class: type[BaseOperator],
    **kwargs: Any,
) -> Any:
    """``@deco`` or ``@deco(**operator_kwargs)``: a :class:`_TaskDecorator`, or a factory of one."""
    if python_callable:
        return _TaskDecorator(
            function=python_callable,
            multiple_outputs=multiple_outputs,
            operator_class=decorated_operator_class,
            kwargs=kwargs,
        )
    if python_callable is not None:
        raise TypeError("No args allowed while using @task, use kwargs instead")

    def decorator_factory(python_callable: Callable) -> _TaskDecorator:
        return _TaskDecorator(
            function=python_callable,
            multiple_outputs=multiple_outputs,
            operator_class=decorated_operator_class,
            kwargs=kwargs,
        )

    return decorator_factory


def python_task(python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any) -> Any:
    """``@task`` / ``@task.python``: the function runs as a PythonOperator."""
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_PythonDecoratedOperator,
        **kwargs,
    )


def branch_task(python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any) -> Any:
    """``@task.branch``: the function returns the task id(s) to follow (a BranchPythonOperator)."""
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_BranchPythonDecoratedOperator,
        **kwargs,
    )


def short_circuit_task(python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any) -> Any:
    """``@task.short_circuit``: a falsy return value skips downstream (a ShortCircuitOperator)."""
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_ShortCircuitDecoratedOperator,
        **kwargs,
    )


def sensor_task(python_callable: Callable | None = None, **kwargs: Any) -> Any:
    """``@task.sensor``: the function is poked (a PythonSensor); it may return a PokeReturnValue."""
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=False,
        decorated_operator_class=DecoratedSensorOperator,
        **kwargs,
    )


def bash_task(python_callable: Callable | None = None, **kwargs: Any) -> Any:
    """``@task.bash``: the function returns a Bash command, run as a BashOperator."""
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=_BashDecoratedOperator,
        **kwargs,
    )


def _standard_decorator(name: str) -> Any:
    """``@task.<name>`` served by :mod:`lexis_prefect.airflow.standard.virtualenv` (loaded on use)."""

    def decorator(*args: Any, **kwargs: Any) -> Any:
        from lexis_prefect.airflow.standard import virtualenv

        return getattr(virtualenv, f"{name}_task")(*args, **kwargs)

    decorator.__name__ = decorator.__qualname__ = f"{name}_task"
    decorator.__doc__ = f"``@task.{name}``: see :mod:`lexis_prefect.airflow.standard.virtualenv`."
    return staticmethod(decorator)


class TaskDecoratorCollection:
    """``task``: ``@task``, ``@task.python``, ``.branch``, ``.short_circuit``, ``.sensor``, ``.bash``,
    ``.virtualenv``, ``.branch_virtualenv``, ``.external_python``, ``.branch_external_python``."""

    python = staticmethod(python_task)
    branch = staticmethod(branch_task)
    short_circuit = staticmethod(short_circuit_task)
    sensor = staticmethod(sensor_task)
    bash = staticmethod(bash_task)
    virtualenv = _standard_decorator("virtualenv")
    branch_virtualenv = _standard_decorator("branch_virtualenv")
    external_python = _standard_decorator("external_python")
    branch_external_python = _standard_decorator("branch_external_python")

    __call__: Any = python

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        raise AttributeError(
            f"task decorator {name!r} not found: @task.{name} is not supported by lexis-prefect "
            "(supported: @task, @task.python, @task.branch, @task.short_circuit, @task.sensor, @task.bash, "
            "@task.virtualenv, @task.branch_virtualenv, @task.external_python, @task.branch_external_python)"
        )


task = TaskDecoratorCollection()


# -- @task_group -----------------------------------------------------------------------------------
class _TaskGroupFactory:
    """A decorated function whose call builds a TaskGroup (``airflow/decorators/task_group.py``)."""

    def __init__(self, function: Callable, tg_kwargs: dict[str, Any] | None = None) -> None:
        if not callable(function):
            raise TypeError(f"'function' must be callable (got {function!r} that is a {type(function)}).")
        self.function = function
        self.tg_kwargs = dict(tg_kwargs or {})
        inspect.signature(TaskGroup).bind_partial(**self.tg_kwargs)
        self.tg_kwargs.setdefault("group_id", function.__name__)
        self.partial_kwargs: dict[str, Any] = {}  # fixed by .partial() for a mapped group

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Build the group; return what the function returned (to chain on it), else the group."""
        with TaskGroup(add_suffix_on_collision=True, **self.tg_kwargs) as group:
            if self.function.__doc__ and not group.tooltip:
                group.tooltip = self.function.__doc__
            retval = self.function(*args, **kwargs)
        if retval is not None:
            return retval
        return group

    def override(self, **kwargs: Any) -> _TaskGroupFactory:
        made = _TaskGroupFactory(self.function, {**self.tg_kwargs, **kwargs})
        made.partial_kwargs = dict(self.partial_kwargs)
        return made

    def partial(self, **kwargs: Any) -> _TaskGroupFactory:
        from lexis_prefect.airflow.mapping.task_group import group_partial

        return group_partial(self, kwargs)

    def expand(self, **kwargs: Any) -> Any:
        """A mapped task group: its tasks get one task instance per value of ``kwargs``."""
        from lexis_prefect.airflow.mapping.task_group import group_expand

        return group_expand(self, kwargs)

    def expand_kwargs(self, kwargs: Any) -> Any:
        from lexis_prefect.airflow.mapping.task_group import group_expand_kwargs

        return group_expand_kwargs(self, kwargs)


def task_group(python_callable: Callable | None = None, **tg_kwargs: Any) -> Any:
    """``@task_group`` / ``@task_group(group_id=..., ...)``: the function's tasks form a TaskGroup."""
    if callable(python_callable) and not tg_kwargs:
        return _TaskGroupFactory(python_callable, tg_kwargs)
    return functools.partial(_TaskGroupFactory, tg_kwargs=tg_kwargs)


# -- @dag ----------------------------------------------------------------------------------------------
class DagParam:
    """A reference to a DAG param, resolved when a task runs (``airflow.models.param.DagParam``).

    Resolution order, as Airflow's: the run's ``conf[name]``, else the default given here, else
    ``params[name]``.
    """

    #: templating resolves objects carrying this flag (as Airflow resolves its ResolveMixin)
    _airflow_resolvable = True

    def __init__(self, current_dag: DAG, name: str, default: Any = NOTSET) -> None:
        if default is not NOTSET:
            current_dag.params[name] = default
        self._name = name
        self._default = default

    def iter_references(self) -> Any:
        return ()

    def resolve(self, context: Any, *, include_xcom: bool = True) -> Any:
        with contextlib.suppress(KeyError):
            return context["dag_run"].conf[self._name]
        if self._default is not NOTSET:
            return self._default
        with contextlib.suppress(KeyError):
            return context["params"][self._name]
        raise AirflowException(f"No value could be resolved for parameter {self._name}")

    def __repr__(self) -> str:
        return f"DagParam({self._name!r})"


def dag(dag_id: str = "", **dag_kwargs: Any) -> Callable[[Callable], Callable[..., DAG]]:
    """``@dag(...)``: calling the decorated function builds and returns the DAG.

    The function keeps the last DAG it built as its attribute ``dag``: a Prefect entrypoint
    ``file.py:<function>.dag`` reaches a DAG that the file builds by calling the function without
    binding it, where ``file.py:<dag_id>`` names the function itself (the same name).

    The other arguments are ``DAG``'s. The function's arguments (bound with their defaults, or
    with the values of the call) become DAG params named like them, and the function receives
    :class:`DagParam` objects for them, which tasks resolve at run time.
    """
    from lexis_prefect.airflow.dag import DAG

    return dag_decorator(DAG, dag_id, dag_kwargs)


def dag_decorator(dag_class: type[DAG], dag_id: str, dag_kwargs: dict[str, Any]) -> Callable[[Callable], Callable[..., DAG]]:
    """``@dag`` building a ``dag_class`` (Airflow 2's DAG, or Airflow 3's: ``majors``)."""
    DAG = dag_class  # noqa: N806 - the class, named as in Airflow's decorator
    try:
        inspect.signature(DAG.__init__).bind_partial(None, **dag_kwargs)
    except TypeError as exc:
        raise TypeError(f"dag() {exc}") from None

    def wrapper(f: Callable) -> Callable[..., DAG]:
        @functools.wraps(f)
        def factory(*args: Any, **kwargs: Any) -> DAG:
            f_sig = inspect.signature(f).bind(*args, **kwargs)
            f_sig.apply_defaults()
            with DAG(dag_id or f.__name__, **dag_kwargs) as dag_obj:
                if f.__doc__ and not dag_obj.doc_md:
                    dag_obj.doc_md = f.__doc__
                f_kwargs = {name: DagParam(dag_obj, name, value) for name, value in f_sig.arguments.items()}
                back = sys._getframe().f_back
                dag_obj.fileloc = back.f_code.co_filename if back else ""
                f(**f_kwargs)
            dag_obj.sync_parameters()
            # The entrypoint of a DAG no name holds when the function has the dag_id's name
            # (``@dag`` without dag_id): ``file.py:<function>.dag`` (docs/airflow-compat.md).
            factory.dag = dag_obj  # type: ignore[attr-defined]
            return dag_obj

        return factory

    return wrapper
