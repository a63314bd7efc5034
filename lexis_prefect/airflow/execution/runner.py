"""Running a DAG as one Prefect flow run with Airflow's semantics.

The flow does the scheduling itself (airflow-on-prefect.md §2.5): each Airflow task becomes a
Prefect task run named by its task id once its trigger rule can be decided from the states of
its upstreams as ``dag.test()`` would decide it (:mod:`lexis_prefect.airflow.execution.turns`: the same
states whatever the tasks' durations). A task that runs is submitted to the flow's thread pool,
so independent tasks run concurrently (up to the DAG's ``max_active_tasks``); a task that must not run
(``skipped``, ``upstream_failed``) gets a short marker task run in that state, so the UI shows
every Airflow task. Prefect's own upstream handling is never used, so no task is left
``NotReady``. The flow run ends by Airflow's leaf rule: failed if any leaf task is ``failed`` or
``upstream_failed``, else completed, whatever happened to tasks in the middle (a teardown at the
end counts only when ``on_failure_fail_dagrun``:
:func:`~lexis_prefect.airflow.setup_teardown.effective_leaves`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_logger
from prefect.states import Completed, Failed, State
from pydantic import SecretStr

from lexis_prefect.blocks import secret_text
from lexis_prefect.airflow import majors
from lexis_prefect.airflow.exceptions import AirflowFailException, AirflowSensorTimeout
from lexis_prefect.airflow.scheduling.runs import current_flow_run, manual_run, run_dates_of_flow_run
from lexis_prefect.airflow.setup_teardown import decide_task, effective_leaves, indirect_setups
from lexis_prefect.airflow.execution.taskinstance import DagRun, TaskInstance
from lexis_prefect.airflow.trigger_rule import Decision
from lexis_prefect.airflow.execution.turns import TurnClock

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator
    from lexis_prefect.airflow.dag import DAG

FAILED_STATES = ("failed", "upstream_failed")
#: The conf and date given to ``dag.test``/the CLI (a deployment run has only its parameters).
_test_run: contextvars.ContextVar[_TestRun | None] = contextvars.ContextVar("airflow_test_run", default=None)
#: Results of runs made by ``dag.test`` in this process, by flow run id, for it to pick up.
_results: dict[str, DagRunResult] = {}


@dataclass
class DagRunResult:
    """How a DAG run ended: ``state`` by the leaf rule and each task's Airflow state."""

    dag_id: str
    run_id: str
    state: str
    #: A mapped task's value is the list of its map indexes' states (a string when it never expanded).
    tasks: dict[str, str | list[str]] = field(default_factory=dict)
    flow_run_id: str | None = None
    message: str = ""
    #: The run's XComs as stored (JSON text), by (task id, key): what ``ti.xcom_pull`` served.
    xcoms: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    #: None for an Airflow 3 run without one (``majors``)
    logical_date: datetime | None = None

    def xcom_pull(self, task_id: str, key: str = "return_value") -> Any:
        """An XCom of the finished run (None when the task pushed none)."""
        from lexis_prefect.airflow.execution.xcom import deserialize_value

        stored = self.xcoms.get((task_id, key))
        return None if stored is None else deserialize_value(stored)

    def to_json(self) -> dict[str, Any]:
        return {"dag_id": self.dag_id, "state": self.state, "tasks": dict(self.tasks)}

    def get_task_instance(self, task_id: str) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(task_id=task_id, state=self.tasks.get(task_id))


@task(cache_policy=NO_CACHE)
def run_task_instance(ti: TaskInstance) -> State | None:
    """The Prefect task run of one Airflow task (retried by Prefect as Airflow would)."""
    if ti.run() == "skipped":
        return Completed(name="Skipped", message=f"{ti.task_id} skipped")
    return None


@task(cache_policy=NO_CACHE, retries=0)
def mark_task_instance(task_id: str, state: str) -> State:
    """A task run that shows an Airflow task which did not run, in its Airflow state."""
    if state == "skipped":
        return Completed(name="Skipped", message=f"{task_id} skipped by its trigger rule or a branch")
    return Failed(name="UpstreamFailed", message=f"{task_id}: an upstream task failed")


