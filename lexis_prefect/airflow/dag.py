"""``DAG``: an Airflow DAG that *is* a Prefect flow.

Building the DAG (``with DAG(...) as dag:`` and the operators inside) happens at import, as in
Airflow, and produces a :class:`prefect.Flow` whose parameters are the DAG's params, each with its
JSON schema, so ``dag`` in an unchanged DAG file is a deployment entrypoint (``dags/x.py:dag``),
the Prefect UI renders a form for it, and the server refuses a bad value when a run is created.
Running the flow runs the graph with Airflow's rules (:mod:`lexis_prefect.airflow.execution.runner`).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import keyword
import os
import re
import sys
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, ContextManager, Union

import jinja2
import pydantic
from prefect import Flow
from prefect.task_runners import ThreadPoolTaskRunner

from lexis_prefect.airflow import _current
from lexis_prefect.airflow.exceptions import (
    AirflowDagCycleException,
    AirflowException,
    DuplicateTaskIdFound,
    RemovedInAirflow3Warning,
    UnsupportedArgument,
)
from lexis_prefect.airflow.params import NOTSET, ParamsDict
from lexis_prefect.airflow.scheduling.schedule import check_schedule_params, resolve_schedule, validate_schedule
from lexis_prefect.airflow.scheduling.tz import dag_timezone
from lexis_prefect.airflow.task_group import TaskGroup
from lexis_prefect.models.schema import inline_refs

TAG_MAX_LEN = 100
#: Airflow's ``[core] max_active_tasks_per_dag``: tasks of one run that execute at the same time.
DEFAULT_MAX_ACTIVE_TASKS = 16


def _caller_file() -> str:
    """The DAG file: the first frame outside this package (Airflow records ``fileloc`` the same way)."""
    here = os.path.dirname(__file__)
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(here):
        frame = frame.f_back  # type: ignore[assignment]
    return os.path.abspath(frame.f_code.co_filename) if frame is not None else os.getcwd()


class DAG(Flow):
    """An Airflow 2.10 DAG, built at import, run as a Prefect flow (one task run per Airflow task).

    Arguments that only matter to Airflow's scheduler or web server (``catchup``,
    ``access_control``, ``max_active_runs``...) are accepted and kept; ``schedule`` becomes
    Airflow's ``timetable`` (:mod:`lexis_prefect.airflow.scheduling`), which gives a run its data
    interval and the deployment its schedule or dataset trigger. ``dagrun_timeout`` becomes
    the flow's timeout; ``on_success_callback``/``on_failure_callback`` run at the end of a run.
    """

    #: The Airflow major whose semantics the DAG runs with (``lexis_prefect.airflow.majors``).
    airflow_major = 2

    def __init__(
        self,
        dag_id: str,
        description: str | None = None,
        schedule: Any = NOTSET,
        schedule_interval: Any = NOTSET,
        timetable: Any = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        full_filepath: str | None = None,
        template_searchpath: str | Iterable[str] | None = None,
        template_undefined: type[jinja2.Undefined] = jinja2.StrictUndefined,
        user_defined_macros: dict | None = None,
        user_defined_filters: dict | None = None,
        default_args: dict | None = None,
        concurrency: int | None = None,
        max_active_tasks: int = DEFAULT_MAX_ACTIVE_TASKS,
        max_active_runs: int = 16,
        max_consecutive_failed_dag_runs: int = 0,
        dagrun_timeout: timedelta | None = None,
        sla_miss_callback: Any = None,
        default_view: str = "grid",
        orientation: str = "LR",
        catchup: bool = True,
        on_success_callback: Callable | list[Callable] | None = None,
        on_failure_callback: Callable | list[Callable] | None = None,
        doc_md: str | None = None,
        params: Mapping[str, Any] | None = None,
        access_control: dict[str, Collection[str]] | dict[str, dict[str, Collection[str]]] | None = None,
        is_paused_upon_creation: bool | None = None,
        jinja_environment_kwargs: dict | None = None,
        render_template_as_native_obj: bool = False,
        tags: list[str] | None = None,
        owner_links: dict[str, str] | None = None,
        auto_register: bool = True,
        fail_stop: bool = False,
        dag_display_name: str | None = None,
    ) -> None:
        _current.validate_key(dag_id)
        if tags and any(len(tag) > TAG_MAX_LEN for tag in tags):
            raise AirflowException(f"tag cannot be longer than {TAG_MAX_LEN} characters")
        if default_args is not None and not isinstance(default_args, dict):
            raise TypeError("default_args must be a dict")
        self.dag_id = dag_id
        self.fileloc = full_filepath or _caller_file()
        self.default_args = copy.deepcopy(default_args or {})
        params = dict((params or {}).items())  # a ParamsDict's items are its Params
        params.update(self.default_args.pop("params", None) or {})
        self.params = ParamsDict(params)
        self.start_date, self.end_date = start_date, end_date
        self.timezone = dag_timezone(start_date, self.default_args)
        settled = resolve_schedule(
            schedule=schedule,
            schedule_interval=schedule_interval,
            timetable=timetable,
            not_set=NOTSET,
            timezone=self.timezone,
            has_start_date=bool(start_date or "start_date" in self.default_args),
            max_active_runs=max_active_runs,
        )
        #: Airflow's timetable, and what ``schedule`` was (``schedule_interval``, kept for compatibility)
        self.timetable, self.schedule_interval = settled.timetable, settled.schedule_interval
        check_schedule_params(self)
        self.template_searchpath = [template_searchpath] if isinstance(template_searchpath, str) else list(template_searchpath or [])
        self.template_undefined = template_undefined
        self.user_defined_macros = user_defined_macros
        self.user_defined_filters = user_defined_filters
        self.jinja_environment_kwargs = jinja_environment_kwargs
        self.render_template_as_native_obj = render_template_as_native_obj
        if concurrency:
            warnings.warn("The 'concurrency' parameter is deprecated. Please use 'max_active_tasks'.", RemovedInAirflow3Warning, stacklevel=2)
            max_active_tasks = concurrency
        self.max_active_tasks = max_active_tasks
        self.max_active_runs = max_active_runs
        self.max_consecutive_failed_dag_runs = max_consecutive_failed_dag_runs
        self.dagrun_timeout = dagrun_timeout
        self.catchup, self.access_control, self.tags = catchup, access_control, list(tags or [])
        self.default_view, self.orientation, self.owner_links = default_view, orientation, owner_links or {}
        self.is_paused_upon_creation, self.auto_register = is_paused_upon_creation, auto_register
        self.on_success_callback, self.on_failure_callback = on_success_callback, on_failure_callback
        self.doc_md, self.dag_display_name = doc_md, dag_display_name or dag_id
        if sla_miss_callback is not None:
            warnings.warn(f"DAG {dag_id}: sla_miss_callback is not honoured by lexis-prefect", UserWarning, stacklevel=2)
        self.fail_stop = fail_stop
        self.task_dict: dict[str, Any] = {}
        #: Context managers ``setup(dag, conf)`` that ``test()`` enters around the run (they may
        #: add to ``conf``): the LEXIS operators run on the sandbox when LEXIS is not configured.
        self.test_setups: list[Callable[[DAG, dict[str, Any]], ContextManager[Any]]] = []
        self.task_group = TaskGroup(None, dag=self)
        super().__init__(
            fn=self._flow_function(),
            name=dag_id,
            description=description or doc_md,
            flow_run_name=lambda: _manual_run_id(self),
            task_runner=ThreadPoolTaskRunner(max_workers=max_active_tasks),
            timeout_seconds=dagrun_timeout.total_seconds() if dagrun_timeout else None,
            log_prints=True,
            validate_parameters=True,
        )
        self.description = description

    # -- the flow ---------------------------------------------------------------------------
    def _flow_function(self) -> Callable[..., Any]:
        dag = self

        def run_dag(**params: Any) -> Any:
            from lexis_prefect.airflow.execution.runner import run_dag_flow

            return run_dag_flow(dag, params)

        run_dag.__signature__ = self._signature()  # type: ignore[attr-defined]
        run_dag.__name__ = run_dag.__qualname__ = self.dag_id.replace(".", "_").replace("-", "_")
        run_dag.__doc__ = self.doc_md or None
        return run_dag

    def sync_parameters(self) -> None:
        """Make the flow's parameters follow ``dag.params`` again after params were added late
        (``@dag`` adds them after construction; a DAG file may set ``dag.params[k]``)."""
        from prefect.utilities.callables import parameter_schema

        signature = self._signature()
        self.fn.__signature__ = signature  # type: ignore[attr-defined]
        self.__signature__ = signature
        self.parameters = parameter_schema(self.fn)

    def _signature(self) -> inspect.Signature:
        """One keyword parameter per DAG param, annotated with the param's JSON schema."""
        parameters = []
        for name, param in self.params.items():
            if not name.isidentifier() or keyword.iskeyword(name):
                raise UnsupportedArgument(
                    f"DAG {self.dag_id}: param {name!r} is not a Python identifier; a Prefect flow parameter must be one"
                )
            try:
                schema = inline_refs(param.schema)
            except ValueError as exc:
                raise UnsupportedArgument(f"DAG {self.dag_id}: param {name!r}: {exc}") from None
            if param.description and "description" not in schema:
                schema["description"] = param.description
            annotation = Annotated[Any, pydantic.WithJsonSchema(schema)]
            if is_secret_param(name, schema):
                annotation = _secret_annotation(name, schema)
            default = inspect.Parameter.empty if param.value is NOTSET else param.value
            parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
        return inspect.Signature(parameters)

    # -- graph --------------------------------------------------------------------------------
    @property
    def folder(self) -> str:
        return os.path.dirname(self.fileloc)

    @property
    def tasks(self) -> list[Any]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    @property
    def task_count(self) -> int:
        return len(self.task_dict)

    @property
    def roots(self) -> list[Any]:
        return [t for t in self.tasks if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[Any]:
        return [t for t in self.tasks if not t.downstream_task_ids]

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def has_task_group(self, group_id: str) -> bool:
        return group_id in self.task_group_dict

    @property
    def task_group_dict(self) -> dict[str, TaskGroup]:
        found: dict[str, TaskGroup] = {}
        todo = [self.task_group]
        while todo:
            group = todo.pop()
            for child in group.children.values():
                if isinstance(child, TaskGroup):
                    found[child.group_id] = child  # type: ignore[index]
                    todo.append(child)
        return found

    def get_task(self, task_id: str) -> Any:
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise AirflowException(f"Task {task_id} not found") from None

    def add_task(self, task: Any) -> None:
        if task.task_id in self.task_dict and self.task_dict[task.task_id] is not task:
            raise DuplicateTaskIdFound(f"Task id '{task.task_id}' has already been added to the DAG")
        self.task_dict[task.task_id] = task
        if task._dag is None:
            task._dag = self
        if task.task_group is None:
            self.task_group.add(task)

    def add_tasks(self, tasks: Iterable[Any]) -> None:
        for task in tasks:
            self.add_task(task)

    def topological_sort(self) -> list[Any]:
        """Tasks in an order where every task follows its upstreams; a cycle raises, naming a task on it."""
        order: list[Any] = []
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for root in sorted(self.task_dict):
            stack = [(root, iter(sorted(self.task_dict[root].downstream_task_ids)))]
            if state.get(root):
                continue
            state[root] = 1
            while stack:
                task_id, children = stack[-1]
                child = next(children, None)
                if child is None:
                    state[task_id] = 2
                    order.append(self.task_dict[task_id])
                    stack.pop()
                elif state.get(child) == 1:
                    raise AirflowDagCycleException(f"Cycle detected in DAG: {self.dag_id}. Faulty task: {child}")
                elif not state.get(child):
                    state[child] = 1
                    stack.append((child, iter(sorted(self.task_dict[child].downstream_task_ids))))
        return order[::-1]

    check_cycle = topological_sort

    # -- params -----------------------------------------------------------------------------
    def resolve_params(self, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Airflow's trigger-time rule: the params, then ``conf`` replacing whole values, validated."""
        params = copy.deepcopy(self.params)
        params.update(dict(conf or {}))
        return params.validate()

    # -- with DAG(...) ----------------------------------------------------------------------
    def __enter__(self) -> DAG:
        _current.push_dag(self)
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        _current.pop_dag()
        if exc_type is None:
            self.check_cycle()
            self.sync_parameters()

    def validate(self) -> None:
        """Airflow's checks of a loaded DAG (its DagBag and ``dag.test`` make them, in this order):
        the schedule and params, then setup/teardown."""
        from lexis_prefect.airflow.setup_teardown import validate_setup_teardown

        validate_schedule(self)
        validate_setup_teardown(self)

    def test(self, execution_date: datetime | None = None, run_conf: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """Run the DAG once, here, on Prefect; returns a :class:`~lexis_prefect.airflow.execution.runner.DagRunResult`."""
        if kwargs:
            warnings.warn(f"dag.test(): {sorted(kwargs)} not supported by lexis-prefect, ignored", UserWarning, stacklevel=2)
        return self._test(run_conf, execution_date)

    def _test(self, run_conf: Mapping[str, Any] | None, logical_date: datetime | None) -> Any:
        """``test()`` once its arguments are read (they differ between Airflow majors)."""
        from lexis_prefect.airflow.execution.runner import test_dag
        from lexis_prefect.local_server import reuse_running_server

        self.sync_parameters()
        self.check_cycle()
        self.validate()
        conf = dict(run_conf or {})
        self.resolve_params(conf)  # a bad conf is refused before anything starts (no run, no setup)
        with contextlib.ExitStack() as stack:
            stack.enter_context(reuse_running_server())  # ~3 s a run instead of ~12 s (bench/server_reuse.py)
            for setup in self.test_setups:
                stack.enter_context(setup(self, conf))
            return test_dag(self, conf, logical_date)

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


#: Param names taken for secrets: their flow parameter is a ``SecretStr``, so Prefect stores the
#: run's value masked (``access_token``, ``db_password``, ``client_secret``, ``api_key``...).
SECRET_PARAM_NAME = re.compile(r"(^|_)(token|password|passwd|secret|api_?key)$", re.IGNORECASE)


def is_secret_param(name: str, schema: Mapping[str, Any]) -> bool:
    """A string param whose name says it is a secret (see ``SECRET_PARAM_NAME``)."""
    return bool(SECRET_PARAM_NAME.search(name)) and schema.get("type", "string") == "string"


def _secret_annotation(name: str, schema: Mapping[str, Any]) -> Any:
    """A secret param's flow parameter: the text from Python (stored masked), a Secret block
    reference through a deployment (the server refuses the text there: it would be stored in clear)."""
    from prefect.blocks.system import Secret

    from lexis_prefect.blocks import secret_reference_schema

    description = schema.get("description") or f"A Secret block holding the DAG param {name!r}"
    reference = secret_reference_schema(schema.get("title", name), description)
    return Annotated[Union[pydantic.SecretStr, Secret], pydantic.WithJsonSchema(reference)]


def _manual_run_id(dag: DAG | None = None) -> str:
    """Airflow's run id, used as the Prefect flow run name: ``manual__<ISO time>``, or
    ``scheduled__<logical date>`` for a run of the deployment's schedule (see
    :mod:`lexis_prefect.airflow.scheduling.runs`).

    A run resumed after it suspended (``lexis_prefect.hpc.suspend``) keeps the one it had, and so
    its ``run_id`` and logical date; ``dag.test(execution_date=...)`` names it by that date."""
    from datetime import timezone

    import pendulum
    from prefect.runtime import flow_run

    from lexis_prefect.airflow.execution.runner import _test_run
    from lexis_prefect.airflow.scheduling.runs import RUN_TYPES, current_flow_run, manual_run, run_dates_of_flow_run

    test_run = _test_run.get()
    if test_run is not None and test_run.logical_date is not None:  # dag.test(execution_date=...)
        if dag is not None:
            return manual_run(dag, test_run.logical_date).run_id
        return f"manual__{pendulum.instance(test_run.logical_date).in_tz('UTC').isoformat()}"
    current = flow_run.name
    if isinstance(current, str) and current.startswith(tuple(f"{kind}__" for kind in RUN_TYPES)):
        return current
    dates = run_dates_of_flow_run(dag, current_flow_run()) if dag is not None else None
    return dates.run_id if dates else f"manual__{datetime.now(timezone.utc).isoformat()}"
