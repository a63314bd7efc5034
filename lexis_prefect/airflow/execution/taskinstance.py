"""One Airflow task instance of one DAG run: its template context, XCom and execution.

``TaskInstance.run`` is the body of the Prefect task run that stands for the Airflow task, with
Airflow's order of things: render the templates on a copy of the operator, ``pre_execute``,
``execute`` (bounded by ``execution_timeout``), ``post_execute``, push the return value, then the
callbacks. ``AirflowSkipException`` ends it as skipped; ``AirflowFailException`` and
``AirflowSensorTimeout`` fail it without retries; any other error fails the try and Prefect
retries it while ``retries`` are left.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import inspect
import threading
from collections.abc import Callable, Iterable
from datetime import date as _date
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pendulum

from lexis_prefect.airflow.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
)
from lexis_prefect.airflow.scheduling.context import schedule_context
from lexis_prefect.airflow.scheduling.events import emit_dataset_events
from lexis_prefect.airflow.standard.connections import ConnectionAccessor
from lexis_prefect.airflow.standard.variables import VariableAccessor
from lexis_prefect.airflow.execution.templating import FILTERS, macros
from lexis_prefect.airflow.execution.xcom import deserialize_value, serialize_value
from lexis_prefect.airflow.xcom_arg import XCOM_RETURN_KEY

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator
    from lexis_prefect.airflow.dag import DAG

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("airflow_context", default=None)


class TaskTimedOut(AirflowException, AirflowTaskTimeout):
    """``execution_timeout`` passed: an ``AirflowTaskTimeout`` that is also an ``Exception``, so the
    try fails and is retried as in Airflow, and ``except AirflowTaskTimeout`` still catches it."""


def get_current_context() -> dict[str, Any]:
    """The running task's template context (``airflow.operators.python.get_current_context``)."""
    context = _context.get()
    if context is None:
        raise AirflowException(
            "Current context was requested but no context was found! Are you running within an airflow task?"
        )
    return context


class XComStore:
    """The XComs of one DAG run, in memory (the tasks of a run share the flow's process), stored
    serialised as Airflow stores them (see :mod:`lexis_prefect.airflow.execution.xcom`), by task, map index
    (-1 unless the task is mapped) and key; each with its push order (a pull across tasks gets
    the newest)."""

    def __init__(self) -> None:
        self._values: dict[str, dict[int, dict[str, tuple[int, str]]]] = {}
        self._seq = 0
        self._lock = threading.Lock()

    def push(self, task_id: str, key: str, value: Any, map_index: int = -1) -> None:
        stored = serialize_value(value)  # raises for what Airflow could not store, failing the task
        with self._lock:
            self._seq += 1
            values = self._values.setdefault(task_id, {}).setdefault(map_index, {})
            values.pop(key, None)
            values[key] = (self._seq, stored)

    def clear(self, task_id: str, map_index: int = -1) -> None:
        with self._lock:
            self._values.get(task_id, {}).pop(map_index, None)

    def _matching(self, task_id: str | None, key: str | None, map_indexes: Any) -> list[tuple[int, int, str]]:
        """(push order, map index, stored value) of the matching XComs."""
        wanted = None if map_indexes is None else {map_indexes} if isinstance(map_indexes, int) else set(map_indexes)
        with self._lock:
            tasks = list(self._values.values()) if task_id is None else [self._values.get(task_id, {})]
            return [
                (seq, index, stored)
                for indexes in tasks
                for index, values in list(indexes.items())
                if wanted is None or index in wanted
                for k, (seq, stored) in list(values.items())
                if key in (None, k)
            ]

    def pull(self, task_id: str | None, key: str | None, default: Any, map_indexes: Any = None) -> Any:
        """One task's XCom (the newest); of a mapped task, all its indexes' in map index order
        (a lazy sequence, as Airflow returns), unless ``map_indexes`` picks one."""
        found = self._matching(task_id, key, map_indexes)
        if not found:
            return default
        if task_id is not None and not isinstance(map_indexes, int) and any(i >= 0 for _, i, _ in found):
            from lexis_prefect.airflow.mapping.xcom_args import LazyXComSequence

            values = [deserialize_value(stored) for _, _, stored in sorted(found, key=lambda f: f[1])]
            return values if map_indexes is not None else LazyXComSequence(values)
        return deserialize_value(max(found)[2])

    def stored(self) -> dict[tuple[str, str], str]:
        """Every XCom as stored (serialised), by (task id, key); a mapped task's as one JSON array."""
        with self._lock:
            items = [
                (t, i, k, v[1]) for t, indexes in self._values.items() for i, values in indexes.items() for k, v in values.items()
            ]
        result: dict[tuple[str, str], str] = {}
        mapped: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for task_id, index, key, stored in items:
            if index < 0:
                result[(task_id, key)] = stored
            else:
                mapped.setdefault((task_id, key), []).append((index, stored))
        for task_key, values in mapped.items():
            result[task_key] = "[" + ", ".join(stored for _, stored in sorted(values)) + "]"
        return result


