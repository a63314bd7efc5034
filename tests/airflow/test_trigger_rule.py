"""Trigger rules: the enum, and ``decide`` against Airflow 2.10.5's scheduler.

The matrix is the one ``dag.test()`` produced on a real Airflow 2.10.5 (airflow-on-prefect.md §1.7),
with every upstream finished. The eager and waiting cases were checked against Airflow's own
``TriggerRuleDep`` (all rules x every partial outcome of up to 3 upstreams: no mismatch).
"""

from __future__ import annotations

import pytest

from lexis_prefect.airflow.trigger_rule import TriggerRule, decide

# S=success, F=failed, K=skipped, U=upstream_failed; ran/u_f/skip as in the doc's table.
MATRIX = """
| rule | S | F | K | U | SF | SK | FK | SS | FF | KK | SU |
| all_success | ran | u_f | skip | u_f | u_f | skip | u_f | ran | u_f | skip | u_f |
| all_failed | skip | ran | skip | ran | skip | skip | skip | skip | ran | skip | skip |
| all_done | ran | ran | ran | ran | ran | ran | ran | ran | ran | ran | ran |
| one_success | ran | u_f | skip | u_f | ran | ran | u_f | ran | u_f | skip | ran |
| one_failed | skip | ran | skip | ran | ran | skip | ran | skip | ran | skip | ran |
| one_done | ran | ran | skip | skip | ran | ran | ran | ran | ran | skip | ran |
| none_failed | ran | u_f | ran | u_f | u_f | ran | u_f | ran | u_f | ran | u_f |
| none_skipped | ran | ran | skip | ran | ran | skip | skip | ran | ran | skip | ran |
| always | ran | ran | ran | ran | ran | ran | ran | ran | ran | ran | ran |
| none_failed_min_one_success | ran | u_f | skip | u_f | u_f | ran | u_f | ran | u_f | skip | u_f |
| all_skipped | skip | skip | ran | skip | skip | skip | skip | skip | skip | ran | skip |
"""

LETTER = {"S": "success", "F": "failed", "K": "skipped", "U": "upstream_failed"}
OUTCOME = {"ran": "run", "u_f": "upstream_failed", "skip": "skipped"}


def _matrix_cases() -> list[tuple[str, str, str]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in MATRIX.strip().splitlines()]
    header, body = rows[0][1:], rows[1:]
    return [(row[0], combo, OUTCOME[cell]) for row in body for combo, cell in zip(header, row[1:])]


MATRIX_CASES = _matrix_cases()


def test_matrix_is_complete() -> None:
    assert len(MATRIX_CASES) == 11 * 11


@pytest.mark.parametrize(("rule", "combo", "expected"), MATRIX_CASES)
def test_matrix_all_upstreams_finished(rule: str, combo: str, expected: str) -> None:
    states = [LETTER[c] for c in combo]
    assert decide(rule, states, len(states)) == expected
    # The order in which upstreams finished does not matter once all are done.
    assert decide(rule, list(reversed(states)), len(states)) == expected


@pytest.mark.parametrize(
    ("alias", "target"),
    [("dummy", "always"), ("none_failed_or_skipped", "none_failed_min_one_success")],
)
@pytest.mark.parametrize("combo", ["S", "F", "K", "U", "SF", "SK", "FK", "SS", "FF", "KK", "SU"])
def test_deprecated_aliases_behave_as_their_target(alias: str, target: str, combo: str) -> None:
    states = [LETTER[c] for c in combo]
    assert decide(alias, states, len(states)) == decide(target, states, len(states))


