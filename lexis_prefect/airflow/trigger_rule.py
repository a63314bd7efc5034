"""Trigger rules: Airflow 2.10.5's ``TriggerRule`` enum and the decision its scheduler takes from them.

``decide`` is a pure port of ``airflow/ti_deps/deps/trigger_rule_dep.py`` (``_evaluate_direct_relatives``
with ``flag_upstream_failed=True``, as the scheduler and ``dag.test()`` call it). The runner calls it
each time a direct upstream finishes, so the eager outcomes match Airflow's: ``one_success`` runs on the
first success, ``all_success`` is ``upstream_failed`` as soon as one upstream failed, and so on.

``all_done_setup_success`` (a teardown's rule) counts the direct upstreams that are setup tasks
(``setup_states``); the constraint on *indirect* setups is in :mod:`lexis_prefect.airflow.setup_teardown`.

Mapped upstreams count once per map index (:func:`decide_counts`, used by
:mod:`lexis_prefect.airflow.mapping.run`). Not ported: the ``removed`` state (a run's map indexes
never shrink here) and ``depends_on_past`` / ``wait_for_past_depends_before_skipping``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Literal

__all__ = ["Decision", "TriggerRule", "decide", "decide_counts"]

Decision = Literal["run", "skipped", "upstream_failed"]

_FINISHED_STATES = frozenset({"success", "failed", "skipped", "upstream_failed"})


class TriggerRule(str, Enum):
    """A task's trigger rule, with Airflow 2.10's values (deprecated aliases included)."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_OR_SKIPPED = "none_failed_or_skipped"
    NONE_SKIPPED = "none_skipped"
    DUMMY = "dummy"
    ALWAYS = "always"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    ALL_SKIPPED = "all_skipped"

    @classmethod
    def is_valid(cls, trigger_rule: str) -> bool:
        """Whether ``trigger_rule`` is one of the values (a plain string or a member)."""
        return trigger_rule in cls.all_triggers()

    @classmethod
    def all_triggers(cls) -> set[str]:
        """All the rules; members compare and hash equal to their string values."""
        return set(cls.__members__.values())

    def __str__(self) -> str:
        return self.value


# Airflow's BaseOperator rewrites these deprecated values (with a RemovedInAirflow3Warning) before the
# rule is ever evaluated; the scheduler itself has no branch for them.
_ALIASES = {
    TriggerRule.DUMMY: TriggerRule.ALWAYS,
    TriggerRule.NONE_FAILED_OR_SKIPPED: TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
}


def decide(
    rule: TriggerRule | str,
    states: Sequence[str],
    n_upstream: int,
    *,
    setup_states: Sequence[str] = (),
    n_setup: int = 0,
) -> Decision | None:
    """What Airflow's scheduler does with a task whose direct upstreams have finished in ``states``.

    :param rule: the task's trigger rule (deprecated aliases are mapped as Airflow's BaseOperator does)
    :param states: the states of the direct upstreams that have finished so far, one per upstream:
        ``"success"``, ``"failed"``, ``"skipped"`` or ``"upstream_failed"``
    :param n_upstream: the number of direct upstreams, finished or not
    :param setup_states: the part of ``states`` that belongs to setup tasks
    :param n_setup: how many of the direct upstreams are setup tasks, finished or not
    :return: ``"run"``; ``"skipped"`` or ``"upstream_failed"`` (the task is marked so without
        running); or ``None`` when the rule cannot decide yet and the task must wait for more upstreams
    :raises ValueError: unknown rule or state, or more finished states than upstreams
    """
    unknown = [s for s in states if s not in _FINISHED_STATES]
    if unknown:
        raise ValueError(f"Unknown upstream states {unknown}; expected those of {sorted(_FINISHED_STATES)}")
    if not 0 <= len(states) <= n_upstream:
        raise ValueError(f"{len(states)} finished upstream states for {n_upstream} upstream task(s)")
    return decide_counts(rule, Counter(states), n_upstream, setup_counts=Counter(setup_states), n_setup=n_setup)