class AirflowConfig:
    """``conf`` in the context: Airflow's configuration, reduced to the defaults the shim follows.

    ``conf.get(section, key, fallback=...)`` answers those (``core.dag_run_conf_overrides_params``
    ...), else the fallback, else raises as Airflow does for an unknown option.
    """

    DEFAULTS: dict[tuple[str, str], str] = {
        ("core", "dag_run_conf_overrides_params"): "True",
        ("core", "default_timezone"): "utc",
        ("core", "max_active_tasks_per_dag"): "16",
        ("core", "default_task_retries"): "0",
        ("sensors", "default_timeout"): str(7 * 24 * 60 * 60),
    }

    def get(self, section: str, key: str, fallback: Any = ..., **_: Any) -> Any:
        value = self.DEFAULTS.get((section.lower(), key.lower()))
        if value is not None:
            return value
        if fallback is not ...:
            return fallback
        raise AirflowException(f"section/key [{section}/{key}] not found in config")

    def getboolean(self, section: str, key: str, **kwargs: Any) -> bool:
        value = self.get(section, key, **kwargs)
        return value if isinstance(value, bool) else str(value).lower() in ("true", "t", "1")

    def getint(self, section: str, key: str, **kwargs: Any) -> int:
        return int(self.get(section, key, **kwargs))

    def has_option(self, section: str, key: str) -> bool:
        return (section.lower(), key.lower()) in self.DEFAULTS


class DagRun:
    """What a task sees of its run (``dag_run`` in the context)."""

    run_type = "manual"
    external_trigger = True

    def __init__(self, dag: DAG, run_id: str, conf: dict[str, Any], logical_date: datetime | None) -> None:
        self.dag = dag
        self.dag_id = dag.dag_id
        self.run_id = run_id
        self.conf = conf
        # None: an Airflow 3 manual run without a logical date (lexis_prefect.airflow.majors)
        self.logical_date = self.execution_date = pendulum.instance(logical_date) if logical_date else None
        self.start_date = self.logical_date or pendulum.now("UTC")
        self.data_interval_start = self.data_interval_end = self.logical_date
        self.run_dates: Any = None  # lexis_prefect.airflow.scheduling.runs.RunDates, once known
        self.xcoms = XComStore()
        self.task_instances: dict[str, TaskInstance] = {}
        self.state = "running"

    def set_dates(self, dates: Any) -> None:
        """The run's type, data interval and neighbours as its timetable gives them."""
        self.run_dates = dates
        self.run_type, self.external_trigger = dates.run_type, dates.external_trigger
        self.data_interval_start, self.data_interval_end = dates.data_interval

    @functools.cached_property
    def jinja_env(self) -> Any:
        """One Jinja environment per run (stateless: ``cache_size=0``), not one per task."""
        from lexis_prefect.airflow.execution.templating import template_env

        return template_env(self.dag)

    def get_task_instance(self, task_id: str) -> TaskInstance | None:
        return self.task_instances.get(task_id)

    def get_task_instances(self, state: Iterable[str] | None = None) -> list[TaskInstance]:
        wanted = set(state) if state is not None else None
        return [ti for ti in self.task_instances.values() if wanted is None or ti.state in wanted]