@pytest.mark.parametrize(
    ("rule", "states", "n_upstream", "expected"),
    [
        # Eager "run": the rule is met before the other upstreams finish.
        ("one_success", ["success"], 3, "run"),
        ("one_success", ["failed", "success"], 3, "run"),
        ("one_failed", ["failed"], 3, "run"),
        ("one_failed", ["upstream_failed"], 3, "run"),
        ("one_done", ["success"], 2, "run"),
        ("one_done", ["failed"], 2, "run"),
        # Eager marking: the rule can no longer be met.
        ("all_success", ["failed"], 3, "upstream_failed"),
        ("all_success", ["upstream_failed"], 3, "upstream_failed"),
        ("all_success", ["skipped"], 3, "skipped"),
        ("all_success", ["skipped", "failed"], 3, "upstream_failed"),  # failure wins over skip
        ("none_failed", ["failed"], 2, "upstream_failed"),
        ("none_failed", ["upstream_failed"], 2, "upstream_failed"),
        ("none_failed_min_one_success", ["failed"], 2, "upstream_failed"),
        ("all_failed", ["success"], 3, "skipped"),
        ("all_failed", ["skipped"], 3, "skipped"),
        ("none_skipped", ["skipped"], 3, "skipped"),
        ("all_skipped", ["success"], 3, "skipped"),
        ("all_skipped", ["failed"], 3, "skipped"),
        ("all_skipped", ["upstream_failed"], 3, "skipped"),
        # Always and "no upstream" run at once, whatever the rule.
        ("always", [], 2, "run"),
        ("dummy", [], 2, "run"),
        ("all_success", [], 0, "run"),
        ("all_failed", [], 0, "run"),
        ("one_success", [], 0, "run"),
    ],
)
def test_eager_decisions(rule: str, states: list[str], n_upstream: int, expected: str) -> None:
    assert decide(rule, states, n_upstream) == expected


@pytest.mark.parametrize(
    ("rule", "states", "n_upstream"),
    [
        ("all_success", [], 1),
        ("all_success", ["success"], 2),
        ("all_failed", ["failed"], 2),
        ("all_failed", ["upstream_failed"], 2),
        ("all_done", ["success", "failed"], 3),
        ("all_done_setup_success", ["success"], 2),
        ("one_success", ["failed", "skipped"], 3),  # no success yet, one upstream still running
        ("one_success", ["skipped"], 2),
        ("one_failed", ["success", "skipped"], 3),
        ("one_done", ["skipped", "upstream_failed"], 3),  # U does not count as done for one_done
        ("none_failed", ["success", "skipped"], 3),
        ("none_failed_min_one_success", ["skipped"], 2),
        ("none_failed_or_skipped", ["skipped"], 2),
        ("none_skipped", ["success", "failed"], 3),  # waits for all even though no skip so far
        ("all_skipped", ["skipped"], 2),
    ],
)
def test_waits_when_not_decidable_yet(rule: str, states: list[str], n_upstream: int) -> None:
    assert decide(rule, states, n_upstream) is None


def test_all_done_setup_success_is_all_done_without_setup_tasks() -> None:
    for combo in ["S", "F", "K", "U", "SF", "SK", "FK", "SS", "FF", "KK", "SU"]:
        states = [LETTER[c] for c in combo]
        assert decide("all_done_setup_success", states, len(states)) == "run"
        assert decide("all_done_setup_success", states, len(states) + 1) is None


def test_accepts_enum_members() -> None:
    assert decide(TriggerRule.ONE_SUCCESS, ["success"], 2) == "run"
    assert decide(TriggerRule.NONE_FAILED_OR_SKIPPED, ["skipped"], 1) == "skipped"


def test_unknown_rule_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match=r"Unknown trigger rule 'all_sucess'.*'all_success'"):
        decide("all_sucess", ["success"], 1)
    with pytest.raises(ValueError, match="Unknown trigger rule"):
        decide("all_sucess", [], 0)


def test_unknown_state_and_bad_counts_are_value_errors() -> None:
    with pytest.raises(ValueError, match="Unknown upstream states"):
        decide("all_success", ["running"], 1)
    with pytest.raises(ValueError, match="Unknown upstream states"):
        decide("all_success", ["removed"], 1)
    with pytest.raises(ValueError, match="2 finished upstream states for 1"):
        decide("all_success", ["success", "success"], 1)
    with pytest.raises(ValueError):
        decide("all_success", [], -1)


def test_enum_values_and_helpers() -> None:
    assert {r.value for r in TriggerRule} == {
        "all_success", "all_failed", "all_done", "all_done_setup_success", "one_success",
        "one_failed", "one_done", "none_failed", "none_failed_or_skipped", "none_skipped",
        "dummy", "always", "none_failed_min_one_success", "all_skipped",
    }  # fmt: skip
    assert TriggerRule.is_valid("none_failed_min_one_success")
    assert TriggerRule.is_valid(TriggerRule.ALL_DONE)
    assert not TriggerRule.is_valid("all_sucess")
    assert "one_done" in TriggerRule.all_triggers()
    assert len(TriggerRule.all_triggers()) == 14
    assert str(TriggerRule.ALL_DONE) == "all_done"
    assert f"{TriggerRule.ALL_DONE}" == "all_done"
    assert TriggerRule("all_done") is TriggerRule.ALL_DONE
    assert TriggerRule.ALL_DONE == "all_done"