def _no_retry(task: Any, task_run: Any, state: State) -> bool:
    """Prefect's retry condition: Airflow retries any error but a fail-now or a sensor timeout."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, (AirflowFailException, AirflowSensorTimeout))


def prefect_task(op: BaseOperator, logical_date: str) -> Any:
    """The Prefect task that runs ``op``: named by its task id, with its retries (made once per operator)."""
    cached = op.__dict__.get("_prefect_task")
    if cached is not None and not op.retry_exponential_backoff:
        return cached
    delays = op.retry_delays(logical_date)
    made = run_task_instance.with_options(
        name=op.task_id,
        task_run_name=op.task_id,
        retries=min(op.retries, 50),
        retry_delay_seconds=delays[:50] if op.retry_exponential_backoff else op.retry_delay.total_seconds(),
        retry_condition_fn=_no_retry,
    )
    op.__dict__["_prefect_task"] = made
    return made


class _Scheduler:
    """Decides, submits and collects the task instances of one run."""

    def __init__(self, dag: DAG, dag_run: DagRun) -> None:
        self.dag = dag
        self.order = dag.topological_sort()
        self.dag_run = dag_run
        self.tis = {t.task_id: TaskInstance(t, dag_run) for t in self.order}
        self.finished: list[TaskInstance] = []  # in the order they ended
        self.states: dict[str, str] = {}
        self.submitted: set[str] = set()
        self.stopped: set[str] = set()  # running when a fail_stop DAG stopped: recorded failed
        self.running: dict[cf.Future, tuple[str, Any]] = {}
        self.indirect = {t.task_id: indirect_setups(t) for t in self.order}
        relevant = {t.task_id: sorted(t.upstream_task_ids) + self.indirect[t.task_id] for t in self.order}
        self.clock = TurnClock([t.task_id for t in self.order], relevant)

    def run(self) -> dict[str, Any]:
        """Run the graph; if the run itself is stopped (cancelled, terminated), kill what runs."""
        try:
            return self._run()
        except BaseException:
            for task_id, _ in list(self.running.values()):
                self.tis[task_id].kill()
            raise

    def _run(self) -> dict[str, Any]:
        self._schedule()
        while len(self.states) < len(self.order):
            if not self.running:  # cannot happen with a valid decide(); fail loudly if it does
                stuck = [t.task_id for t in self.order if t.task_id not in self.states]
                raise RuntimeError(f"DAG {self.dag.dag_id}: no task can run, stuck: {stuck}")
            done, _ = cf.wait(list(self.running), return_when=cf.FIRST_COMPLETED)
            for wrapped in done:
                self._collect(wrapped)
            self._schedule()
        return {t.task_id: self.states[t.task_id] for t in self.order}

    def _schedule(self) -> None:
        """Submit or mark every task that ``dag.test`` would have decided by now (see ``turns``)."""
        for task_id, verdict in self.clock.decide_ready(self._evaluate):
            if verdict == "run":
                self._submit(self.dag.get_task(task_id))
            else:
                self._mark(task_id, verdict)

    def _evaluate(self, task_id: str, finished: Mapping[str, str]) -> Decision | None:
        return decide_task(self.dag.get_task(task_id), finished, self.indirect[task_id])

    def _submit(self, op: BaseOperator) -> None:
        self.submitted.add(op.task_id)
        future = prefect_task(op, str(self.dag_run.logical_date)).submit(self.tis[op.task_id])
        self.running[future.wrapped_future] = (op.task_id, future)

    def _collect(self, wrapped: cf.Future) -> None:
        """Record a finished task's Airflow state, and what its run marked (a branch's skips)."""
        task_id, future = self.running.pop(wrapped)
        future.wait()  # the state is stale until then (airflow-on-prefect.md §0.7)
        ti = self.tis[task_id]
        ok = future.state.is_completed() and ti.state in ("success", "skipped") and task_id not in self.stopped
        ti.state = ti.state if ok else "failed"
        self.states[task_id] = ti.state
        self.finished.append(ti)
        self.clock.end(task_id, ti.state, max(ti.try_number - 1, 0))
        if ti.state == "failed" and self.dag.fail_stop:
            self._stop_remaining(task_id)
        elif ti.state == "success":
            skipped = sorted(ti.skip_ids - self.submitted - set(self.states))
            for skipped_id in skipped:
                self._mark(skipped_id, "skipped")
            self.clock.end_with(skipped, "skipped", cause=task_id)

    def _stop_remaining(self, cause: str) -> None:
        """``fail_stop``: a failure skips every task not started yet but teardowns; running ones end failed.

        Airflow kills the running ones; a thread cannot be killed, so they finish their work
        and are then recorded as failed (see docs/airflow-compat.md).
        """
        self.stopped.update(t for t, _ in self.running.values() if not self.dag.get_task(t).is_teardown)
        skipped = [
            op.task_id
            for op in self.order
            if op.task_id not in self.states and op.task_id not in self.submitted and not op.is_teardown
        ]
        for task_id in skipped:
            self._mark(task_id, "skipped")
        self.clock.end_with(skipped, "skipped", cause=cause)

    def _mark(self, task_id: str, state: str) -> None:
        self.states[task_id] = state
        self.tis[task_id].state = state
        mark_task_instance.with_options(name=task_id, task_run_name=task_id)(task_id, state, return_state=True)


def run_dag_flow(dag: DAG, given: Mapping[str, Any]) -> State:
    """The body of the DAG's flow: validate the params, run the graph, apply the leaf rule."""
    from prefect.runtime import flow_run

    given = {k: secret_text(v, k) for k, v in given.items()}
    test_run = _test_run.get()
    conf = dict(test_run.conf) if test_run else _explicit(dag, given)
    dag.resolve_params({**given, **conf})  # a bad value fails the run before any task
    name = flow_run.get_name()
    if majors.is_airflow3(dag):
        run_id, logical_date = majors.run_identity(name, test_run.logical_date if test_run else None)
        dag_run = DagRun(dag, run_id, conf, logical_date)
    else:
        if test_run and test_run.logical_date:  # dag.test(execution_date=...)
            dates = manual_run(dag, test_run.logical_date)
        else:  # a scheduled or dataset-triggered deployment run, else a manual one
            run_after = _date_of(name) or flow_run.get_scheduled_start_time()
            dates = run_dates_of_flow_run(dag, current_flow_run()) or manual_run(dag, run_after, external_trigger=not test_run)
        dag_run = DagRun(dag, dates.run_id, conf, dates.logical_date)
        dag_run.set_dates(dates)
    scheduler = _scheduler_for(dag)(dag, dag_run)
    states = scheduler.run()
    failed_leaves = [t.task_id for t in effective_leaves(dag) if _any_failed(states[t.task_id])]
    dag_run.state = "failed" if failed_leaves else "success"
    _run_dag_callback(dag, dag_run, scheduler.finished)
    message = (
        f"DAG run failed: leaf task(s) {', '.join(failed_leaves)} failed (Airflow's leaf rule)"
        if failed_leaves
        else "DAG run succeeded: every leaf task succeeded or was skipped (Airflow's leaf rule)"
    )
    result = DagRunResult(
        dag.dag_id, dag_run.run_id, dag_run.state, states, flow_run.get_id(), message, dag_run.xcoms.stored(),
        dag_run.logical_date,
    )
    if test_run and result.flow_run_id:  # only dag.test waits for it: other runs must not pile up here
        _results[result.flow_run_id] = result
    _publish(result)
    return Failed(message=message) if failed_leaves else Completed(message=message)


