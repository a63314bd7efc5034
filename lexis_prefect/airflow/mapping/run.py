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
from lexis_prefect.airflow.runner import _Scheduler, mark_task_instance, prefect_task
from lexis_prefect.airflow.taskinstance import DagRun, TaskInstance
from lexis_prefect.airflow.trigger_rule import TriggerRule, decide_counts
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
        self._context: dict[str, Any] | None = None
        self._group = closest_mapped_group(task.task_group)

    def get_relevant_upstream_map_indexes(self, upstream: BaseOperator) -> int | None:
        if self._group is not None and closest_mapped_group(upstream.task_group) is self._group:
            return self.map_index  # same mapped group: this index's value, not the whole list
        return None

    def get_template_context(self, task: BaseOperator | None = None) -> dict[str, Any]:
        self._context = super().get_template_context(task)
        return self._context

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
        context = self._context
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
    counts: collections.Counter[str] = field(default_factory=collections.Counter)


class MappingScheduler(_Scheduler):
    """The runner's scheduler, for a DAG with mapped tasks: task instances per map index."""

    def __init__(self, dag: DAG, dag_run: DagRun) -> None:
        super().__init__(dag, dag_run)
        self.expansions: dict[str, _Expansion] = {}
        self.index_of: dict[cf.Future, int] = {}
        self.mapping = _run_mapping(dag_run)
        self.groups = {t.task_id: closest_mapped_group(t.task_group) for t in self.order}

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        except BaseException:
            for wrapped, (task_id, _) in list(self.running.items()):
                index = self.index_of.get(wrapped)
                (self.tis[task_id] if index is None else self.expansions[task_id].tis[index]).kill()
            raise

    # -- deciding ------------------------------------------------------------------------------
    def _schedule(self, candidates: list[BaseOperator]) -> None:
        todo = list(candidates)
        while todo:
            op = todo.pop(0)
            task_id = op.task_id
            if task_id in self.states:
                continue
            expansion = self.expansions.get(task_id)
            if expansion is not None:
                todo.extend(self._decide_indexes(op, expansion))
                continue
            if task_id in self.submitted:
                continue
            verdict = decide_counts(op.trigger_rule, *self._upstream_counts(op, -1))
            if verdict is None:
                continue
            if verdict != "run":
                self._mark(task_id, verdict)
                todo.extend(op.downstream_list)
            elif not needs_expansion(op):
                self._submit(op)
            else:
                todo.extend(self._expand(op))

    def _upstream_counts(self, op: BaseOperator, map_index: int) -> tuple[collections.Counter[str], int]:
        """Finished upstream task instances by state, and how many there are: Airflow's
        ``_evaluate_direct_relatives`` sums over map indexes.

        A mapped upstream outside ``op``'s group is counted once all its indexes have ended
        (until then nothing is decided): ``dag.test`` runs all the indexes of a task before it
        looks at the downstream again, so an eager rule (``all_success`` after a failed and a
        skipped index) is decided on all of them, never by which index ended first.
        """
        counts: collections.Counter[str] = collections.Counter()
        total = 0
        group = self.groups[op.task_id]
        per_index = group is not None and op.trigger_rule not in _FAST_TRIGGERED
        for upstream_id in op.upstream_task_ids:
            expansion = self.expansions.get(upstream_id)
            if expansion is None:  # one task instance: not mapped, or not expanded (yet)
                total += 1
                state = self.states.get(upstream_id)
                if state is not None:
                    counts[state] += 1
            elif per_index and self.groups[upstream_id] is group:
                if map_index >= 0:  # the unexpanded instance depends on no expanded index
                    total += 1
                    state = expansion.states[map_index]
                    if state is not None:
                        counts[state] += 1
            elif expansion.done < len(expansion.tis):
                return collections.Counter(), total + len(expansion.tis)  # see _upstream_counts' doc
            else:
                total += len(expansion.tis)
                counts.update(expansion.counts)
        return counts, total

    def _expand(self, op: BaseOperator) -> list[BaseOperator]:
        """Make the map indexes of ``op`` (its trigger rule passed); mark it if there are none."""
        length = self._length(op)
        if not length:
            self._mark(op.task_id, "skipped" if length == 0 else "upstream_failed")
            return list(op.downstream_list)
        tis = [MappedTaskInstance(op, self.dag_run, i, length) for i in range(length)]
        expansion = _Expansion(tis, [None] * length, set(range(length)))
        self.expansions[op.task_id] = expansion
        self.submitted.add(op.task_id)
        return self._decide_indexes(op, expansion)

    def _length(self, op: BaseOperator) -> int | None:
        node: Any = op if isinstance(op, MappedOperator) else self.groups[op.task_id]
        try:
            return node.expand_input.total_length(functools.partial(xcomarg_length, self.dag_run))
        except NotFullyPopulated as exc:
            _log.error("Cannot expand %r for run %s; missing upstream values: %s", op, self.dag_run.run_id, sorted(exc.missing))
            return None

    def _decide_indexes(self, op: BaseOperator, expansion: _Expansion) -> list[BaseOperator]:
        """Decide the undecided indexes, start what the limit allows; the tasks to decide next."""
        decided = False
        same_for_all = self.groups[op.task_id] is None
        verdict = decide_counts(op.trigger_rule, *self._upstream_counts(op, 0)) if same_for_all else None
        for index in sorted(expansion.pending):
            if not same_for_all:
                verdict = decide_counts(op.trigger_rule, *self._upstream_counts(op, index))
            if verdict is None:
                continue
            expansion.pending.discard(index)
            if verdict == "run":
                expansion.queued.append(index)
            else:
                self._mark_index(op, expansion, index, verdict)
                decided = True
        limit = getattr(op, "max_active_tis_per_dagrun", None)
        while expansion.queued and (limit is None or expansion.running < limit):
            self._submit_index(op, expansion, expansion.queued.popleft())
        return list(op.downstream_list) if decided else []

    # -- running -------------------------------------------------------------------------------
    def _submit_index(self, op: BaseOperator, expansion: _Expansion, index: int) -> None:
        expansion.running += 1
        future = _prefect_index_task(op, str(self.dag_run.logical_date)).submit(expansion.tis[index])
        self.running[future.wrapped_future] = (op.task_id, future)
        self.index_of[future.wrapped_future] = index

    def _collect(self, wrapped: cf.Future) -> list[BaseOperator]:
        index = self.index_of.pop(wrapped, None)
        if index is None:
            return super()._collect(wrapped)
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
            self._stop_remaining()
            return []
        op = self.dag.get_task(task_id)
        return [op, *op.downstream_list]  # op: start what its limit now allows

    def _set_index(self, task_id: str, expansion: _Expansion, index: int, state: str) -> None:
        expansion.states[index] = state
        expansion.counts[state] += 1
        expansion.done += 1
        if expansion.done == len(expansion.tis):
            self.states[task_id] = list(expansion.states)  # type: ignore[assignment]
            self.mapping.finished.add(task_id)

    def _mark_index(self, op: BaseOperator, expansion: _Expansion, index: int, state: str) -> None:
        expansion.tis[index].state = state
        self._set_index(op.task_id, expansion, index, state)
        name = f"{op.task_id}[{index}]"
        mark_task_instance.with_options(name=op.task_id, task_run_name=name)(name, state, return_state=True)

    def _mark(self, task_id: str, state: str) -> None:
        super()._mark(task_id, state)
        self.mapping.finished.add(task_id)

    def _stop_remaining(self) -> None:
        """``fail_stop`` also skips the map indexes that have not started."""
        super()._stop_remaining()
        for task_id, expansion in self.expansions.items():
            if task_id in self.states:
                continue
            waiting = [*expansion.pending, *expansion.queued]
            expansion.pending.clear()
            expansion.queued.clear()
            for index in sorted(waiting):
                self._mark_index(self.dag.get_task(task_id), expansion, index, "skipped")


def _prefect_index_task(op: BaseOperator, logical_date: str) -> Any:
    """The Prefect task of ``op``'s map indexes: its task runs are named ``task_id[i]``."""
    cached = op.__dict__.get("_prefect_index_task")
    if cached is not None and not op.retry_exponential_backoff:
        return cached
    made = prefect_task(op, logical_date).with_options(task_run_name="{ti.task_id}[{ti.map_index}]")
    op.__dict__["_prefect_index_task"] = made
    return made


__all__ = ["MappedTaskGroup", "MappingScheduler", "dag_has_mapping", "record_task_map", "xcomarg_length"]