def decide_counts(
    rule: TriggerRule | str,
    counts: Mapping[str, int],
    n_upstream: int,
    *,
    setup_counts: Mapping[str, int] | None = None,
    n_setup: int = 0,
) -> Decision | None:
    """:func:`decide` from the number of finished upstream task instances in each state: a mapped
    upstream counts once per map index, so the counts are what Airflow's dependency check sums."""
    try:
        trigger_rule = TriggerRule(rule)
    except ValueError:
        raise ValueError(
            f"Unknown trigger rule {rule!r}; expected one of {sorted(r.value for r in TriggerRule)}"
        ) from None
    trigger_rule = _ALIASES.get(trigger_rule, trigger_rule)
    setup_counts = setup_counts or {}

    if n_upstream == 0 or trigger_rule is TriggerRule.ALWAYS:
        return "run"

    success = counts.get("success", 0)
    skipped = counts.get("skipped", 0)
    failed = counts.get("failed", 0)
    upstream_failed = counts.get("upstream_failed", 0)
    done = success + skipped + failed + upstream_failed
    upstream = n_upstream
    upstream_done = done >= upstream

    # First phase (flag_upstream_failed): mark the task without running it, possibly before all
    # upstreams are done. Kept in Airflow's order, since it decides between e.g. failed and skipped.
    new_state: Decision | None = None
    if trigger_rule is TriggerRule.ALL_SUCCESS:
        if upstream_failed or failed:
            new_state = "upstream_failed"
        elif skipped:
            new_state = "skipped"
    elif trigger_rule is TriggerRule.ALL_FAILED:
        if success or skipped:
            new_state = "skipped"
    elif trigger_rule is TriggerRule.ONE_SUCCESS:
        if upstream_done and done == skipped:
            new_state = "skipped"
        elif upstream_done and success <= 0:
            new_state = "upstream_failed"
    elif trigger_rule is TriggerRule.ONE_FAILED:
        if upstream_done and not (failed or upstream_failed):
            new_state = "skipped"
    elif trigger_rule is TriggerRule.ONE_DONE:
        # upstream_failed does not count as done here: one_done after only U is skipped.
        if upstream_done and not (failed or success):
            new_state = "skipped"
    elif trigger_rule is TriggerRule.NONE_FAILED:
        if upstream_failed or failed:
            new_state = "upstream_failed"
    elif trigger_rule is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS:
        if upstream_failed or failed:
            new_state = "upstream_failed"
        elif skipped == upstream:
            new_state = "skipped"
    elif trigger_rule is TriggerRule.NONE_SKIPPED:
        if skipped:
            new_state = "skipped"
    elif trigger_rule is TriggerRule.ALL_SKIPPED:
        if success or failed or upstream_failed:
            new_state = "skipped"
    elif trigger_rule is TriggerRule.ALL_DONE_SETUP_SUCCESS and upstream_done and n_setup:
        if setup_counts.get("skipped", 0) >= n_setup:
            new_state = "skipped"  # every setup skipped
        elif not setup_counts.get("success", 0):
            new_state = "upstream_failed"  # no setup succeeded; one that did lets it run
    if new_state is not None:
        return new_state

    # Second phase: the dependency passes (the task runs) or it keeps waiting.
    if trigger_rule is TriggerRule.ONE_SUCCESS:
        passed = success > 0
    elif trigger_rule is TriggerRule.ONE_FAILED:
        passed = bool(failed or upstream_failed)
    elif trigger_rule is TriggerRule.ONE_DONE:
        passed = success + failed > 0
    elif trigger_rule is TriggerRule.ALL_SUCCESS:
        passed = upstream - success <= 0
    elif trigger_rule is TriggerRule.ALL_FAILED:
        passed = upstream - failed - upstream_failed <= 0
    elif trigger_rule is TriggerRule.ALL_DONE:
        passed = upstream_done
    elif trigger_rule is TriggerRule.ALL_DONE_SETUP_SUCCESS:
        passed = upstream_done and not (n_setup and not setup_counts.get("success", 0))
    elif trigger_rule in (TriggerRule.NONE_FAILED, TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS):
        passed = upstream - success - skipped <= 0
    elif trigger_rule is TriggerRule.NONE_SKIPPED:
        passed = upstream_done and skipped == 0
    elif trigger_rule is TriggerRule.ALL_SKIPPED:
        passed = upstream - skipped <= 0
    else:  # pragma: no cover - every member is handled above or aliased
        raise AssertionError(f"No strategy to evaluate trigger rule '{trigger_rule}'.")
    return "run" if passed else None
