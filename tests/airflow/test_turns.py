"""Same DAG, same states: the shim decides tasks as ``dag.test()``'s loop turns do, whatever the timing.

Two checks. A model check: random DAGs with random trigger rules, outcomes and retries, whose tasks
end in random orders under :class:`TurnClock`, must give exactly the states of a direct replay of
``dag.test()``'s loop (Airflow 2.10.5 ``DAG.test`` / ``DagRun.update_state``: each turn decides every
unfinished task from the tasks finished before the turn, then runs the ready ones). And a run check:
``trigger_rule_eager_race.py`` (a conformance DAG, recorded with real Airflow; its tasks sleep random
moments) run repeatedly through the shim while a thread keeps the CPU busy gives the recorded states
every time.
"""

from __future__ import annotations

import heapq
import json
import random
import threading
from collections.abc import Mapping

import pytest

from lexis_prefect.airflow.trigger_rule import Decision, TriggerRule, decide
from lexis_prefect.airflow.execution.turns import TurnClock

RULES = sorted(r.value for r in TriggerRule if r not in (TriggerRule.DUMMY, TriggerRule.NONE_FAILED_OR_SKIPPED))
OUTCOMES = ("success", "failed", "skipped")


RandomDag = tuple[list[str], dict[str, list[str]], dict[str, str], dict[str, str], dict[str, int]]


def random_dag(rng: random.Random) -> RandomDag:
    """Task ids in order, upstreams, rules, the state each task ends in if it runs, and its tries."""
    n = rng.randint(4, 12)
    order = [f"t{i:02d}" for i in range(n)]
    ups = {t: sorted(u for u in order[:i] if rng.random() < 0.35) for i, t in enumerate(order)}
    rules = {t: rng.choice(RULES) for t in order}
    outcome = {t: rng.choice(OUTCOMES) for t in order}
    tries = {t: rng.choice((1, 1, 1, 2, 3)) for t in order}
    return order, ups, rules, outcome, tries


def evaluator(ups: Mapping[str, list[str]], rules: Mapping[str, str]):
    def evaluate(task_id: str, finished: Mapping[str, str]) -> Decision | None:
        return decide(rules[task_id], [finished[u] for u in ups[task_id] if u in finished], len(ups[task_id]))

    return evaluate


def dag_test_loop(order, ups, rules, outcome, tries) -> dict[str, str]:
    """Airflow's ``dag.test()`` loop, serially: decide from a snapshot, then run what is ready."""
    evaluate = evaluator(ups, rules)
    states: dict[str, str] = {}
    left = dict(tries)
    retrying: set[str] = set()
    while len(states) < len(order):
        snapshot = dict(states)  # DepContext.finished_tis: marks of this turn are not seen in it
        ready = []
        for task_id in order:
            if task_id in states:
                continue
            if task_id in retrying:
                ready.append(task_id)
                continue
            verdict = evaluate(task_id, {u: snapshot[u] for u in ups[task_id] if u in snapshot})
            if verdict == "run":
                ready.append(task_id)
            elif verdict is not None:
                states[task_id] = verdict
        if not ready and len(snapshot) == len(states):
            raise AssertionError("deadlock")
        for task_id in ready:
            left[task_id] -= 1
            if left[task_id]:
                retrying.add(task_id)  # up_for_retry with retry_delay=0: runs again next turn
            else:
                retrying.discard(task_id)
                states[task_id] = outcome[task_id]
    return states


def parallel_run(order, ups, rules, outcome, tries, rng: random.Random) -> dict[str, str]:
    """The shim's way: tasks run at once, end after random durations, decided by the TurnClock."""
    clock = TurnClock(order, ups)
    evaluate = evaluator(ups, rules)
    states: dict[str, str] = {}
    running: list[tuple[float, str]] = []
    now = 0.0

    def schedule() -> None:
        for task_id, verdict in clock.decide_ready(evaluate):
            if verdict == "run":
                heapq.heappush(running, (now + sum(rng.random() for _ in range(tries[task_id])), task_id))
            else:
                states[task_id] = verdict

    schedule()
    while running:
        now, task_id = heapq.heappop(running)
        states[task_id] = outcome[task_id]
        clock.end(task_id, outcome[task_id], tries[task_id] - 1)
        schedule()
    assert len(states) == len(order), "the clock left tasks undecided"
    return states


def test_turn_clock_gives_dag_test_states_in_any_order_of_ends() -> None:
    rng = random.Random(20)
    for _ in range(400):
        dag = random_dag(rng)
        expected = dag_test_loop(*dag)
        for _ in range(5):
            assert parallel_run(*dag, rng) == expected, dag


def test_a_mark_is_seen_one_turn_later() -> None:
    """``fail >> child``; ``[child, skip] >> last``: turn 1 marks ``child`` and, from turn 0's
    snapshot, sees only the skip, so ``last`` is skipped (real Airflow: ``deep_skip_wins``)."""
    order = ["fail", "skip", "child", "last"]
    ups = {"fail": [], "skip": [], "child": ["fail"], "last": ["child", "skip"]}
    rules = {t: "all_success" for t in order}
    outcome = {"fail": "failed", "skip": "skipped", "child": "success", "last": "success"}
    tries = dict.fromkeys(order, 1)
    assert dag_test_loop(order, ups, rules, outcome, tries)["last"] == "skipped"
    assert parallel_run(order, ups, rules, outcome, tries, random.Random(1))["last"] == "skipped"


@pytest.mark.usefixtures("prefect_harness")
def test_eager_race_dag_gives_the_recorded_states_under_load(tmp_path, monkeypatch) -> None:
    from tests.airflow.test_conformance import EXPECTED, load_dag

    monkeypatch.setenv("CONFORMANCE_TMP", str(tmp_path))
    expected = json.loads((EXPECTED / "trigger_rule_eager_race.json").read_text())["cases"][0]
    stop = threading.Event()

    def spin() -> None:  # holds the GIL in turns with the run's threads, shifting their timing
        while not stop.is_set():
            sum(i * i for i in range(20_000))

    busy = threading.Thread(target=spin, daemon=True)
    busy.start()
    try:
        for _ in range(2):
            result = load_dag("trigger_rule_eager_race", monkeypatch).test()
            assert (result.state, dict(result.tasks)) == (expected["state"], expected["tasks"])
    finally:
        stop.set()
        busy.join()


@pytest.mark.parametrize(
    ("rule", "first", "decided"),
    [
        ("one_success", "success", "run"),  # any end of the sibling gives run at turn 1
        ("all_success", "failed", "upstream_failed"),  # failures are tested first: settled
        ("all_success", "skipped", None),  # the sibling may still fail in the same turn
        ("all_done", "success", None),
    ],
)
def test_a_running_sibling_is_waited_for_only_when_it_could_change_the_decision(rule, first, decided) -> None:
    order = ["a", "b", "t"]
    ups = {"a": [], "b": [], "t": ["a", "b"]}
    clock = TurnClock(order, ups)
    evaluate = evaluator(ups, {"a": "all_success", "b": "all_success", "t": rule})
    assert clock.decide_ready(evaluate) == [("a", "run"), ("b", "run")]
    clock.end("a", first)
    assert clock.decide_ready(evaluate) == ([("t", decided)] if decided else [])
