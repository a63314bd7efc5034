"""TaskFlow as in Airflow 2.10.5: ``@task`` (and its flavours), ``@task_group`` and ``@dag``.

DAGs run for real with ``dag.test()`` on Prefect. Task ids, states, XComs and error texts were
checked by running the same statements and DAGs on a real Airflow 2.10.5 (a separate virtualenv with ``apache-airflow==2.10.5``,
``dag.test()``), which printed identical results except where a comment says otherwise.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from lexis_prefect.airflow.dag import DAG
from lexis_prefect.airflow.decorators import DagParam, dag, task, task_group
from lexis_prefect.airflow.exceptions import UnsupportedArgument
from lexis_prefect.airflow.operators import BashOperator, EmptyOperator, PythonOperator
from lexis_prefect.airflow.params import Param
from lexis_prefect.airflow.sensors import PokeReturnValue
from lexis_prefect.airflow.task_group import TaskGroup
from lexis_prefect.airflow.xcom_arg import XComArg
from tests.airflow.helpers import Errors

needs_prefect = pytest.mark.usefixtures("prefect_harness")


@task
def expect(value: Any, expected: Any) -> None:
    """A checker task: fails unless it received ``expected`` (type included)."""
    if value != expected or type(value) is not type(expected):
        raise AssertionError(f"got {value!r}, expected {expected!r}")


# --- parse time -------------------------------------------------------------------------------------


def test_calling_a_task_creates_the_operator_and_returns_its_xcomarg() -> None:
    @task(retries=3, task_id="renamed")
    def produce(x: int) -> int:
        """Docstring becomes doc_md."""
        return x

    @task
    def consume(a: int, b: int = 0) -> None: ...

    with DAG("calls", schedule=None) as d:
        out = produce(1)
        consume(out, b=produce.override(task_id="other")(2))
    assert isinstance(out, XComArg) and out.operator is d.get_task("renamed")
    op = d.get_task("renamed")
    assert (op.retries, op.op_args, op.op_kwargs, op.doc_md, op.multiple_outputs) == (3, (1,), {}, "Docstring becomes doc_md.", False)
    assert type(op).__name__ == "_PythonDecoratedOperator" and op.custom_operator_name == "@task"
    assert d.get_task("consume").upstream_task_ids == {"renamed", "other"}  # XComArgs in arguments make edges
    assert produce.function.__name__ == "produce" and produce.__wrapped__ is produce.function


def test_duplicate_task_ids_get_airflows_suffixes() -> None:
    @task
    def t() -> int:
        return 1

    with DAG("dups", schedule=None) as d:
        t()
        t()
        t.override(task_id="t")()
        with TaskGroup("g"):
            t()
            t()
        t.override(task_id="t__5")()
        t()
    # Airflow 2.10.5 gives exactly these ids for the same statements
    assert sorted(d.task_ids) == ["g.t", "g.t__1", "t", "t__1", "t__2", "t__5", "t__6"]


def test_multiple_outputs_is_inferred_from_a_mapping_return_annotation() -> None:
    @task
    def typed() -> dict[str, int]:
        return {"a": 1}

    @task
    def quoted() -> "dict[str,int]":  # noqa: UP037 - a string annotation is evaluated too
        return {"a": 1}

    @task
    def plain_dict() -> dict:
        return {}

    @task
    def listed() -> list:
        return [1]

    @task
    def unannotated():  # noqa: ANN202
        return {}

    @task(multiple_outputs=False)
    def forced_off() -> dict[str, int]:
        return {}

    # Airflow 2.10.5: True, True, False for typed / quoted / listed
    assert [f.multiple_outputs for f in (typed, quoted, plain_dict, listed, unannotated, forced_off)] == [True, True, True, False, False, False]


def test_signature_is_checked_when_the_task_is_created() -> None:
    def context_last(x, ti): ...  # noqa: ANN001, ANN202
    def context_first(ti, x): ...  # noqa: ANN001, ANN202
    def context_default(x, ds="a"): ...  # noqa: ANN001, ANN202
    def one(x): ...  # noqa: ANN001, ANN202

    with DAG("sig", schedule=None):
        task(context_last)(1)  # a context key without default gets None
        with pytest.raises(ValueError, match="which isn't valid: non-default argument follows default argument"):
            task(context_first)(1)
        with pytest.raises(ValueError, match="^Context key parameter ds can't have a default other than None$"):
            task(context_default)(1)
        with pytest.raises(TypeError, match="^too many positional arguments$"):
            task(one)(1, 2)
    with pytest.raises(TypeError, match="^@task does not support methods$"):

        class C:
            @task
            def m(self) -> None: ...


def test_unsupported_taskflow_features_say_so() -> None:
    with pytest.raises(AttributeError, match="@task.docker is not supported by lexis-prefect"):
        task.docker  # noqa: B018
    with pytest.raises(TypeError, match="No args allowed while using @task, use kwargs instead"):
        task(0)
    with pytest.raises(AttributeError, match="'str' object has no attribute '__annotations__'"):
        task("x")  # Airflow 2.10.5 fails the same way


# --- running --------------------------------------------------------------------------------------------


@needs_prefect
def test_values_flow_through_xcomargs() -> None:
    errors = Errors()

    @task
    def numbers(n: int) -> list[int]:
        return list(range(n))

    @task(multiple_outputs=True)
    def stats(values: list[int]) -> dict[str, int]:
        return {"total": sum(values), "count": len(values)}

    @task
    def annotated() -> dict[str, int]:
        return {"a": 1}

    @task
    def nothing() -> None:
        return None

    @task
    def plain() -> dict[str, int]:
        return {"a": 1}

    @task
    def not_mo():  # noqa: ANN202
        return {"a": 1}

    @task
    def read_context(ti: Any = None, params: Any = None, **context: Any) -> str:
        assert ti.task_id == "read_context" and context["dag"].dag_id == "values"
        return params["who"]

    with DAG("values", schedule=None, params={"who": "ann"}, default_args={"on_failure_callback": errors}) as d:
        summary = stats(numbers(4))
        expect.override(task_id="check_total")(summary["total"], 6)
        expect.override(task_id="check_whole")(summary, {"total": 6, "count": 4})
        expect.override(task_id="check_annotated")(annotated()["a"], 1)
        expect.override(task_id="check_none")(nothing(), None)  # returned None: nothing pushed, resolves to None
        expect.override(task_id="check_missing_mo_key")(plain()["b"], None)  # multiple_outputs: missing key is None
        expect.override(task_id="check_missing_key")(not_mo()["b"], None)  # otherwise XComNotFound
        expect.override(task_id="check_context")(read_context(), "ann")
        expect.override(task_id="check_operator_output")(BashOperator(task_id="echo", bash_command="echo {{ params.who }}").output, "ann")
    states = d.test().tasks
    assert states.pop("check_missing_key") == "failed"
    assert set(states.values()) == {"success"}, states
    # Airflow 2.10.5: XComNotFound: XComArg result from not_mo at values with key="b" is not found!
    assert list(errors.seen) == ["check_missing_key"]
    assert errors.seen["check_missing_key"].startswith("XComNotFound: XComArg result from not_mo at values with key=")


@needs_prefect
def test_default_args_named_like_a_parameter_fill_it() -> None:
    @task
    def uses_foo(foo: str) -> str:
        return foo

    @task
    def own_default(foo: str = "own") -> str:
        return foo

    with DAG("hook", schedule=None, default_args={"foo": "from-default"}) as d:
        expect.override(task_id="check_filled")(uses_foo(), "from-default")
        expect.override(task_id="check_default_wins_over_own")(own_default(), "from-default")
        expect.override(task_id="check_given_wins")(uses_foo(foo="given"), "given")
        # given positionally, it collides with the filled keyword (Airflow 2.10.5: the same TypeError)
        with pytest.raises(TypeError, match="^multiple values for argument 'foo'$"):
            uses_foo("given")
    assert set(d.test().tasks.values()) == {"success"}


@needs_prefect
def test_branch_short_circuit_sensor_and_bash_flavours() -> None:
    errors = Errors()

    @task.branch
    def choose(params: Any = None) -> str:
        return params["path"]

    @task.short_circuit
    def gate() -> int:
        return 0

    @task.sensor(poke_interval=0.05, timeout=5)
    def wait_for(n: int) -> PokeReturnValue:
        wait_for.calls += 1
        return PokeReturnValue(is_done=wait_for.calls >= n, xcom_value={"calls": wait_for.calls})

    wait_for.calls = 0  # type: ignore[attr-defined]

    @task.bash
    def say(word: str) -> str:
        return "echo {{ params.path }}-" + word  # the returned command is rendered too

    @task.bash
    def empty() -> str:
        return "  "

    with DAG("flavours", schedule=None, params={"path": "a"}, default_args={"on_failure_callback": errors}) as d:
        choose() >> [EmptyOperator(task_id="a"), EmptyOperator(task_id="b")]
        gate() >> EmptyOperator(task_id="gated")
        expect.override(task_id="check_sensor")(wait_for(3), {"calls": 3})
        expect.override(task_id="check_bash")(say("x"), "a-x")
        empty()
    assert d.test().tasks == {
        "choose": "success",
        "a": "success",
        "b": "skipped",
        "gate": "success",
        "gated": "skipped",
        "wait_for": "success",
        "check_sensor": "success",
        "say": "success",
        "check_bash": "success",
        "empty": "failed",
    }
    assert errors.seen == {"empty": "TypeError: The returned value from the TaskFlow callable must be a non-empty string."}
    assert type(d.get_task("wait_for")).__name__ == "DecoratedSensorOperator"


@needs_prefect
def test_task_group_decorator() -> None:
    @task
    def inc(x: int = 0) -> int:
        return x + 1

    @task_group
    def twice(x: int) -> Any:
        """Group doc."""
        return inc.override(task_id="second")(inc.override(task_id="first")(x))

    @task_group(group_id="named", tooltip="given")
    def side() -> None:
        inc()
        inc()

    with DAG("groups", schedule=None) as d:
        r1 = twice(1)
        r2 = twice(r1)  # a second call gets the suffix __1, and chains on the first's return value
        group = side()
        expect.override(task_id="check")(r2, 5)
        group >> EmptyOperator(task_id="after_side")
    assert isinstance(r1, XComArg) and isinstance(group, TaskGroup)
    assert sorted(d.task_group_dict) == ["named", "twice", "twice__1"]
    assert d.task_group_dict["twice"].tooltip == "Group doc." and d.task_group_dict["named"].tooltip == "given"
    assert d.get_task("after_side").upstream_task_ids == {"named.inc", "named.inc__1"}
    assert d.test().tasks == {
        "twice.first": "success",
        "twice.second": "success",
        "twice__1.first": "success",
        "twice__1.second": "success",
        "named.inc": "success",
        "named.inc__1": "success",
        "check": "success",
        "after_side": "success",
    }


# --- @dag -------------------------------------------------------------------------------------------------


@needs_prefect
def test_dag_decorator_params_resolve_at_run_time() -> None:
    seen: dict[str, Any] = {}

    @dag(schedule=None, params={"p": Param(1, type="integer")})
    def deco_dag(a: int = 2, b: str = "x", p: int = 4) -> None:
        """Doc of deco_dag."""

        @task
        def show(name: str, value: Any, params: Any = None, dag_run: Any = None) -> None:
            seen[name] = (value, params[name], (dag_run.conf or {}).get(name))

        show("a", a)
        show("b", b)
        show("p", p)
        PythonOperator(task_id="op", python_callable=lambda v: seen.__setitem__("op", v), op_kwargs={"v": a})

    d = deco_dag()
    assert isinstance(d, DAG) and d.dag_id == "deco_dag" and d.doc_md == "Doc of deco_dag."
    # each argument became a param (the existing Param p keeps its schema and takes the new default)
    assert {k: d.params[k] for k in ("a", "b", "p")} == {"a": 2, "b": "x", "p": 4}
    assert d.params.get_param("p").schema == {"type": "integer"} and d.params.get_param("a").schema == {}
    # ... and a parameter of the Prefect flow
    assert list(inspect.signature(d.fn).parameters) == ["p", "a", "b"]
    assert set(d.parameters.properties) == {"p", "a", "b"}

    assert set(d.test().tasks.values()) == {"success"}
    assert seen == {"a": (2, 2, None), "b": ("x", "x", None), "p": (4, 4, None), "op": 2}

    # DagParam resolution: conf, else the default; not validated against a schema-less param
    seen.clear()
    assert set(d.test(run_conf={"a": "notint", "b": "echo"}).tasks.values()) == {"success"}
    assert seen == {"a": ("notint", "notint", "notint"), "b": ("echo", "echo", "echo"), "p": (4, 4, None), "op": "notint"}


def test_dag_decorator_arguments() -> None:
    @dag("explicit_id", schedule=None)
    def f(x: int) -> None:
        assert isinstance(x, DagParam)

    d = f(7)
    assert d.dag_id == "explicit_id" and d.params["x"] == 7 and d.fileloc == __file__
    with pytest.raises(TypeError, match="too many positional arguments"):
        f(1, 2)
    with pytest.raises(TypeError, match="missing a required argument: 'x'"):
        f()
    with pytest.raises(TypeError, match="^dag\\(\\) got an unexpected keyword argument 'nonsense'$"):
        dag(nonsense=1)