class TaskInstance:
    """An Airflow task in one run: ``ti`` / ``task_instance`` in the context."""

    map_index = -1
    #: For a mapped task's instances: how many there are (``expanded_ti_count`` in the context).
    expanded_ti_count: int | None = None

    def __init__(self, task: BaseOperator, dag_run: DagRun) -> None:
        self.task = task
        self.task_id = task.task_id
        self.dag_id = dag_run.dag_id
        self.run_id = dag_run.run_id
        self.dag_run = dag_run
        self.params: dict[str, Any] = {}
        self.try_number = 0
        self.max_tries = task.retries
        self.state: str | None = None
        self.no_retry = False
        self.skip_ids: set[str] = set()
        self.executing: BaseOperator | None = None  # the rendered copy while a try runs
        self._loop: asyncio.AbstractEventLoop | None = None  # an async execute's loop and work
        self._work: asyncio.Task | None = None
        self.start_date: datetime | None = None
        self.end_date: datetime | None = None
        dag_run.task_instances.setdefault(self.task_id, self)

    @property
    def logical_date(self) -> datetime:
        return self.dag_run.logical_date

    execution_date = logical_date

    # -- XCom -------------------------------------------------------------------------------
    def xcom_push(self, key: str, value: Any, execution_date: datetime | None = None, **_: Any) -> None:
        self.dag_run.xcoms.push(self.task_id, key, value, self.map_index)

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        dag_id: str | None = None,
        key: str | None = XCOM_RETURN_KEY,
        include_prior_dates: bool = False,
        session: Any = None,
        *,
        map_indexes: Any = None,
        default: Any = None,
    ) -> Any:
        """Airflow's pull: one task id (or None) gives one value, a list of ids a list in that order."""
        if dag_id is not None and dag_id != self.dag_id:
            return default  # other DAGs' runs are out of reach (documented)
        store = self.dag_run.xcoms
        if task_ids is None or isinstance(task_ids, str):
            if isinstance(map_indexes, Iterable):
                return [store.pull(task_ids, key, None, i) for i in map_indexes if store.pull(task_ids, key, _MISSING, i) is not _MISSING]
            return store.pull(task_ids, key, default, map_indexes)
        found = (store.pull(t, key, _MISSING, map_indexes) for t in task_ids)
        return [x for v in found if v is not _MISSING for x in (v if _is_lazy(v) else [v])]

    def get_relevant_upstream_map_indexes(self, upstream: BaseOperator) -> int | None:
        """The map index of ``upstream`` this task instance reads, when both are in one mapped
        task group; None (the whole value) otherwise."""
        return None

    def length_of(self, arg: Any) -> int | None:
        """How many map indexes an XComArg gives a mapped task in this run (None: not known)."""
        from lexis_prefect.airflow.mapping.run import xcomarg_length

        return xcomarg_length(self.dag_run, arg)

    # -- context ----------------------------------------------------------------------------
    def get_template_context(self, task: BaseOperator | None = None) -> dict[str, Any]:
        """Airflow 2.10's context, or Airflow 3's for a DAG written for it (``majors``)."""
        from lexis_prefect.airflow import majors

        task = task or self.task
        run = self.dag_run
        context = self._context(task, run.logical_date or run.start_date)
        return majors.template_context(context, run.logical_date) if majors.is_airflow3(run.dag) else context

    def _context(self, task: BaseOperator, date: datetime) -> dict[str, Any]:
        run = self.dag_run
        ds = date.strftime("%Y-%m-%d")
        ds_nodash = ds.replace("-", "")
        ts = date.isoformat()
        day = _date(date.year, date.month, date.day)
        tomorrow, yesterday = ((day + timedelta(days=n)).strftime("%Y-%m-%d") for n in (1, -1))
        context = {
            "dag": task.dag,
            "dag_run": run,
            "data_interval_start": run.data_interval_start,
            "data_interval_end": run.data_interval_end,
            "ds": ds,
            "ds_nodash": ds_nodash,
            "execution_date": date,
            "logical_date": date,
            "expanded_ti_count": self.expanded_ti_count,
            "inlets": [],
            "outlets": [],
            "macros": macros,
            "map_index_template": getattr(task, "map_index_template", None),
            "params": self.params,
            "prev_ds": None,
            "prev_ds_nodash": None,
            "prev_execution_date": None,
            "prev_execution_date_success": None,
            "prev_start_date_success": None,
            "prev_end_date_success": None,
            "prev_data_interval_start_success": None,
            "prev_data_interval_end_success": None,
            "next_ds": None,
            "next_ds_nodash": None,
            "next_execution_date": None,
            "run_id": run.run_id,
            "task": task,
            "task_instance": self,
            "ti": self,
            "task_instance_key_str": f"{self.dag_id}__{self.task_id}__{ds_nodash}",
            "test_mode": False,
            "templates_dict": None,
            "try_number": self.try_number,
            "ts": ts,
            "ts_nodash": FILTERS["ts_nodash"](date),
            "ts_nodash_with_tz": FILTERS["ts_nodash_with_tz"](date),
            # macros.ds_add(ds, +-1), as Airflow computes them, without its strptime: that holds a
            # process-wide lock, which a 1,000-index mapped task's threads queue on
            "tomorrow_ds": tomorrow,
            "tomorrow_ds_nodash": tomorrow.replace("-", ""),
            "yesterday_ds": yesterday,
            "yesterday_ds_nodash": yesterday.replace("-", ""),
            "var": {"json": VariableAccessor(True), "value": VariableAccessor(False)},
            "conf": AirflowConfig(),
            "conn": ConnectionAccessor(),
            "inlet_events": {},
            "outlet_events": {},
            "triggering_dataset_events": {},
        }
        context.update(schedule_context(run, task))
        return context

    # -- execution --------------------------------------------------------------------------
    def resolve_params(self) -> dict[str, Any]:
        """Airflow's ``process_params``: DAG params, the task's own, then the run's conf, validated.

        Done when the task starts, as Airflow does: a conf value only a task-level Param refuses
        fails that task alone. Copies throughout: resolving a Param stores the value in it, and
        the DAG's and the operator's Params must come out of a run as they went in.
        """
        dag, task = self.dag_run.dag, self.task
        if not task.params and not dag.params:
            return {}
        params = copy.deepcopy(dag.params)
        params.update(copy.deepcopy(task.params))
        params.update(self.dag_run.conf)
        return params.validate()

    def run(self) -> str:
        """One try of the task; returns ``"success"`` or ``"skipped"``, raises on failure.

        Airflow's order: params, render, ``pre_execute``, ``on_execute_callback``, ``execute``,
        ``post_execute``, push the result, then the success (or skip, or failure/retry) callbacks.
        """
        self.try_number += 1
        self.skip_ids = set()  # a failed try's branch decision does not carry into the retry
        self.start_date = pendulum.now("UTC")
        self.dag_run.xcoms.clear(self.task_id, self.map_index)
        task = self.executing = self.task.prepare_for_execution()
        self.params = self.resolve_params()
        task.params = self.params  # Airflow: the executing copy sees the run's params
        context = self.get_template_context(task)
        token = _context.set(context)
        try:
            task.render_template_fields(context, self.dag_run.jinja_env)
            task = self.executing = context["task"]  # a mapped task renders into its unmapped operator
            task.pre_execute(context)
            _call_all(task.on_execute_callback, context, task)
            result = _execute(self, task, context)
            task.post_execute(context, result)
            self._push_result(task, result)
            self.record_task_map(task, result)
            self.state = "success"
        except AirflowSkipException as exc:
            self.state = "skipped"
            task.log.info("Task %s skipped: %s", self.task_id, exc)
            _call_all(task.on_skipped_callback, context, task)
        except Exception as exc:
            self.no_retry = isinstance(exc, (AirflowFailException, AirflowSensorTimeout))
            last_try = self.no_retry or self.try_number > self.task.retries
            context["exception"] = exc
            _call_all(task.on_failure_callback if last_try else task.on_retry_callback, context, task)
            raise
        finally:
            self.end_date = pendulum.now("UTC")
            _context.reset(token)
        # Airflow 2.10 runs the success callbacks after a skip too (its _run_raw_task goes on)
        _call_all(task.on_success_callback, context, task)
        if self.state == "success":  # then its outlets' dataset events, as Airflow registers them
            emit_dataset_events(self, context)
        return self.state

    def call_execute(self, task: BaseOperator, context: dict[str, Any]) -> Any:
        """``task.execute(context)``; an ``async def execute`` runs on an event loop of its own
        thread, kept here so that ``kill()`` can cancel it from another thread."""
        if not inspect.iscoroutinefunction(task.execute):
            return task.execute(context)
        loop = asyncio.new_event_loop()
        self._loop, self._work = loop, loop.create_task(task.execute(context))
        try:
            return loop.run_until_complete(self._work)
        finally:
            self._loop = self._work = None
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def kill(self) -> None:
        """Stop the running try from outside (the run is stopping, or ``execution_timeout``):
        cancel an ``async def execute`` (so its own cancellation handling runs: the LEXIS job
        step cancels its HEAppE job), then the operator's ``on_kill``."""
        task, loop, work = self.executing, self._loop, self._work
        if task is None:
            return
        if loop is not None and work is not None and not loop.is_closed():
            task.log.warning("%s: the run is stopping: cancelling its work", self.task_id)
            loop.call_soon_threadsafe(work.cancel)
        try:
            task.on_kill()
        except Exception:
            task.log.exception("on_kill of %s failed", self.task_id)

    def _push_result(self, task: BaseOperator, result: Any) -> None:
        if not task.do_xcom_push or result is None:
            return
        if task.multiple_outputs:
            if not isinstance(result, dict):
                raise TypeError(f"Returned output was type {type(result)} expected dictionary for multiple_outputs")
            for key in result:
                if not isinstance(key, str):
                    raise TypeError(
                        "Returned dictionary keys must be strings when using multiple_outputs, "
                        f"found {key} ({type(key)}) instead"
                    )
            for key, value in result.items():
                self.xcom_push(key, value)
        self.xcom_push(XCOM_RETURN_KEY, result)

    def record_task_map(self, task: BaseOperator, result: Any) -> None:
        """Check and record the length of the return value when a mapped task expands over it."""
        from lexis_prefect.airflow.mapping.run import record_task_map

        record_task_map(self, result if task.do_xcom_push else None)

    def __repr__(self) -> str:
        return f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id} [{self.state}]>"


