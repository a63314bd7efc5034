"""Parse time: building a DAG behaves as in Airflow 2.10.5 (edges, task groups, arguments, params).

Nothing here runs a DAG. Expected values and error texts were checked against a real Airflow
2.10.5 (a separate virtualenv with ``apache-airflow==2.10.5``) running the same statements with ``airflow.*`` imports.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest

from lexis_prefect.airflow.baseoperator import BaseOperator, chain, cross_downstream
from lexis_prefect.airflow.dag import DAG
from lexis_prefect.airflow.exceptions import (
    AirflowDagCycleException,
    AirflowException,
    DuplicateTaskIdFound,
    RemovedInAirflow3Warning,
    UnsupportedArgument,
)
from lexis_prefect.airflow.params import Param
from lexis_prefect.airflow.task_group import TaskGroup
from lexis_prefect.airflow.trigger_rule import TriggerRule


class Op(BaseOperator):
    """The smallest operator: returns ``value``."""

    template_fields = ("value",)

    def __init__(self, *, value: object = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.value = value

    def execute(self, context: object) -> object:
        return self.value


def ups(task: BaseOperator) -> list[str]:
    return sorted(task.upstream_task_ids)


def downs(task: BaseOperator) -> list[str]:
    return sorted(task.downstream_task_ids)


# --- >> and << ---------------------------------------------------------------------------------


def test_rshift_returns_the_right_operand_so_it_chains() -> None:
    with DAG("rshift", schedule=None):
        a, b, c = Op(task_id="a"), Op(task_id="b"), Op(task_id="c")
        assert (a >> b) is b
        b >> c
    assert ups(b) == ["a"] and ups(c) == ["b"] and downs(a) == ["b"]


def test_chained_rshift() -> None:
    with DAG("rshift_chain", schedule=None):
        a, b, c = Op(task_id="a"), Op(task_id="b"), Op(task_id="c")
        assert (a >> b >> c) is c
    assert ups(a) == [] and ups(b) == ["a"] and ups(c) == ["b"]


def test_lshift_returns_the_right_operand_and_sets_it_upstream() -> None:
    with DAG("lshift", schedule=None):
        a, b, c = Op(task_id="a"), Op(task_id="b"), Op(task_id="c")
        assert (a << b) is b
        assert (a << b << c) is c
    assert ups(a) == ["b"] and ups(b) == ["c"]


def test_list_on_the_left() -> None:
    with DAG("list_left", schedule=None):
        a, b, c, d = (Op(task_id=n) for n in "abcd")
        assert ([a, b] >> c) is c  # list has no >>: c.__rrshift__
        assert ([a, b] << d) is d  # d.__rlshift__: d upstream of a and b
    assert ups(c) == ["a", "b"]
    assert ups(a) == ["d"] and ups(b) == ["d"]


def test_list_on_the_right() -> None:
    with DAG("list_right", schedule=None):
        a, b, c, d = (Op(task_id=n) for n in "abcd")
        targets = [a, b]
        assert (c >> targets) is targets
        assert (d << targets) is targets
    assert downs(c) == ["a", "b"]
    assert ups(d) == ["a", "b"]


def test_list_to_list_is_a_type_error() -> None:
    with DAG("list_list", schedule=None):
        a, b = Op(task_id="a"), Op(task_id="b")
        with pytest.raises(TypeError, match="unsupported operand"):
            [a] >> [b]  # noqa: B015


def test_set_upstream_and_set_downstream() -> None:
    with DAG("set_methods", schedule=None):
        a, b, c = Op(task_id="a"), Op(task_id="b"), Op(task_id="c")
        a.set_downstream([b, c])
        c.set_upstream(b)
    assert downs(a) == ["b", "c"] and ups(c) == ["a", "b"]


def test_relations_to_a_non_operator_raise() -> None:
    # Airflow 2.10.5 fails here too, with AttributeError: 'str' object has no attribute 'update_relative'
    with DAG("non_op", schedule=None):
        a = Op(task_id="a")
        with pytest.raises(AirflowException, match="Relationships can only be set between Operators"):
            a >> "b"  # noqa: B015


def test_task_without_dag_joins_the_dag_of_its_relative() -> None:
    loose = Op(task_id="loose")
    with DAG("joins", schedule=None) as dag:
        a = Op(task_id="a")
    a >> loose
    assert loose.dag is dag and dag.has_task("loose") and ups(loose) == ["a"]


def test_relations_between_two_tasks_without_dag_raise() -> None:
    x, y = Op(task_id="x"), Op(task_id="y")
    with pytest.raises(AirflowException, match="don't have DAGs yet"):
        x >> y  # noqa: B015


def test_relations_across_two_dags_raise() -> None:
    d1, d2 = DAG("two_dags_1", schedule=None), DAG("two_dags_2", schedule=None)
    o1, o2 = Op(task_id="o1", dag=d1), Op(task_id="o2", dag=d2)
    with pytest.raises(AirflowException, match="more than one DAG") as err:
        o1 >> o2  # noqa: B015
    assert "two_dags_1" in str(err.value) and "two_dags_2" in str(err.value)
    assert not o1.downstream_task_ids and not o2.upstream_task_ids


# --- chain, cross_downstream -------------------------------------------------------------------


def test_chain_with_lists() -> None:
    with DAG("chain_lists", schedule=None):
        t = [Op(task_id=f"t{i}") for i in range(6)]
        chain(t[0], [t[1], t[2]], [t[3], t[4]], t[5])
    # Airflow 2.10.5 gives exactly this: equal-length neighbours are linked pairwise
    assert {x.task_id: ups(x) for x in t} == {
        "t0": [],
        "t1": ["t0"],
        "t2": ["t0"],
        "t3": ["t1"],
        "t4": ["t2"],
        "t5": ["t3", "t4"],
    }


def test_chain_of_tasks() -> None:
    with DAG("chain_plain", schedule=None):
        a, b, c = Op(task_id="a"), Op(task_id="b"), Op(task_id="c")
        chain(a, b, c)
    assert ups(b) == ["a"] and ups(c) == ["b"]


def test_chain_of_lists_with_different_lengths_raises() -> None:
    with DAG("chain_mismatch", schedule=None):
        a, b, c = Op(task_id="a"), Op(task_id="b"), Op(task_id="c")
        with pytest.raises(AirflowException, match=r"Chain not supported for different length Iterable. Got 2 and 1."):
            chain([a, b], [c])


def test_cross_downstream() -> None:
    with DAG("cross", schedule=None):
        a, b, c, d = (Op(task_id=n) for n in "abcd")
        cross_downstream([a, b], [c, d])
    assert ups(c) == ["a", "b"] and ups(d) == ["a", "b"]
    assert downs(a) == ["c", "d"] and downs(b) == ["c", "d"]


# --- TaskGroup ---------------------------------------------------------------------------------


def test_task_group_prefixes_and_nesting() -> None:
    with DAG("groups", schedule=None) as dag:
        with TaskGroup("job") as job:
            submit = Op(task_id="submit")
            with TaskGroup("inner") as inner:
                deep = Op(task_id="deep")
        with TaskGroup("flat", prefix_group_id=False) as flat:
            plain = Op(task_id="plain")
            with TaskGroup("sub") as sub:
                under_flat = Op(task_id="t")
    assert submit.task_id == "job.submit" and submit.label == "submit"
    assert inner.group_id == "job.inner" and inner.label == "inner"
    assert deep.task_id == "job.inner.deep"
    assert flat.group_id == "flat" and plain.task_id == "plain"
    # a prefix_group_id=False parent does not prefix its child group either (Airflow's child_id)
    assert sub.group_id == "sub" and under_flat.task_id == "sub.t"
    assert submit.task_group.group_id == job.group_id and deep.task_group.group_id == inner.group_id
    assert set(dag.task_ids) == {"job.submit", "job.inner.deep", "plain", "sub.t"}
    assert dag.has_task_group("job.inner") and dag.has_task_group("flat")


def test_group_to_group_links_leaves_to_roots() -> None:
    with DAG("g2g", schedule=None):
        with TaskGroup("g1") as g1:
            r1, l1 = Op(task_id="r1"), Op(task_id="l1")
            r1 >> l1
            Op(task_id="lone")  # root and leaf at once
        with TaskGroup("g2") as g2:
            r2, l2 = Op(task_id="r2"), Op(task_id="l2")
            r2 >> l2
        assert (g1 >> g2) is g2
    assert ups(r2) == ["g1.l1", "g1.lone"]
    assert ups(l2) == ["g2.r2"]
    assert downs(r1) == ["g1.l1"]


def test_task_to_group_links_to_its_roots_and_group_to_task_from_its_leaves() -> None:
    with DAG("x_group_y", schedule=None):
        x, y = Op(task_id="x"), Op(task_id="y")
        with TaskGroup("job") as job:
            submit, wait = Op(task_id="submit"), Op(task_id="wait")
            submit >> wait
            with TaskGroup("inner"):
                deep = Op(task_id="deep")
        assert (x >> job) is job
        assert (job >> y) is y
    assert downs(x) == ["job.inner.deep", "job.submit"]
    assert ups(y) == ["job.inner.deep", "job.wait"]
    assert ups(wait) == ["job.submit"] and ups(deep) == ["x"]


def test_group_edges_are_expanded_eagerly() -> None:
    """A task added to a group after ``>>`` gets no edge (Airflow 2.10.5: the same)."""
    with DAG("eager", schedule=None):
        x, y = Op(task_id="x"), Op(task_id="y")
        with TaskGroup("g") as g:
            first = Op(task_id="first")
        x >> g >> y
        late = Op(task_id="late", task_group=g)
    assert ups(first) == ["x"] and downs(first) == ["y"]
    assert ups(late) == [] and downs(late) == []
    assert downs(x) == ["g.first"]


def test_duplicate_group_id_raises() -> None:
    with DAG("dup_group", schedule=None):
        TaskGroup("g1")
        with pytest.raises(DuplicateTaskIdFound, match="group_id 'g1' has already been added to the DAG"):
            TaskGroup("g1")


def test_add_suffix_on_collision() -> None:
    with DAG("suffix", schedule=None) as dag:
        TaskGroup("g1")
        second = TaskGroup("g1", add_suffix_on_collision=True)
        third = TaskGroup("g1", add_suffix_on_collision=True)
        with second:
            t = Op(task_id="t")
    assert second.group_id == "g1__1" and third.group_id == "g1__2"
    assert t.task_id == "g1__1.t" and dag.has_task("g1__1.t")


def test_group_default_args_reach_its_tasks() -> None:
    with DAG("group_defaults", schedule=None, default_args={"retries": 3, "owner": "dag"}):
        with TaskGroup("outer", default_args={"retries": 8}):
            with TaskGroup("inner", default_args={"owner": "inner"}):
                t = Op(task_id="t")
            u = Op(task_id="u", retries=1)
    assert (t.retries, t.owner) == (8, "inner")
    assert (u.retries, u.owner) == (1, "dag")


def test_group_id_with_a_dot_is_refused() -> None:
    with DAG("group_dot", schedule=None):
        with pytest.raises(AirflowException, match="alphanumeric characters, dashes and underscores"):
            TaskGroup("a.b")


# --- ids, cycles -------------------------------------------------------------------------------


def test_duplicate_task_id_raises() -> None:
    with DAG("dup_task", schedule=None):
        Op(task_id="x")
        with pytest.raises(DuplicateTaskIdFound, match="Task id 'x' has already been added to the DAG"):
            Op(task_id="x")


def test_duplicate_task_id_inside_a_group_raises() -> None:
    with DAG("dup_task_group", schedule=None):
        Op(task_id="g.x")  # prefix_group_id=False-style id already taken at DAG level
        with TaskGroup("g"):
            with pytest.raises(DuplicateTaskIdFound, match="'g.x'"):
                Op(task_id="x")


@pytest.mark.parametrize("task_id", ["a b", "a/b", ""])
def test_invalid_task_id_raises(task_id: str) -> None:
    with DAG("bad_ids", schedule=None):
        with pytest.raises(AirflowException, match="has to be made of alphanumeric characters"):
            Op(task_id=task_id)


def test_task_id_rule_is_airflows_regex() -> None:
    """``^[\\w.-]+$`` with Python's Unicode ``\\w`` (Airflow 2.10.5 accepts 'ä'); at most 250 characters."""
    with DAG("unicode_ids", schedule=None):
        assert Op(task_id="ä.b-c_1").task_id == "ä.b-c_1"
        with pytest.raises(AirflowException, match="The key has to be less than 250 characters"):
            Op(task_id="x" * 251)


