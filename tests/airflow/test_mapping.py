"""Dynamic task mapping: the errors Airflow 2.10.5 raises at definition, and what a run of a mapped
task looks like on Prefect (per-index task runs, states, XComs, the artifact).

The statements of ``DEFINITION_ERRORS`` were run on a real Airflow 2.10.5 (a separate virtualenv,
each inside ``with DAG(...)``), which raised exactly these exception types and messages. The run
semantics (states per map index) are in the conformance suite (``dags/mapping_*.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pendulum
import pytest

from lexis_prefect.airflow.dag import DAG
from lexis_prefect.airflow.decorators import task, task_group
from lexis_prefect.airflow.mapping.operator import MappedOperator
from lexis_prefect.airflow.operators import BashOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")


@task
def f(x: Any, y: int = 1) -> Any:
    return x


@task_group
def grp(a: Any) -> None:
    f(a)


@task_group
def grp_inner(a: Any) -> None:
    f.expand(x=[a])


DEFINITION_ERRORS: dict[str, tuple[str, type[Exception], str]] = {
    "expand_no_args": ("f.expand()", TypeError, "no arguments to expand against"),
    "expand_unknown": ("f.expand(z=[1])", TypeError, "expand() got an unexpected keyword argument 'z'"),
    "expand_unknown_two": ("f.expand(z=[1], w=[2])", TypeError, "expand() got unexpected keyword arguments 'z', 'w'"),
    "expand_not_mappable": ("f.expand(x=1)", ValueError, "expand() got an unexpected type 'int' for keyword argument 'x'"),
    "expand_str": ("f.expand(x='abc')", ValueError, "expand() got an unexpected type 'str' for keyword argument 'x'"),
    "expand_context_key": ("f.expand(ti=[1])", ValueError, "cannot call expand() on task context variable 'ti'"),
    "partial_unknown": ("f.partial(z=1)", TypeError, "partial() got an unexpected keyword argument 'z'"),
    "partial_dup": ("f.partial(x=1).partial(x=2)", TypeError, "duplicate partial argument: x"),
    "expand_kwargs_bad": ("f.expand_kwargs(5)", TypeError, "expected XComArg or list[dict], not int"),
    "expand_kwargs_items": ("f.expand_kwargs([1, 2])", TypeError, "expected XComArg or list[dict], not list"),
    "custom_key": (
        "f.expand(x=f.override(task_id='up')(1)['k'])",
        ValueError,
        "cannot map over XCom with custom key 'k' from <Task(_PythonDecoratedOperator): up>",
    ),
    "classic_expand_unknown": (
        "BashOperator.partial(task_id='b').expand(nope=['x'])",
        TypeError,
        "BashOperator.expand() got an unexpected keyword argument 'nope'",
    ),
    "classic_partial_unknown": (
        "BashOperator.partial(task_id='b', nope=1)",
        TypeError,
        "BashOperator.partial() got an unexpected keyword argument 'nope'",
    ),
    "classic_expand_not_mappable": (
        "BashOperator.partial(task_id='b').expand(bash_command='echo')",
        ValueError,
        "BashOperator.expand() got an unexpected type 'str' for keyword argument bash_command",
    ),
    "classic_dup": (
        "BashOperator.partial(task_id='b', bash_command='x').expand(bash_command=['y'])",
        TypeError,
        "unmappable or already specified argument: bash_command",
    ),
    "classic_no_args": ("BashOperator.partial(task_id='b').expand()", TypeError, "no arguments to expand against"),
    "always_xcom": (
        "f.override(trigger_rule='always').expand(x=f.override(task_id='up2')(1))",
        ValueError,
        "Task-generated mapping within a task using 'expand' is not allowed with trigger rule 'always'.",
    ),
    "map_task": ("f.override(task_id='up3')(1).map(f)", ValueError, "map() argument must be a plain function, not a @task operator"),
    "map_custom_key": ("f.override(task_id='up4')(1)['k'].map(len)", ValueError, "cannot map against non-return XCom"),
    "group_no_args": ("grp.expand()", TypeError, "no arguments to expand against"),
    "group_unknown": ("grp.expand(q=[1])", TypeError, "expand() got an unexpected keyword argument 'q'"),
    "group_kwargs_bad": ("grp.expand_kwargs(3)", TypeError, "expected XComArg or list[dict], not int"),
    "nested_mapped_op": (
        "grp_inner.expand(a=[1])",
        NotImplementedError,
        "operator expansion in an expanded task group is not yet supported",
    ),
    "sla": (
        "BashOperator.partial(task_id='s', sla=pendulum.duration(seconds=1)).expand(bash_command=['x'])",
        Exception,  # AirflowException
        "SLAs are unsupported with mapped tasks. Please set `sla=None` for task 's'.",
    ),
}


@pytest.mark.parametrize("name", sorted(DEFINITION_ERRORS))
def test_definition_errors_are_airflows(name: str) -> None:
    code, error, message = DEFINITION_ERRORS[name]
    with DAG(dag_id=f"d_{name}", schedule=None, start_date=START), pytest.raises(error) as excinfo:
        eval(code)  # noqa: S307 - the statements above, as a DAG file would write them
    assert str(excinfo.value) == message


def test_a_nested_mapped_task_group_is_refused_naming_the_feature() -> None:
    @task_group
    def outer(a: Any) -> None:
        grp.expand(a=[a])

    with DAG(dag_id="nested", schedule=None, start_date=START), pytest.raises(TypeError, match="nested mapped task groups"):
        outer.expand(a=[1])


def test_a_mapped_task_is_one_node_with_its_edges_and_partial_arguments() -> None:
    with DAG(dag_id="nodes", schedule=None, start_date=START) as dag:
        up = f.override(task_id="up")(1)
        mapped = BashOperator.partial(task_id="echo", retries=2, env={"A": "1"}).expand(bash_command=up.map(str))
        tf = f.partial(y=3).expand(x=up)
    assert isinstance(mapped, MappedOperator)
    assert (mapped.task_id, mapped.retries, mapped.task_type) == ("echo", 2, "BashOperator")
    assert dag.get_task("echo").upstream_task_ids == {"up"}
    assert isinstance(tf.operator, MappedOperator) and tf.operator.upstream_task_ids == {"up"}
    assert repr(mapped) == "<Mapped(BashOperator): echo>"


@pytest.mark.usefixtures("prefect_harness")
def test_each_map_index_is_a_prefect_task_run_and_states_are_per_index() -> None:
    from prefect.runtime import task_run

    @task(map_index_template="{{ x }}")
    def double(x: int) -> list[Any]:
        if x == 2:
            raise ValueError("two fails")
        return [2 * x, task_run.get_name()]

    @task(trigger_rule="all_done")
    def total(values: Any) -> int:
        return sum(v[0] for v in values)

    with DAG(dag_id="per_index", schedule=None, start_date=START) as dag:
        total(double.expand(x=[1, 2, 3]))
    result = dag.test()
    assert result.state == "success"
    assert result.tasks == {"double": ["success", "failed", "success"], "total": "success"}
    assert json.loads(json.dumps(result.to_json()))["tasks"]["double"] == ["success", "failed", "success"]
    assert result.xcom_pull("double") == [[2, "double[0]"], [6, "double[2]"]]
    assert result.xcom_pull("total") == 8


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_leaf_index_fails_the_run() -> None:
    @task
    def check(x: int) -> None:
        if x:
            raise ValueError("only index 0 passes")

    with DAG(dag_id="leaf_index", schedule=None, start_date=START) as dag:
        check.expand(x=[0, 1])
    result = dag.test()
    assert (result.state, result.tasks) == ("failed", {"check": ["success", "failed"]})