_MISSING = object()


def _is_lazy(value: Any) -> bool:
    return getattr(type(value), "_airflow_lazy_sequence", False)


def _call_all(callbacks: Callable | list[Callable] | None, context: dict[str, Any], task: BaseOperator) -> None:
    """Run Airflow callbacks; like Airflow, a failing callback is logged and does not change the state."""
    for callback in callbacks if isinstance(callbacks, list) else [callbacks] if callbacks else []:
        try:
            callback(context)
        except Exception:
            task.log.exception("Error when executing %s callback", getattr(callback, "__name__", callback))


def _execute(ti: TaskInstance, task: BaseOperator, context: dict[str, Any]) -> Any:
    """``task.execute(context)``, abandoned with ``ti.kill()`` once ``execution_timeout`` passes.

    A Python thread cannot be stopped from outside: on timeout the try fails at once, an
    ``async def execute`` is cancelled and ``on_kill`` stops what the operator started
    (BashOperator's process); a plain Python callable keeps running in the background until it
    returns (documented in docs/airflow-compat.md).
    """
    if task.execution_timeout is None:
        return ti.call_execute(task, context)
    outcome: dict[str, Any] = {}
    run_context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["result"] = run_context.run(ti.call_execute, task, context)
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"airflow-task-{task.task_id}", daemon=True)
    thread.start()
    thread.join(task.execution_timeout.total_seconds())
    if thread.is_alive():
        ti.kill()
        raise TaskTimedOut(f"Timeout: {task.task_id} ran longer than execution_timeout={task.execution_timeout}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")