def test_cycle_raises_at_with_exit_naming_a_task() -> None:
    # Airflow itself raises this when the DagBag loads the file (dagbag.py: check_cycle), not at
    # the end of the `with` block; its dag.test() does not check at all (the run deadlocks and
    # fails). The shim raises as soon as the `with` block ends: the same error, earlier.
    with pytest.raises(AirflowDagCycleException, match=r"Cycle detected in DAG: cyclic\. Faulty task: (a|b|c)$"):
        with DAG("cyclic", schedule=None):
            a, b, c = Op(task_id="a"), Op(task_id="b"), Op(task_id="c")
            a >> b >> c >> a


def test_self_loop_is_a_cycle() -> None:
    with pytest.raises(AirflowDagCycleException, match="Faulty task: a"):
        with DAG("self_loop", schedule=None):
            a = Op(task_id="a")
            a >> a  # noqa: B015


def test_cycle_made_after_the_with_block_raises_at_dag_test() -> None:
    with DAG("late_cycle", schedule=None) as dag:
        a, b = Op(task_id="a"), Op(task_id="b")
        a >> b
    b >> a
    with pytest.raises(AirflowDagCycleException, match=r"Faulty task: (a|b)$"):
        dag.test()  # before any flow run is created: no Prefect server needed


def test_topological_sort_puts_upstreams_first() -> None:
    with DAG("topo", schedule=None) as dag:
        a, b, c, d = (Op(task_id=n) for n in "dcba")  # created in reverse name order
        d >> c >> [a, b]
        b >> a
    order = [t.task_id for t in dag.topological_sort()]
    for task in dag.tasks:
        for up in task.upstream_task_ids:
            assert order.index(up) < order.index(task.task_id)


