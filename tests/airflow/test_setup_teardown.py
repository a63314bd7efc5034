"""Setup and teardown at parse time: marks, edges, errors, group leaves, the run-state leaves.

Nothing here runs a DAG (the run-time behaviour is in the conformance DAGs ``setup_teardown_*``).
Expected values and error texts were checked against a real Airflow 2.10.5 running the same
statements with ``airflow.*`` imports.
"""

from __future__ import annotations

import pendulum
import pytest

from lexis_prefect.airflow.dag import DAG
from lexis_prefect.airflow.decorators import task, task_group
from lexis_prefect.airflow.exceptions import AirflowException, UnsupportedArgument
from lexis_prefect.airflow.operators import EmptyOperator
from lexis_prefect.airflow.setup_teardown import effective_leaves, indirect_setups, setup, teardown
from lexis_prefect.airflow.task_group import TaskGroup


def new_dag(dag_id: str = "st") -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))


def test_as_teardown_marks_sets_the_rule_and_links_its_setups() -> None:
    with new_dag():
        s = EmptyOperator(task_id="s").as_setup()
        w = EmptyOperator(task_id="w")
        t = EmptyOperator(task_id="t").as_teardown(setups=s)
        s >> w >> t
    assert (s.is_setup, t.is_teardown, t.trigger_rule) == (True, True, "all_done_setup_success")
    assert sorted(t.upstream_task_ids) == ["s", "w"]
    assert not t.on_failure_fail_dagrun


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda s, w, t: t.as_setup(), "Cannot mark task 't' as setup; task is already a teardown."),
        (lambda s, w, t: s.as_teardown(), "Cannot mark task 's' as teardown; task is already a setup."),
        (
            lambda s, w, t: setattr(w, "on_failure_fail_dagrun", True),
            "Cannot set task on_failure_fail_dagrun for 'w' because it is not a teardown task.",
        ),
    ],
)
def test_contradicting_marks_are_refused(action, message: str) -> None:
    with new_dag():
        s = EmptyOperator(task_id="s").as_setup()
        w = EmptyOperator(task_id="w")
        t = EmptyOperator(task_id="t").as_teardown(setups=s)
        with pytest.raises(ValueError) as excinfo:
            action(s, w, t)
    assert str(excinfo.value) == message


def test_decorators_mark_the_task_and_fix_the_teardown_rule() -> None:
    @teardown(on_failure_fail_dagrun=True)
    def delete() -> None: ...

    @setup
    def create() -> None: ...

    @task
    def plain() -> None: ...

    with new_dag():
        made = delete()
        created = create()
        marked = plain().as_teardown(setups=created, on_failure_fail_dagrun=True)
        with pytest.raises(ValueError, match="Trigger rule not configurable for teardown tasks."):
            delete.override(trigger_rule="all_success")()
    assert (made.operator.is_teardown, made.operator.on_failure_fail_dagrun) == (True, True)
    assert made.operator.trigger_rule == "all_done_setup_success"
    assert created.is_setup and created.operator.is_setup
    assert marked.on_failure_fail_dagrun and marked.operator.upstream_task_ids == {"create"}


def test_a_task_group_cannot_be_a_setup() -> None:
    with pytest.raises(AirflowException, match="Task groups cannot be marked as setup or teardown."):
        setup(task_group(lambda: None))


def test_context_manager_form_is_refused_naming_the_feature() -> None:
    with new_dag():
        w = EmptyOperator(task_id="w")
        t = EmptyOperator(task_id="t").as_teardown()
        with pytest.raises(AirflowException, match="Only setup/teardown tasks can be used as context managers."):
            with w:
                pass
        with pytest.raises(UnsupportedArgument, match="airflow-compat.md"):
            with t:
                pass


def test_group_leaves_look_through_teardowns() -> None:
    with new_dag():
        with TaskGroup("g") as g:
            a = EmptyOperator(task_id="a").as_setup()
            b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c").as_teardown(setups=a)
            a >> b >> c
        with TaskGroup("h") as h:
            a2 = EmptyOperator(task_id="a").as_setup()
            EmptyOperator(task_id="c").as_teardown(setups=a2)
    assert [t.task_id for t in g.leaves] == ["g.b"]
    assert [t.task_id for t in g.roots] == ["g.a"]
    assert h.leaves == []


def test_run_state_leaves_skip_teardowns_unless_they_fail_the_run() -> None:
    with new_dag() as dag:
        s = EmptyOperator(task_id="s").as_setup()
        w = EmptyOperator(task_id="w")
        quiet = EmptyOperator(task_id="quiet").as_teardown(setups=s)
        loud = EmptyOperator(task_id="loud").as_teardown(setups=s, on_failure_fail_dagrun=True)
        s >> w >> [quiet, loud]
    assert sorted(t.task_id for t in effective_leaves(dag)) == ["loud"]
    with new_dag("only_teardowns") as dag2:
        EmptyOperator(task_id="t").as_teardown()
    assert [t.task_id for t in effective_leaves(dag2)] == ["t"]


def test_indirect_setups_are_those_whose_teardown_follows_the_task() -> None:
    with new_dag():
        s = EmptyOperator(task_id="s").as_setup()
        other = EmptyOperator(task_id="other").as_setup()
        w1, w2 = EmptyOperator(task_id="w1"), EmptyOperator(task_id="w2")
        t = EmptyOperator(task_id="t").as_teardown(setups=s)
        early = EmptyOperator(task_id="early").as_teardown(setups=other)
        s >> w1 >> w2 >> t
        other >> w1 >> early
    # s: torn down after w2; other: torn down before w2, so not relevant to it
    assert indirect_setups(w2) == ["s"]
    assert indirect_setups(w1) == []
    assert indirect_setups(t) == []


def test_a_setup_followed_by_a_non_all_success_work_task_is_refused_by_dag_test() -> None:
    with new_dag() as dag:
        s = EmptyOperator(task_id="s").as_setup()
        s >> EmptyOperator(task_id="w", trigger_rule="all_done")
    with pytest.raises(ValueError, match="Setup tasks must be followed with trigger rule ALL_SUCCESS."):
        dag.test()