def _scheduler_for(dag: DAG) -> type[_Scheduler]:
    """A DAG with mapped tasks is scheduled per map index (:mod:`lexis_prefect.airflow.mapping`)."""
    from lexis_prefect.airflow.mapping.run import MappingScheduler, dag_has_mapping

    return MappingScheduler if dag_has_mapping(dag) else _Scheduler


def _any_failed(state: str | list[str]) -> bool:
    """A task's state, or a mapped task's states (one per map index), include a failure."""
    return any(s in FAILED_STATES for s in (state if isinstance(state, list) else [state]))


def _date_of(run_name: str | None) -> datetime | None:
    """The instant in a ``manual__<ISO time>`` run name, so ``run_id`` and ``ts`` agree as in Airflow."""
    if run_name and run_name.startswith("manual__"):
        try:
            return datetime.fromisoformat(run_name.removeprefix("manual__"))
        except ValueError:
            return None
    return None


def _explicit(dag: DAG, given: Mapping[str, Any]) -> dict[str, Any]:
    """``dag_run.conf`` of a run started with parameters: those that differ from the defaults."""
    return {k: v for k, v in given.items() if k not in dag.params or dag.params.get_param(k).value != v}


def _run_dag_callback(dag: DAG, dag_run: DagRun, finished: list[TaskInstance]) -> None:
    """The DAG's success/failure callbacks, with the context of the run's last task, as Airflow."""
    callbacks = dag.on_failure_callback if dag_run.state == "failed" else dag.on_success_callback
    if not callbacks:
        return
    last = finished[-1] if finished else None
    context = last.get_template_context() if last else {"dag": dag, "dag_run": dag_run, "run_id": dag_run.run_id}
    context["reason"] = "task_failure" if dag_run.state == "failed" else "success"
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        try:
            callback(context)
        except Exception:
            get_logger("lexis_prefect.airflow").exception("DAG %s: %s callback failed", dag.dag_id, context["reason"])


