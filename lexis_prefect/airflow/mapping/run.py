"""Mapped tasks at run time: expansion into map indexes, one Prefect task run ``task_id[i]`` each.

Follows Airflow 2.10's scheduler (``DagRun._get_ready_tis``, ``AbstractOperator.expand_mapped_task``,
``TriggerRuleDep``): a mapped task first waits, as one task instance, for its trigger rule; then
it is expanded to as many map indexes as its input has elements (none: it is ``skipped``; an
input whose upstream never recorded a value: ``upstream_failed``). Each index is then decided
on its own (in a mapped task group, index ``i`` of a task follows index ``i`` of its upstreams
in the group) and runs as its own Prefect task run. Downstream tasks count a mapped upstream
once per index, so one failed index makes an ``all_success`` downstream ``upstream_failed``,
and the leaf rule looks at every index. ``max_active_tis_per_dagrun`` bounds the indexes of a
task that run at once.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefect.logging import get_logger

from lexis_prefect.airflow.exceptions import (
    UnmappableXComLengthPushed,
    UnmappableXComTypePushed,
    XComForMappingNotPushed,
)
from lexis_prefect.airflow.mapping.expand_input import NotFullyPopulated
from lexis_prefect.airflow.mapping.operator import MappedOperator
from lexis_prefect.airflow.mapping.task_group import MappedTaskGroup, closest_mapped_group
from lexis_prefect.airflow.execution.runner import _Scheduler, mark_task_instance, prefect_task
from lexis_prefect.airflow.setup_teardown import setup_constraint
from lexis_prefect.airflow.execution.taskinstance import DagRun, TaskInstance
from lexis_prefect.airflow.trigger_rule import Decision, TriggerRule, decide_counts
from lexis_prefect.airflow.xcom_arg import XCOM_RETURN_KEY, XComArg

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator
    from lexis_prefect.airflow.dag import DAG

#: Airflow's ``[core] max_map_length``: the most elements a return value to map over may have.
MAX_MAP_LENGTH = 1024
#: Rules that fire on one upstream: in a mapped group they look at every index of an upstream.
_FAST_TRIGGERED = (TriggerRule.ONE_SUCCESS, TriggerRule.ONE_FAILED, TriggerRule.ONE_DONE)
_log = get_logger("lexis_prefect.airflow")


def needs_expansion(op: BaseOperator) -> bool:
    """Whether ``op`` runs as map indexes: a mapped task, or any task of a mapped task group."""
    return isinstance(op, MappedOperator) or closest_mapped_group(op.task_group) is not None


def dag_has_mapping(dag: DAG) -> bool:
    return any(needs_expansion(t) for t in dag.task_dict.values())


@dataclass
class RunMapping:
    """What a run knows about mapping: recorded lengths and which tasks have finished."""

    task_map: dict[str, int] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)


def _run_mapping(dag_run: DagRun) -> RunMapping:
    mapping = dag_run.__dict__.get("mapping")
    if mapping is None:
        mapping = dag_run.__dict__.setdefault("mapping", RunMapping())
    return mapping


def _mapping_sources(dag: DAG) -> frozenset[str]:
    """Ids of the tasks whose return value a mapped task or mapped group expands over."""
    cached = dag.__dict__.get("_mapping_sources")
    if cached is None:
        nodes: list[Any] = [t for t in dag.task_dict.values() if isinstance(t, MappedOperator)]
        nodes += list({id(g): g for t in dag.task_dict.values() if (g := closest_mapped_group(t.task_group))}.values())
        cached = frozenset(op.task_id for node in nodes for op in node.iter_mapped_dependencies())
        dag.__dict__["_mapping_sources"] = cached
    return cached


def record_task_map(ti: TaskInstance, value: Any) -> None:
    """Airflow's ``_record_task_map_for_downstreams``: a task mapped over fails unless it
    returned a list or dict of at most ``MAX_MAP_LENGTH`` elements; else its length is kept."""
    dag = ti.dag_run.dag
    if ti.map_index >= 0 or ti.task_id not in _mapping_sources(dag) or isinstance(dag.get_task(ti.task_id), MappedOperator):
        return
    if value is None:
        raise XComForMappingNotPushed()
    if not isinstance(value, (collections.abc.Sequence, dict)) or isinstance(value, (str, bytes, bytearray)):
        raise UnmappableXComTypePushed(value)
    if len(value) > MAX_MAP_LENGTH:
        raise UnmappableXComLengthPushed(value, MAX_MAP_LENGTH)
    _run_mapping(ti.dag_run).task_map[ti.task_id] = len(value)


def xcomarg_length(dag_run: DagRun, arg: Any) -> int | None:
    """How many indexes ``arg`` gives a mapped task; None while (or if) it is not known."""
    if type(arg) is not XComArg:
        return arg.map_length(functools.partial(xcomarg_length, dag_run))
    mapping = _run_mapping(dag_run)
    if not isinstance(arg.operator, MappedOperator):
        return mapping.task_map.get(arg.operator.task_id)
    if arg.operator.task_id not in mapping.finished:
        return None  # a mapped upstream's length is the number of its indexes that returned a value
    return len(dag_run.xcoms.pull(arg.operator.task_id, XCOM_RETURN_KEY, ()))


class MappedTaskInstance(TaskInstance):
    """One map index of a mapped task: pushes and pulls XComs under its index."""

    def __init__(self, task: BaseOperator, dag_run: DagRun, map_index: int, count: int) -> None:
        super().__init__(task, dag_run)
        self.map_index = map_index
        self.expanded_ti_count = count
        self.rendered_map_index: str | None = None
        self._ran_with: dict[str, Any] | None = None  # the context of the last try
        self._group = closest_mapped_group(task.task_group)

    def get_relevant_upstream_map_indexes(self, upstream: BaseOperator) -> int | None:
        if self._group is not None and closest_mapped_group(upstream.task_group) is self._group:
            return self.map_index  # same mapped group: this index's value, not the whole list
        return None

    def get_template_context(self, task: BaseOperator | None = None) -> dict[str, Any]:
        self._ran_with = super().get_template_context(task)
        return self._ran_with

    def run(self) -> str:
        """The try, then ``map_index_template`` rendered with the context the task ran with
        (a rendering error fails a task that succeeded, as in Airflow)."""
        try:
            state = super().run()
        except Exception:
            try:
                self._render_map_index()
            except Exception:  # the task's own error is the one to report
                pass
            raise
        self._render_map_index()
        return state

    def _render_map_index(self) -> None:
        context = self._ran_with
        template = context.get("map_index_template") if context else None
        if template is not None:
            self.rendered_map_index = self.dag_run.jinja_env.from_string(template).render(context)


@dataclass
class _Expansion:
    """The map indexes of one expanded task and where each stands."""

    tis: list[MappedTaskInstance]
    states: list[str | None]
    pending: set[int]  # trigger rule not decided yet
    queued: collections.deque[int] = field(default_factory=collections.deque)  # held by the limit
    running: int = 0
    done: int = 0


class MappingScheduler(_Scheduler):
    """The runner's scheduler, for a DAG with mapped tasks.

    For the turn clock (:mod:`lexis_prefect.airflow.execution.turns`) a mapped task is one unit, as its
    unexpanded task instance is in ``dag.test()``: decided once, then expanded, all its indexes
    run in that turn, and it ends when they all have (its state: the list of theirs). Tasks
    next to mapped ones are decided from counts over map indexes (:meth:`_counts`); the
    indexes of a task in a mapped group are decided one by one from the same index upstream.
    """

    def __init__(self, dag: DAG, dag_run: DagRun) -> None:
        super().__init__(dag, dag_run)
        self.expansions: dict[str, _Expansion] = {}
        self.index_of: dict[cf.Future, int] = {}
        self.mapping = _run_mapping(dag_run)
        self.groups = {t.task_id: closest_mapped_group(t.task_group) for t in self.order}
        mapped = {t.task_id for t in self.order if needs_expansion(t)}
        self.count_based = {
            t.task_id
            for t in self.order
            if t.task_id in mapped or mapped.intersection(t.upstream_task_ids) or mapped.intersection(self.indirect[t.task_id])
        }

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        except BaseException:
            for wrapped, (task_id, _) in list(self.running.items()):
                index = self.index_of.get(wrapped)
                (self.tis[task_id] if index is None else self.expansions[task_id].tis[index]).kill()
            raise

    # -- deciding ------------------------------------------------------------------------------
    def _schedule(self) -> None:
        """The turn clock's decisions, then the map indexes that can be decided or started;
        again while that ends a mapped task (its downstream may then be decided)."""
        while True:
            ended = len(self.clock.ended)
            super()._schedule()
            for task_id, expansion in list(self.expansions.items()):
                if task_id not in self.states and (expansion.pending or expansion.queued):
                    self._decide_indexes(self.dag.get_task(task_id), expansion)
            if len(self.clock.ended) == ended:
                return

    def _evaluate(self, task_id: str, finished: Mapping[str, Any]) -> Decision | None:
        if task_id not in self.count_based:
            return super()._evaluate(task_id, finished)
        op = self.dag.get_task(task_id)
        constraint: Decision | None | bool = True
        indirect = self.indirect[task_id]
        if indirect:
            states = [finished[s] for s in indirect if isinstance(finished.get(s), str)]
            constraint = setup_constraint(states, len(indirect))
            if isinstance(constraint, str):
                return constraint
        verdict = self._counts(op, finished, -1)
        return None if verdict == "run" and constraint is False else verdict

    def _counts(self, op: BaseOperator, finished: Mapping[str, Any], map_index: int) -> Decision | None:
        """``op``'s trigger rule over its upstreams' task instances: Airflow's
        ``_evaluate_direct_relatives`` sums over map indexes.

        A mapped upstream counts once per index once it has ended (in ``finished``, the clock's
        snapshot, its state is the list of its indexes'). In a mapped task group, index ``i``
        counts index ``i`` of an upstream of the same group; the unexpanded task counts no
        expanded index of it (Airflow's rule), so it waits only until that upstream has ended.
        """
        counts: collections.Counter[str] = collections.Counter()
        setup_counts: collections.Counter[str] = collections.Counter()
        total = n_setup = 0
        group = self.groups[op.task_id]
        per_index = group is not None and op.trigger_rule not in _FAST_TRIGGERED
        for upstream_id in op.upstream_task_ids:
            state = finished.get(upstream_id)
            expansion = self.expansions.get(upstream_id)
            if expansion is not None and per_index and self.groups[upstream_id] is group:
                if map_index < 0:
                    total += state is None  # not ended yet: wait for it
                    continue
                states: list[str | None] = [expansion.states[map_index]]
            elif isinstance(state, list):
                states = list(state)
            elif expansion is not None:  # running (or a guess of the clock's: all indexes alike)
                states = [state] * len(expansion.tis)
            else:
                states = [state]
            n = len(states)
            ended = collections.Counter(s for s in states if s is not None)
            total += n
            counts.update(ended)
            if self.dag.get_task(upstream_id).is_setup:
                n_setup += n
                setup_counts.update(ended)
        return decide_counts(op.trigger_rule, counts, total, setup_counts=setup_counts, n_setup=n_setup)

    # -- expanding and running -----------------------------------------------------------------
    def _submit(self, op: BaseOperator) -> None:
        """A task whose rule passed: a mapped one is expanded (or marked, with no indexes)."""
        if not needs_expansion(op):
            super()._submit(op)
            return
        self.submitted.add(op.task_id)
        length = self._length(op)
        if not length:
            state = "skipped" if length == 0 else "upstream_failed"
            self._mark(op.task_id, state)
            self.clock.end(op.task_id, state)
            return
        tis = [MappedTaskInstance(op, self.dag_run, i, length) for i in range(length)]
        expansion = _Expansion(tis, [None] * length, set(range(length)))
        self.expansions[op.task_id] = expansion
        self._decide_indexes(op, expansion)

    def _length(self, op: BaseOperator) -> int | None:
        node: Any = op if isinstance(op, MappedOperator) else self.groups[op.task_id]
        try:
            return node.expand_input.total_length(functools.partial(xcomarg_length, self.dag_run))
        except NotFullyPopulated as exc:
            _log.error("Cannot expand %r for run %s; missing upstream values: %s", op, self.dag_run.run_id, sorted(exc.missing))
            return None

    def _decide_indexes(self, op: BaseOperator, expansion: _Expansion) -> None:
        """Decide the undecided indexes (all run, unless in a mapped group), start what the limit allows."""
        in_group = self.groups[op.task_id] is not None
        for index in sorted(expansion.pending):
            verdict = self._counts(op, self.states, index) if in_group else "run"
            if verdict is None:
                continue
            expansion.pending.discard(index)
            if verdict == "run":
                expansion.queued.append(index)
            else:
                self._mark_index(op, expansion, index, verdict)
        limit = getattr(op, "max_active_tis_per_dagrun", None)
        while expansion.queued and (limit is None or expansion.running < limit):
            self._submit_index(op, expansion, expansion.queued.popleft())

    def _submit_index(self, op: BaseOperator, expansion: _Expansion, index: int) -> None:
        expansion.running += 1
        future = _prefect_index_task(op, str(self.dag_run.logical_date)).submit(expansion.tis[index])
        self.running[future.wrapped_future] = (op.task_id, future)
        self.index_of[future.wrapped_future] = index

    def _collect(self, wrapped: cf.Future) -> None:
        index = self.index_of.pop(wrapped, None)
        if index is None:
            super()._collect(wrapped)
            return
        task_id, future = self.running.pop(wrapped)
        future.wait()  # the state is stale until then
        expansion = self.expansions[task_id]
        expansion.running -= 1
        ti = expansion.tis[index]
        ok = future.state.is_completed() and ti.state in ("success", "skipped") and task_id not in self.stopped
        ti.state = ti.state if ok else "failed"
        self.finished.append(ti)
        self._set_index(task_id, expansion, index, ti.state)
        if ti.state == "failed" and self.dag.fail_stop:
            self._stop_remaining(task_id)
        elif expansion.done < len(expansion.tis):
            self._decide_indexes(self.dag.get_task(task_id), expansion)  # the limit lets another start

    def _set_index(self, task_id: str, expansion: _Expansion, index: int, state: str) -> None:
        expansion.states[index] = state
        expansion.done += 1
        if expansion.done < len(expansion.tis):
            return
        states = [s or "skipped" for s in expansion.states]
        self.states[task_id] = states  # type: ignore[assignment]
        self.mapping.finished.add(task_id)
        op = self.dag.get_task(task_id)
        ran = [ti for ti in expansion.tis if ti.try_number]
        limit = getattr(op, "max_active_tis_per_dagrun", None)
        rounds = -(-len(ran) // limit) - 1 if limit and ran else 0  # dag.test runs them over turns
        retries = max((ti.try_number - 1 for ti in ran), default=0)
        self.clock.end(task_id, states, rounds + retries)  # type: ignore[arg-type]

    def _mark_index(self, op: BaseOperator, expansion: _Expansion, index: int, state: str) -> None:
        expansion.tis[index].state = state
        self._set_index(op.task_id, expansion, index, state)
        name = f"{op.task_id}[{index}]"
        mark_task_instance.with_options(name=op.task_id, task_run_name=name)(name, state, return_state=True)

    def _mark(self, task_id: str, state: str) -> None:
        super()._mark(task_id, state)
        self.mapping.finished.add(task_id)

    def _stop_remaining(self, cause: str) -> None:
        """``fail_stop`` also skips the map indexes that have not started; the mapped task that
        failed has not ended for the clock yet, so its turn stands in for the skips' turn."""
        for task_id, expansion in list(self.expansions.items()):
            waiting = sorted({*expansion.pending, *expansion.queued})
            expansion.pending.clear()
            expansion.queued.clear()
            for index in waiting:
                self._mark_index(self.dag.get_task(task_id), expansion, index, "skipped")
        if cause in self.clock.ended:
            super()._stop_remaining(cause)
            return
        self.clock.ended[cause] = (self.clock.started[cause], "failed")
        try:
            super()._stop_remaining(cause)
        finally:
            del self.clock.ended[cause]


def _prefect_index_task(op: BaseOperator, logical_date: str) -> Any:
    """The Prefect task of ``op``'s map indexes: its task runs are named ``task_id[i]``."""
    cached = op.__dict__.get("_prefect_index_task")
    if cached is not None and not op.retry_exponential_backoff:
        return cached
    made = prefect_task(op, logical_date).with_options(task_run_name="{ti.task_id}[{ti.map_index}]")
    op.__dict__["_prefect_index_task"] = made
    return made


__all__ = ["MappedTaskGroup", "MappingScheduler", "dag_has_mapping", "record_task_map", "xcomarg_length"]