# --- operator arguments ------------------------------------------------------------------------


def test_unknown_trigger_rule_names_the_task_and_the_value() -> None:
    with DAG("bad_rule", schedule=None):
        with pytest.raises(AirflowException, match=r"'bad_rule\.t'; received 'bogus'\.") as err:
            Op(task_id="t", trigger_rule="bogus")
    assert "The trigger_rule must be one of" in str(err.value)


@pytest.mark.parametrize(
    ("alias", "rule"),
    [("dummy", TriggerRule.ALWAYS), ("none_failed_or_skipped", TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)],
)
def test_deprecated_trigger_rule_aliases_warn_and_map(alias: str, rule: TriggerRule) -> None:
    with DAG(f"alias_{alias}", schedule=None):
        with pytest.warns(RemovedInAirflow3Warning, match=f"{alias} Trigger Rule is deprecated"):
            t = Op(task_id="t", trigger_rule=alias)
    assert t.trigger_rule == rule


def test_trigger_rule_enum_and_string_are_accepted() -> None:
    with DAG("rules_ok", schedule=None):
        a = Op(task_id="a", trigger_rule=TriggerRule.ALL_DONE)
        b = Op(task_id="b", trigger_rule="one_failed")
    assert a.trigger_rule == "all_done" and b.trigger_rule == TriggerRule.ONE_FAILED