def _publish(result: DagRunResult) -> None:
    """Show the run's task states as an artifact in the UI."""
    from prefect.artifacts import create_table_artifact

    key = re.sub(r"[^a-z0-9-]+", "-", f"airflow-{result.dag_id}".lower()).strip("-")
    create_table_artifact(
        table=[
            {"task_id": t if isinstance(s, str) else f"{t}[{i}]", "state": state}
            for t, s in result.tasks.items()
            for i, state in enumerate([s] if isinstance(s, str) else s)
        ],
        key=key,
        description=f"Airflow task states of {result.run_id}: DAG run {result.state}",
    )


def _masked(dag: DAG, name: str, value: Any) -> Any:
    """A secret param's value as a SecretStr: Prefect stores the flow run's parameters as passed."""
    from lexis_prefect.airflow.dag import is_secret_param

    if isinstance(value, str) and is_secret_param(name, dag.params.get_param(name).schema):
        return SecretStr(value)
    return value


@dataclass
class _TestRun:
    conf: dict[str, Any]
    logical_date: datetime | None


def test_run_logical_date() -> datetime | None:
    """The logical date ``dag.test`` gave the run being started here, if any."""
    test_run = _test_run.get()
    return test_run.logical_date if test_run else None


def test_dag(dag: DAG, run_conf: Mapping[str, Any] | None, execution_date: datetime | None = None) -> DagRunResult:
    """``dag.test()``'s run, once ``DAG.test`` has checked the graph and the conf: run the flow
    here and return its result."""
    conf = dict(run_conf or {})
    declared = {k: _masked(dag, k, v) for k, v in conf.items() if k in dag.params}
    token = _test_run.set(_TestRun(conf, execution_date))
    try:
        state = dag(**declared, return_state=True)
    finally:
        _test_run.reset(token)
    flow_run_id = str(state.state_details.flow_run_id)
    result = _results.pop(flow_run_id, None)
    if result is None:  # the flow failed before its graph ran
        result = DagRunResult(dag.dag_id, "", "failed", {}, flow_run_id, state.message or "")
    get_logger("lexis_prefect.airflow").info(
        "dag.test: DAG %s run %s ended %s; task states: %s",
        dag.dag_id,
        result.run_id,
        result.state,
        json.dumps(result.tasks),
    )
    return result
