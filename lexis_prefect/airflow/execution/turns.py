"""``dag.test()``'s loop turns, replayed, so that one DAG gives the same states however long its tasks take.

Airflow 2.10.5's ``DAG.test`` loops: each turn calls ``DagRun.update_state``, which evaluates every
unfinished task's trigger rule against the tasks that had *finished before the turn began*
(``DepContext.finished_tis``, a snapshot: a task marked ``skipped`` or ``upstream_failed`` in a turn
is seen by its downstream only at the next turn), marks those it can, and returns the ready ones; the
loop then runs them all, one after the other, before the next turn. Eager trigger rules therefore see
a fixed set of finished upstreams: ``all_success`` after a failed and a skipped upstream that ran in
the same turn is ``upstream_failed`` (failures are tested first), never ``skipped``.

The shim runs tasks in parallel and learns of their ends in any order. To decide a task as
``dag.test`` does, it gives every task the turn at which ``dag.test`` would have decided it and the
turn at which it ends (a task run at turn ``k`` ends at ``k`` plus one turn per retry; a marked task
ends at the turn it is marked), and decides a task at turn ``k`` from the upstreams that ended before
``k`` only once that decision is certain: every upstream still running or pending either has a lower
bound on its end turn of at least ``k``, or gives the same decision whether and however it ended
before ``k`` (so ``all_success`` after a failure is marked at once, while after a skip it waits for a
running sibling that might still fail). A task is never decided on a guess, so the outcome depends on
the states alone; a task waits only for its own upstreams, never for independent parts of the DAG.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

from lexis_prefect.airflow.trigger_rule import Decision

__all__ = ["Evaluate", "TurnClock"]

#: What a task does at a turn, given the states of its relevant upstreams that ended before it.
Evaluate = Callable[[str, Mapping[str, str]], Decision | None]
_NEVER = 1 << 62  # the lower bound of a task that cannot be decided from what is known
#: How an upstream not seen ended yet may stand at a turn: not ended, or ended in one of these states.
_ENDINGS = (None, "success", "failed", "skipped", "upstream_failed")
_MAX_UNSURE = 3


class TurnClock:
    """The turns of one run: when each task was decided and ended, and which tasks can be decided now.

    :param order: the task ids, every task after its upstreams
    :param relevant: for each task, the tasks whose states its decision reads (its direct upstreams
        and, for a work task, its indirect setups)
    """

    def __init__(self, order: Sequence[str], relevant: Mapping[str, Sequence[str]]) -> None:
        self.order = list(order)
        self.relevant = {t: list(relevant.get(t, ())) for t in self.order}
        self.ended: dict[str, tuple[int, str]] = {}  # task -> (turn it ended at, its state)
        self.started: dict[str, int] = {}  # running task -> the turn it was decided to run
        self._checked: dict[str, int] = {}  # pending task -> last turn it was evaluated undecided at

    def end(self, task_id: str, state: str, extra_turns: int = 0) -> None:
        """A task that ran ended (``extra_turns``: its retries, one turn each in ``dag.test``)."""
        self.ended[task_id] = (self.started.pop(task_id) + extra_turns, state)

    def end_with(self, task_ids: Sequence[str], state: str, cause: str) -> None:
        """Tasks marked by another task's run (a branch's skips): they end at the turn it ended."""
        turn = self.ended[cause][0]
        for task_id in task_ids:
            self.started.pop(task_id, None)
            self.ended[task_id] = (turn, state)

    def decide_ready(self, evaluate: Evaluate) -> list[tuple[str, Decision]]:
        """Decide every task whose decision is certain now; returns them in order, with what to do.

        A task marked here ends at its turn, so its downstream may be decided in the same call.
        """
        lower: dict[str, int] = {}
        made: list[tuple[str, Decision]] = []
        for task_id in self.order:
            if task_id in self.ended:
                lower[task_id] = self.ended[task_id][0]
            elif task_id in self.started:
                lower[task_id] = self.started[task_id]
            else:
                turn, verdict = self._try(task_id, lower, evaluate)
                lower[task_id] = turn
                if verdict is None:
                    continue
                made.append((task_id, verdict))
                if verdict == "run":
                    self.started[task_id] = turn
                else:
                    self.ended[task_id] = (turn, verdict)
        return made

    def _try(self, task_id: str, lower: Mapping[str, int], evaluate: Evaluate) -> tuple[int, Decision | None]:
        """Evaluate ``task_id`` at each next turn while the outcome there is certain.

        :return: (turn, decision), or (a lower bound on its decision turn, None) to wait
        """
        ups = self.relevant[task_id]
        while True:
            checked = self._checked.get(task_id, -1)
            turn = self._next_turn(ups, checked, lower)
            if turn >= _NEVER:
                return _NEVER, None  # everything ended and no rule decided: stuck (the runner says so)
            verdicts = self._outcomes(task_id, ups, turn, lower, evaluate)
            if len(verdicts) != 1:
                return turn, None  # depends on upstreams that may or may not have ended by then
            verdict = verdicts.pop()
            if verdict is not None:
                return turn, verdict
            self._checked[task_id] = turn

    def _next_turn(self, ups: Sequence[str], checked: int, lower: Mapping[str, int]) -> int:
        """The first turn after ``checked`` at which the task's snapshot may differ from that at ``checked``."""
        if checked < 0:
            return 0  # the first turn: nothing has ended
        changes = [self.ended[u][0] + 1 for u in ups if u in self.ended and self.ended[u][0] >= checked]
        changes += [lower[u] + 1 for u in ups if u not in self.ended]
        return max(checked + 1, min(changes)) if changes else _NEVER

    def _outcomes(
        self, task_id: str, ups: Sequence[str], turn: int, lower: Mapping[str, int], evaluate: Evaluate
    ) -> set[Decision | None]:
        """What the task's evaluation at ``turn`` can give: one value when certain.

        An upstream still running or pending whose lower bound is below ``turn`` may have ended
        before it, in any state, or not: every case is tried (up to ``_MAX_UNSURE`` such upstreams),
        so an eager rule that one upstream settles (``one_success`` after a success, ``all_success``
        after a failure) is decided without waiting for the others.
        """
        snapshot = {u: self.ended[u][1] for u in ups if u in self.ended and self.ended[u][0] < turn}
        unsure = [u for u in ups if u not in self.ended and lower[u] < turn]
        if len(unsure) > _MAX_UNSURE:
            return {None, "run"}  # too many cases: wait for some of them to end
        verdicts: set[Decision | None] = set()
        for case in itertools.product(_ENDINGS, repeat=len(unsure)):
            seen = {**snapshot, **{u: state for u, state in zip(unsure, case) if state is not None}}
            verdicts.add(evaluate(task_id, seen))
            if len(verdicts) > 1:
                break
        return verdicts