def test_unsupported_operator_argument_names_the_task_and_the_argument() -> None:
    with DAG("bad_kwarg", schedule=None):
        with pytest.raises(UnsupportedArgument) as err:
            Op(task_id="t", bogus=1)
    # Airflow's own text; the class is also an AirflowException and a TypeError
    assert str(err.value) == "Invalid arguments were passed to Op (task_id: t). Invalid arguments were:\n**kwargs: {'bogus': 1}"
    assert isinstance(err.value, AirflowException) and isinstance(err.value, TypeError)


@pytest.mark.parametrize(("name", "value"), [("depends_on_past", True), ("pool", "x"), ("sla", timedelta(hours=1))])
def test_accepted_argument_that_is_not_honoured_warns(name: str, value: object) -> None:
    with DAG(f"ignored_{name}", schedule=None):
        with pytest.warns(UserWarning, match=rf"task_id: t\): {name}=") as record:
            t = Op(task_id="t", **{name: value})
    assert any(name in str(w.message) for w in record)
    assert getattr(t, name) == value  # kept, as Airflow keeps it


def test_not_honoured_argument_at_its_default_does_not_warn() -> None:
    with DAG("ignored_defaults", schedule=None, default_args={"depends_on_past": False, "pool": None}):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Op(task_id="t", depends_on_past=False, email_on_failure=False, owner="me", queue="q")


def test_not_honoured_argument_from_default_args_warns() -> None:
    with DAG("ignored_from_defaults", schedule=None, default_args={"depends_on_past": True}):
        with pytest.warns(UserWarning, match="depends_on_past=True"):
            Op(task_id="t")


def test_positional_arguments_raise() -> None:
    with DAG("positional", schedule=None):
        with pytest.raises(AirflowException, match="Use keyword arguments when initializing operators"):
            Op("t")  # type: ignore[misc]


def test_missing_required_argument_raises() -> None:
    class Needs(BaseOperator):
        def __init__(self, *, foo: int, bar: int, **kwargs: object) -> None:
            super().__init__(**kwargs)

    with DAG("missing_arg", schedule=None):
        with pytest.raises(AirflowException, match="missing keyword arguments 'bar', 'foo'"):
            Needs(task_id="t")
        with pytest.raises(AirflowException, match="missing keyword argument 'bar'"):
            Needs(task_id="u", foo=1)


def test_retries_retry_delay_and_execution_timeout_types() -> None:
    with DAG("arg_types", schedule=None):
        with pytest.raises(ValueError, match="execution_timeout must be timedelta object but passed as type: <class 'int'>"):
            Op(task_id="secs", execution_timeout=5)
        t = Op(task_id="ok", retries=None, retry_delay=7)
        u = Op(task_id="str_retries", retries="2")  # Airflow converts it (with a log warning)
    assert t.retries == 0 and t.retry_delay == timedelta(seconds=7)
    assert t.execution_timeout is None and t.retry_delay == timedelta(seconds=7)
    assert u.retries == 2 and u.retry_delay == timedelta(seconds=300)  # Airflow's default retry_delay


class Base(BaseOperator):
    def __init__(self, *, foo: object, mid: object = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.foo, self.mid = foo, mid

    def execute(self, context: object) -> None:
        return None


class Sub(Base):
    def __init__(self, *, bar: object, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.bar = bar


def test_default_args_fill_every_level_of_the_class_hierarchy_and_task_kwargs_win() -> None:
    defaults = {"foo": 1, "bar": 2, "mid": "m", "retries": 3, "owner": "me", "email": ["x@y"], "unknown_key": 1}
    with DAG("defaults", schedule=None, default_args=defaults) as dag:
        s = Sub(task_id="s")
        s2 = Sub(task_id="s2", retries=5, foo=9, owner="you")
        s3 = Sub(task_id="s3", default_args={"retries": 1, "bar": "own"})
    assert (s.foo, s.bar, s.mid, s.retries, s.owner, s.email) == (1, 2, "m", 3, "me", ["x@y"])
    assert (s2.foo, s2.bar, s2.mid, s2.retries, s2.owner) == (9, 2, "m", 5, "you")
    assert (s3.foo, s3.bar, s3.retries, s3.owner) == (1, "own", 1, "me")
    assert dag.default_args == defaults  # the unknown key is ignored, as in Airflow
    assert not hasattr(s, "unknown_key")


def test_default_args_params_merge() -> None:
    """Checked against Airflow 2.10.5: default_args params win over DAG params, task params over both."""
    with DAG(
        "defaults_params",
        schedule=None,
        params={"a": 1, "c": 0},
        default_args={"params": {"b": 2, "c": 9}, "retries": 1},
    ) as dag:
        s = Op(task_id="s")
        s3 = Op(task_id="s3", params={"a": 7, "d": 4}, default_args={"params": {"e": 5}})
    assert dict(dag.params) == {"a": 1, "c": 9, "b": 2}
    assert "params" not in dag.default_args and dag.default_args == {"retries": 1}
    assert dict(s.params) == {"a": 1, "c": 9, "b": 2}
    assert dict(s3.params) == {"a": 7, "c": 9, "b": 2, "d": 4, "e": 5}
    assert dict(dag.params) == {"a": 1, "c": 9, "b": 2}  # the task's own params did not leak into the DAG's


def test_operator_outside_a_dag_is_fine_until_run() -> None:
    t = Op(task_id="alone")
    assert not t.has_dag() and t.task_group is None
    with pytest.raises(AirflowException, match="has not been assigned to a DAG"):
        t.dag  # noqa: B018


def test_operator_with_explicit_dag() -> None:
    dag = DAG("explicit", schedule=None)
    t = Op(task_id="t", dag=dag)
    assert t.dag is dag and dag.get_task("t") is t and dag.task_count == 1
    with pytest.raises(AirflowException, match="Task nope not found"):
        dag.get_task("nope")


def test_fail_stop_dag_refuses_other_trigger_rules() -> None:
    with DAG("fail_stop_rules", schedule=None, fail_stop=True):
        Op(task_id="ok")  # all_success is allowed
        with pytest.raises(AirflowException, match="A 'fail-stop' dag can only have all_success trigger rule"):
            Op(task_id="x", trigger_rule="all_done")


def test_xcom_arg_in_a_template_field_makes_an_edge() -> None:
    with DAG("xcom_arg_edges", schedule=None):
        a, c = Op(task_id="a"), Op(task_id="c")
        b = Op(task_id="b", value=[{"k": a.output["x"]}])
        assert (a.output >> c) is c
    assert ups(b) == ["a"] and ups(c) == ["a"]
    assert str(a.output) == "{{ task_instance.xcom_pull(task_ids='a', dag_id='xcom_arg_edges', key='return_value') }}"


# --- DAG arguments -----------------------------------------------------------------------------


def test_schedule_interval_none_warns() -> None:
    with pytest.warns(RemovedInAirflow3Warning, match="Param `schedule_interval` is deprecated"):
        dag = DAG("si_none", schedule_interval=None)
    assert dag.schedule_interval is None and dag.timetable.summary == "None"


def test_schedule_and_schedule_interval_both_set_raise() -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="At most one allowed for args 'schedule_interval', 'timetable', and 'schedule'"):
        DAG("both", schedule="@daily", schedule_interval="@daily", start_date=start)


def test_schedule_and_schedule_interval_none_together_are_accepted() -> None:
    with pytest.warns(RemovedInAirflow3Warning):
        DAG("both_none", schedule=None, schedule_interval=None)
    with pytest.warns(RemovedInAirflow3Warning):
        DAG("cron_and_none", schedule="@daily", schedule_interval=None, start_date=datetime(2024, 1, 1))


def test_dag_arguments_lexis_uses_are_accepted() -> None:
    dag = DAG(
        "lexis_like",
        description="d",
        schedule=None,
        start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        tags=["lexis", "x" * 100],
        access_control={"role": {"can_read"}},
        max_active_runs=1,
        max_active_tasks=4,
        render_template_as_native_obj=True,
        dagrun_timeout=timedelta(hours=1),
        doc_md="# doc",
    )
    assert dag.dag_id == "lexis_like" and dag.tags == ["lexis", "x" * 100]
    assert dag.max_active_tasks == 4 and dag.render_template_as_native_obj is True
    assert dag.timeout_seconds == 3600 and dag.description == "d"


def test_tag_longer_than_100_characters_raises() -> None:
    with pytest.raises(AirflowException, match="tag cannot be longer than 100 characters"):
        DAG("long_tag", schedule=None, tags=["x" * 101])


def test_invalid_dag_id_raises() -> None:
    with pytest.raises(AirflowException, match="has to be made of alphanumeric characters"):
        DAG("my dag", schedule=None)


def test_dag_is_a_prefect_flow_named_by_its_dag_id() -> None:
    from prefect import Flow

    with DAG("flow.like-dag_1", schedule=None) as dag:
        Op(task_id="a")
    assert isinstance(dag, Flow)
    assert dag.name == "flow.like-dag_1"
    assert callable(dag.fn)


def test_with_block_makes_operators_join_and_nests() -> None:
    with DAG("outer_dag", schedule=None) as outer:
        a = Op(task_id="a")
        with DAG("inner_dag", schedule=None) as inner:
            b = Op(task_id="b")
        c = Op(task_id="c")
    assert a.dag is outer and c.dag is outer and b.dag is inner
    assert outer.task_ids == ["a", "c"] and inner.task_ids == ["b"]
    assert [t.task_id for t in outer.roots] == ["a", "c"] and [t.task_id for t in outer.leaves] == ["a", "c"]


# --- params as flow parameters -----------------------------------------------------------------


def test_parameters_schema_has_each_param_with_its_json_schema() -> None:
    with DAG(
        "schema",
        schedule=None,
        params={
            "x": Param("x", type="string", enum=["x", "y"], description="d"),
            "n": Param(5, type="integer", minimum=1),
            "plain": 3,
            "job": Param({"a": 1}, schema={"type": "object", "required": ["a"]}),
        },
    ) as dag:
        Op(task_id="t")
    schema = dag.parameters.model_dump()
    props = schema["properties"]
    assert list(props) == ["x", "n", "plain", "job"]
    assert props["x"]["type"] == "string" and props["x"]["enum"] == ["x", "y"]
    assert props["x"]["description"] == "d" and props["x"]["default"] == "x"
    assert props["n"]["type"] == "integer" and props["n"]["minimum"] == 1 and props["n"]["default"] == 5
    assert props["plain"]["default"] == 3 and "type" not in props["plain"]  # Param(3): no schema
    assert props["job"]["type"] == "object" and props["job"]["required"] == ["a"] and props["job"]["default"] == {"a": 1}
    assert schema.get("required", []) == []
    json.dumps(schema)  # what the server stores


def test_param_without_default_is_required() -> None:
    with DAG("required_param", schedule=None, params={"tok": Param(type="string"), "opt": Param("o")}) as dag:
        Op(task_id="t")
    schema = dag.parameters.model_dump()
    assert schema["required"] == ["tok"]
    assert "default" not in schema["properties"]["tok"]


def test_params_given_as_a_params_dict_keep_their_schema() -> None:
    # (as default_args["params"] a ParamsDict loses its schemas in Airflow 2.10.5 too: dict.update)
    from lexis_prefect.airflow.params import ParamsDict

    given = ParamsDict({"x": Param(1, type="integer", description="d")})
    param = DAG("params_dict", schedule=None, params=given).params.get_param("x")
    assert param.schema == {"type": "integer"} and param.description == "d"


@pytest.mark.parametrize("name", ["a-b", "with space", "class", "1x"])
def test_param_name_that_is_not_an_identifier_raises(name: str) -> None:
    with pytest.raises(UnsupportedArgument, match=repr(name)):
        DAG("bad_param_name", schedule=None, params={name: 1})


def _nested_model_schema() -> dict:
    """What ``Model.model_json_schema()`` gives for a pydantic model with a nested model and an enum."""
    import enum

    from pydantic import BaseModel

    class Queue(enum.Enum):
        qcpu = "qcpu"
        qgpu = "qgpu"

    class Requirements(BaseModel):
        cpus: int
        queue: Queue

    class Job(BaseModel):
        requirements: Requirements
        name: str

    return Job.model_json_schema()


def test_param_schema_with_refs_from_a_pydantic_model() -> None:
    schema = _nested_model_schema()
    assert "$defs" in schema  # the case: refs local to the Param's schema
    good = {"requirements": {"cpus": 4, "queue": "qcpu"}, "name": "n"}
    with DAG("ref_schema", schedule=None, params={"job": Param(good, schema=schema)}) as dag:
        Op(task_id="t")
    assert dag.params["job"] == good  # Airflow's own validation works with the refs
    flow_schema = dag.parameters.model_dump()
    bad = {"job": {"requirements": {"cpus": 4, "queue": "nope"}, "name": "n"}}
    # the flow's schema (what the UI renders and the server enforces) still knows the nested rules
    jsonschema.validate({"job": good}, flow_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, flow_schema)


# --- a DAG file as a Prefect entrypoint --------------------------------------------------------


def test_load_flow_from_entrypoint_returns_the_dag(tmp_path) -> None:  # noqa: ANN001
    from prefect.flows import load_flow_from_entrypoint

    path = tmp_path / "lexis_like_dag.py"
    path.write_text(
        textwrap.dedent(
            """
            from lexis_prefect.airflow.baseoperator import BaseOperator
            from lexis_prefect.airflow.dag import DAG
            from lexis_prefect.airflow.params import Param
            from lexis_prefect.airflow.task_group import TaskGroup

            class Noop(BaseOperator):
                def execute(self, context):
                    return None

            with DAG(
                "from_file",
                schedule=None,
                params={"access_token": Param("abc", type="string", description="token")},
            ) as dag:
                start = Noop(task_id="start")
                with TaskGroup("job") as job:
                    Noop(task_id="submit") >> Noop(task_id="wait")
                start >> job

            if __name__ == "__main__":
                raise SystemExit("must not run when loaded as an entrypoint")
            """
        )
    )
    dag = load_flow_from_entrypoint(f"{path}:dag")
    assert type(dag).__name__ == "DAG" and dag.dag_id == "from_file" and dag.name == "from_file"
    assert dag.task_ids == ["start", "job.submit", "job.wait"]
    assert dag.get_task("job.submit").upstream_task_ids == {"start"}
    assert dag.fileloc == str(path)
    prop = dag.parameters.model_dump()["properties"]["access_token"]
    # A secret param takes a Secret block reference through a deployment: the server refuses the text.
    assert prop["block_type_slug"] == "secret" and prop["required"] == ["$ref"] and prop["description"] == "token"
