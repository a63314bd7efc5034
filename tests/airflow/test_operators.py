"""The core operators run as in Airflow 2.10.5: Empty, Python, BranchPython, ShortCircuit, Bash.

Every DAG here runs for real with ``dag.test()`` on Prefect. The expected states, XComs and error
texts were checked by running the same DAGs with ``dag.test()`` on a real Airflow 2.10.5
(a separate virtualenv with ``apache-airflow==2.10.5``, SequentialExecutor, SQLite): both printed identical results, except where
a comment says otherwise.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lexis_prefect.airflow import operators
from lexis_prefect.airflow.dag import DAG
from lexis_prefect.airflow.exceptions import AirflowException, RemovedInAirflow3Warning
from lexis_prefect.airflow.baseoperator import BaseOperator
from lexis_prefect.airflow.operators import (
    BaseBranchOperator,
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    PythonOperator,
    ShortCircuitOperator,
    SkipMixin,
    get_current_context,
)
from lexis_prefect.airflow.task_group import TaskGroup
from tests.airflow.helpers import Errors

pytestmark = pytest.mark.usefixtures("prefect_harness")


def run(dag: DAG, conf: dict[str, Any] | None = None) -> dict[str, str]:
    result = dag.test(run_conf=conf)
    return dict(result.tasks)


def expect_xcom(task_id: str, expected: Any, key: str = "return_value") -> Any:
    """A callable for a checker task: fails unless ``task_id`` pushed ``expected`` under ``key``."""

    def check(ti: Any) -> None:
        value = ti.xcom_pull(task_ids=task_id, key=key)
        if value != expected or type(value) is not type(expected):
            raise AssertionError(f"{task_id}/{key} pushed {value!r}, expected {expected!r}")

    return check


# --- EmptyOperator -----------------------------------------------------------------------------------


def test_empty_operator_runs_and_pushes_nothing() -> None:
    with DAG("empty_op", schedule=None) as dag:
        EmptyOperator(task_id="e") >> PythonOperator(task_id="check", python_callable=expect_xcom("e", None))
    assert run(dag) == {"e": "success", "check": "success"}


def test_dummy_operator_is_empty_operator_with_airflows_deprecation_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from lexis_prefect.airflow.operators import DummyOperator
    assert DummyOperator is EmptyOperator
    # the text Airflow 2.10.5 gives for `from airflow.operators.dummy import DummyOperator`
    assert [(w.category, str(w.message)) for w in caught] == [
        (
            DeprecationWarning,
            "The `airflow.operators.dummy.DummyOperator` class is deprecated. "
            "Please use `'airflow.operators.empty.EmptyOperator'`.",
        )
    ]
    with pytest.raises(AttributeError):
        operators.NoSuchOperator  # noqa: B018


# --- PythonOperator ----------------------------------------------------------------------------------


def test_python_operator_passes_context_by_name_or_all_of_it_with_kwargs(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("file {{ params.who }}")
    errors = Errors()

    def by_name(ds, run_id, params, dag_run, ti, task):  # only these keys, nothing else
        assert isinstance(ds, str) and len(ds) == 10
        assert run_id == dag_run.run_id and ti.task_id == task.task_id == "by_name"
        assert params["who"] == "ann"

    def by_kwargs(**context):
        assert context["task"].task_id == "by_kwargs" and context["params"]["who"] == "ann"
        assert {"ds", "ts", "logical_date", "run_id", "ti", "task_instance", "macros", "var", "dag"} <= set(context)
        assert context["templates_dict"] is None

    def positional(first, second, *, greeting, params):
        assert (first, second, greeting) == ("ann-1", 2, "hi ann")

    def op_kwargs_win(ds):
        assert ds == "not-a-date"

    def templates(templates_dict, **context):
        assert templates_dict == {"who": "ann", "n": "3", "file": "file ann"}

    def explicit():
        assert get_current_context()["ti"].task_id == "explicit"

    def generator():
        yield "ignored"
        return "returned"

    with DAG("python_op", schedule=None, params={"who": "ann"}, default_args={"on_failure_callback": errors}, template_searchpath=[str(tmp_path)]) as dag:
        PythonOperator(task_id="by_name", python_callable=by_name)
        PythonOperator(task_id="by_kwargs", python_callable=by_kwargs)
        PythonOperator(
            task_id="positional",
            python_callable=positional,
            op_args=["{{ params.who }}-1", 2],
            op_kwargs={"greeting": "hi {{ params.who }}"},
        )
        PythonOperator(task_id="op_kwargs_win", python_callable=op_kwargs_win, op_kwargs={"ds": "not-a-date"})
        PythonOperator(
            task_id="templates",
            python_callable=templates,
            templates_dict={"who": "{{ params.who }}", "n": "{{ 1 + 2 }}", "file": "t.txt"},
            templates_exts=[".txt"],
        )
        PythonOperator(task_id="explicit", python_callable=explicit)
        # an op_args value may not stand where a context key is named
        PythonOperator(task_id="reserved", python_callable=lambda ds: ds, op_args=[1])
        # a generator function is exhausted; its return value is the XCom
        gen = PythonOperator(task_id="generator", python_callable=generator)
        gen >> PythonOperator(task_id="check_generator", python_callable=expect_xcom("generator", "returned"))
    states = run(dag)
    assert states.pop("reserved") == "failed"
    assert set(states.values()) == {"success"}, states
    assert errors == {"reserved": "ValueError: The key 'ds' in args is a part of kwargs and therefore reserved."}


def test_python_operator_arguments() -> None:
    with DAG("python_op_args", schedule=None):
        with pytest.raises(AirflowException, match="^`python_callable` param must be callable$"):
            PythonOperator(task_id="not_callable", python_callable="x")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            op = PythonOperator(task_id="pc", python_callable=print, provide_context=True)
        assert [(w.category, str(w.message)) for w in caught] == [
            (RemovedInAirflow3Warning, "provide_context is deprecated as of 2.0 and is no longer required")
        ]
        assert op.op_args == () and op.op_kwargs == {} and op.templates_dict is None
        assert op.template_fields == ("templates_dict", "op_args", "op_kwargs")
        assert PythonOperator(task_id="ext", python_callable=print, templates_exts=[".sql"]).template_ext == [".sql"]


def test_python_operator_logs_the_return_value_unless_told_not_to(caplog: pytest.LogCaptureFixture) -> None:
    with DAG("python_op_logs", schedule=None) as dag:
        PythonOperator(task_id="shown", python_callable=lambda: "visible-value")
        PythonOperator(task_id="hidden", python_callable=lambda: "secret-value", show_return_value_in_logs=False)
    with caplog.at_level(logging.INFO):
        assert run(dag) == {"shown": "success", "hidden": "success"}
    assert "Done. Returned value was: visible-value" in caplog.text
    assert "Done. Returned value not shown" in caplog.text and "secret-value" not in caplog.text


# --- BranchPythonOperator ----------------------------------------------------------------------------


def branch_dag(errors: Errors) -> DAG:
    """``branch`` returns the conf's ``follow``: task ids, a group id (its roots), None or junk."""
    with DAG("branching", schedule=None, params={"follow": "x"}, default_args={"on_failure_callback": errors}) as dag:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda params: params["follow"])
        with TaskGroup("grp") as grp:
            first = EmptyOperator(task_id="first")
            first >> EmptyOperator(task_id="after_first")
            EmptyOperator(task_id="second")
        x, y = EmptyOperator(task_id="x"), EmptyOperator(task_id="y")
        # join is a direct child of branch AND downstream of x: following x must not skip it
        join = EmptyOperator(task_id="join")
        branch >> [grp, x, y, join]
        x >> join
        y >> EmptyOperator(task_id="after_y")
        join >> PythonOperator(task_id="followed", python_callable=lambda ti: ti.xcom_pull(task_ids="branch", key="skipmixin_key"))
    return dag


@pytest.mark.parametrize(
    ("follow", "ran"),
    [
        ("x", {"x", "join"}),
        (["x", "y"], {"x", "y", "join", "after_y"}),
        ("grp", {"grp.first", "grp.second", "grp.after_first"}),
        (["grp", "y"], {"grp.first", "grp.second", "grp.after_first", "y", "after_y"}),
        (None, set()),
    ],
)
def test_branch_follows_ids_lists_groups_and_none(follow: Any, ran: set[str]) -> None:
    errors = Errors()
    states = run(branch_dag(errors), {"follow": follow})
    assert states.pop("branch") == "success"
    assert states.pop("followed") == ("success" if "join" in ran else "skipped")
    assert {t for t, s in states.items() if s == "success"} == ran, states
    assert {s for t, s in states.items() if t not in ran} <= {"skipped"}
    assert errors == {}


@pytest.mark.parametrize(
    ("follow", "message"),
    [
        ("no_such_task", "'branch_task_ids' must contain only valid task_ids. Invalid tasks found: {'no_such_task'}."),
        (5, "'branch_task_ids' expected all task IDs are strings. Invalid tasks found: {(5, 'int')}."),
        (["x", 5], "'branch_task_ids' expected all task IDs are strings. Invalid tasks found: {(5, 'int')}."),
    ],
)
def test_branch_to_an_invalid_id_fails_with_airflows_message(follow: Any, message: str) -> None:
    errors = Errors()
    states = run(branch_dag(errors), {"follow": follow})
    assert states["branch"] == "failed"
    assert {s for t, s in states.items() if t != "branch"} == {"upstream_failed"}
    assert errors == {"branch": f"AirflowException: {message}"}


def test_branch_pushes_its_return_value_and_what_it_followed() -> None:
    with DAG("branch_xcom", schedule=None) as dag:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: ["grp", "solo"])
        with TaskGroup("grp") as grp:
            EmptyOperator(task_id="r1") >> EmptyOperator(task_id="inner")
            EmptyOperator(task_id="r2")
        solo = EmptyOperator(task_id="solo")
        branch >> [grp, solo, EmptyOperator(task_id="other")]
        solo >> PythonOperator(task_id="check_value", python_callable=expect_xcom("branch", ["grp", "solo"]))
        solo >> PythonOperator(
            task_id="check_followed",
            python_callable=expect_xcom("branch", {"followed": ["grp.r1", "grp.r2", "solo"]}, key="skipmixin_key"),
        )
    states = run(dag)
    assert states.pop("other") == "skipped"
    assert set(states.values()) == {"success"}, states


def test_custom_operators_branch_and_skip_with_airflows_mixins() -> None:
    class Choose(BaseBranchOperator):
        def choose_branch(self, context: Any) -> str:
            return "left"

    class SkipAllButFirst(BaseOperator, SkipMixin):
        def execute(self, context: Any) -> None:
            later = [t for t in context["task"].downstream_list if t.task_id != "first"]
            self.skip(context["dag_run"], context["ti"].execution_date, later)

    class StaticBranch(BaseOperator):
        def execute(self, context: Any) -> None:
            SkipMixin.skip_all_except(context["ti"], "s_a")  # a static method, as in Airflow

    with DAG("custom_skips", schedule=None) as dag:
        Choose(task_id="choose") >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]
        SkipAllButFirst(task_id="skipper") >> [EmptyOperator(task_id="first"), EmptyOperator(task_id="second")]
        StaticBranch(task_id="static") >> [EmptyOperator(task_id="s_a"), EmptyOperator(task_id="s_b")]
    assert run(dag) == {
        "choose": "success",
        "left": "success",
        "right": "skipped",
        "skipper": "success",
        "first": "success",
        "second": "skipped",
        "static": "success",
        "s_a": "success",
        "s_b": "skipped",
    }


# --- ShortCircuitOperator ----------------------------------------------------------------------------


@pytest.mark.parametrize("cond", [False, "", [], 0, None])
def test_short_circuit_falsy_skips_everything_downstream_by_default(cond: Any) -> None:
    with DAG("sc_ignore", schedule=None, params={"cond": "x"}) as dag:
        sc = ShortCircuitOperator(task_id="sc", python_callable=lambda params: params["cond"])
        # even an all_done / none_failed grandchild is skipped: trigger rules are ignored
        sc >> EmptyOperator(task_id="child") >> EmptyOperator(task_id="grandchild", trigger_rule="all_done")
        sc >> EmptyOperator(task_id="child2") >> EmptyOperator(task_id="none_failed", trigger_rule="none_failed")
    assert run(dag, {"cond": cond}) == {
        "sc": "success",
        "child": "skipped",
        "grandchild": "skipped",
        "child2": "skipped",
        "none_failed": "skipped",
    }


def test_short_circuit_respecting_trigger_rules_skips_only_direct_children() -> None:
    with DAG("sc_respect", schedule=None) as dag:
        sc = ShortCircuitOperator(task_id="sc", python_callable=lambda: [], ignore_downstream_trigger_rules=False)
        child = EmptyOperator(task_id="child")
        sc >> child >> EmptyOperator(task_id="all_done", trigger_rule="all_done")
        child >> EmptyOperator(task_id="default")
        # the falsy value is still pushed, and the skipped ids are recorded as Airflow's SkipMixin does
        child >> PythonOperator(task_id="check_value", python_callable=expect_xcom("sc", []), trigger_rule="all_done")
        child >> PythonOperator(
            task_id="check_skipped",
            python_callable=expect_xcom("sc", {"skipped": ["child"]}, "skipmixin_key"),
            trigger_rule="all_done",
        )
    assert run(dag) == {
        "sc": "success",
        "child": "skipped",
        "all_done": "success",
        "default": "skipped",
        "check_value": "success",
        "check_skipped": "success",
    }


def test_short_circuit_truthy_lets_everything_run_and_pushes_the_value() -> None:
    with DAG("sc_true", schedule=None) as dag:
        sc = ShortCircuitOperator(task_id="sc", python_callable=lambda: "go")
        sc >> PythonOperator(task_id="check", python_callable=expect_xcom("sc", "go"))
        sc >> PythonOperator(task_id="nothing_skipped", python_callable=expect_xcom("sc", None, "skipmixin_key"))
    assert run(dag) == {"sc": "success", "check": "success", "nothing_skipped": "success"}


# --- BashOperator ------------------------------------------------------------------------------------


def test_bash_exit_codes() -> None:
    errors = Errors()
    with DAG("bash_codes", schedule=None, default_args={"on_failure_callback": errors}) as dag:
        for task_id, command, skip in [
            ("exit_0", "exit 0", 99),
            ("exit_1", "exit 1", 99),
            ("exit_99", "exit 99", 99),
            ("exit_99_no_skip", "exit 99", None),
            ("exit_3_skip_3", "exit 3", 3),
            ("exit_5_skip_tuple", "exit 5", (4, 5)),
            ("exit_1_skip_list", "exit 1", [3, 4]),
            ("mid_failure", "false; true", 99),  # no set -e: the last exit code counts
            ("killed", "kill -9 $$", 99),
        ]:
            BashOperator(task_id=task_id, bash_command=command, skip_on_exit_code=skip)
    assert run(dag) == {
        "exit_0": "success",
        "exit_1": "failed",
        "exit_99": "skipped",
        "exit_99_no_skip": "failed",
        "exit_3_skip_3": "skipped",
        "exit_5_skip_tuple": "skipped",
        "exit_1_skip_list": "failed",
        "mid_failure": "success",
        "killed": "failed",
    }
    failed = "AirflowException: Bash command failed. The command returned a non-zero exit code"
    assert errors == {"exit_1": f"{failed} 1.", "exit_99_no_skip": f"{failed} 99.", "exit_1_skip_list": f"{failed} 1.", "killed": f"{failed} -9."}


def test_bash_output_last_line_is_the_xcom() -> None:
    with DAG("bash_output", schedule=None, params={"w": "W"}) as dag:
        cases = {
            "templated": ("echo first; echo '{{ params.w }}-{{ dag.dag_id }}'", {}, "W-bash_output"),
            "blank_last": ("echo three; echo", {}, ""),
            "stderr_merged": ("echo out; echo err >&2", {}, "err"),
            "rstripped": ("printf 'a  \\nb \\t\\n'", {}, "b"),
            "latin1": ("printf '\\xe9\\n'", {"output_encoding": "latin-1"}, "é"),
            "bad_utf8": ("printf '\\xe9\\n'", {}, "\\xe9"),  # backslashreplace
            "processed": ("echo one", {"output_processor": str.upper}, "ONE"),
            "not_pushed": ("echo hidden", {"do_xcom_push": False}, None),
        }
        for task_id, (command, kwargs, expected) in cases.items():
            BashOperator(task_id=task_id, bash_command=command, **kwargs) >> PythonOperator(
                task_id=f"check_{task_id}", python_callable=expect_xcom(task_id, expected)
            )
    states = run(dag)
    assert set(states.values()) == {"success"}, states


def test_bash_environment_and_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEXIS_TEST_OUTER", "outer")
    errors = Errors()
    tests = {
        # env replaces the worker's environment, append_env merges into it; env values are templated
        "env_only": dict(bash_command='test "$MY" = mine && test -z "${LEXIS_TEST_OUTER:-}"', env={"MY": "mine"}),
        "env_append": dict(bash_command='test "$MY" = mine && test "$LEXIS_TEST_OUTER" = outer', env={"MY": "mine"}, append_env=True),
        "env_inherited": dict(bash_command='test "$LEXIS_TEST_OUTER" = outer'),
        "env_templated": dict(bash_command='test "$X" = 2', env={"X": "{{ 1 + 1 }}"}),
        # AIRFLOW_CTX_* are exported even when env= replaces the environment
        "ctx": dict(
            bash_command='test "$AIRFLOW_CTX_DAG_ID" = bash_env && test "$AIRFLOW_CTX_TASK_ID" = ctx '
            '&& test "$AIRFLOW_CTX_DAG_OWNER" = me && test "$AIRFLOW_CTX_DAG_EMAIL" = "a@x,b@y" '
            '&& test "$AIRFLOW_CTX_TRY_NUMBER" = 1 && test "$AIRFLOW_CTX_DAG_RUN_ID" = "{{ run_id }}" '
            '&& test -n "$AIRFLOW_CTX_EXECUTION_DATE"',
            env={"MY": "mine"},
            owner="me",
            email=["a@x", "b@y"],
        ),
        "cwd": dict(bash_command=f'test "$(pwd -P)" = "{tmp_path.resolve()}"', cwd=str(tmp_path)),
        # without cwd, a fresh temporary directory named airflowtmp*
        "tmp_cwd": dict(bash_command='case "$(basename "$PWD")" in airflowtmp*) exit 0;; *) exit 1;; esac'),
        "no_cwd": dict(bash_command="true", cwd=str(tmp_path / "missing")),
        "cwd_is_file": dict(bash_command="true", cwd=__file__),
    }
    with DAG("bash_env", schedule=None, default_args={"on_failure_callback": errors}) as dag:
        for task_id, kwargs in tests.items():
            BashOperator(task_id=task_id, **kwargs)
    states = run(dag)
    assert states.pop("no_cwd") == states.pop("cwd_is_file") == "failed"
    assert set(states.values()) == {"success"}, (states, errors)
    assert errors == {
        "no_cwd": f"AirflowException: Can not find the cwd: {tmp_path / 'missing'}",
        "cwd_is_file": f"AirflowException: The cwd {__file__} must be a directory",
    }


def test_bash_script_files_are_jinja_templates(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "hello.sh").write_text('echo "script {{ params.w }} $(basename "$PWD")"\n')
    (scripts / "other.bash").write_text("echo from-bash; exit 3\n")
    workdir = tmp_path / "wd"
    workdir.mkdir()
    with DAG("bash_script", schedule=None, params={"w": "W"}, template_searchpath=[str(scripts)]) as dag:
        cases = {
            # rendered into a temporary script in cwd (a temporary directory without cwd), then run
            "script_cwd": (dict(bash_command="hello.sh", cwd=str(workdir)), "script W wd"),
            # a trailing space makes it an inline command, not a file
            "script_space": (dict(bash_command="echo plain.sh "), "plain.sh"),
        }
        for task_id, (kwargs, expected) in cases.items():
            BashOperator(task_id=task_id, **kwargs) >> PythonOperator(task_id=f"check_{task_id}", python_callable=expect_xcom(task_id, expected))
        BashOperator(task_id="script_tmp", bash_command="hello.sh") >> PythonOperator(
            task_id="check_script_tmp",
            python_callable=lambda ti: ti.xcom_pull(task_ids="script_tmp").startswith("script W airflowtmp") or 1 / 0,
        )
        BashOperator(task_id="bash_ext", bash_command="other.bash", skip_on_exit_code=3)
    states = run(dag)
    assert states.pop("bash_ext") == "skipped"
    assert set(states.values()) == {"success"}, states
    assert list(workdir.iterdir()) == []  # the rendered script is removed


def test_bash_streams_every_line_to_the_task_log(caplog: pytest.LogCaptureFixture) -> None:
    with DAG("bash_log", schedule=None) as dag:
        BashOperator(task_id="talk", bash_command="echo line-one; echo line-two >&2; echo line-three")
    with caplog.at_level(logging.INFO):
        assert run(dag) == {"talk": "success"}
    wanted = ["Output:", "line-one", "line-two", "line-three", "Command exited with return code 0"]
    assert [r.getMessage() for r in caplog.records if r.getMessage() in wanted] == wanted


def test_bash_execution_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    errors = Errors()
    # the command and a child it starts write their pids, then both sleep far past the timeout
    command = f"sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    with DAG("bash_timeout", schedule=None, default_args={"on_failure_callback": errors}) as dag:
        BashOperator(task_id="slow", bash_command=command, execution_timeout=timedelta(seconds=1))
    started = time.monotonic()
    assert run(dag) == {"slow": "failed"}
    assert time.monotonic() - started < 30
    assert "slow" in errors  # the execution timeout's error (Airflow: AirflowTaskTimeout)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 5
    numbers = [int(line) for line in pids.read_text().split()]
    assert len(numbers) == 2
    while any(alive(pid) for pid in numbers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in numbers)


def test_bash_operator_arguments() -> None:
    with DAG("bash_args", schedule=None):
        with pytest.raises(AirflowException, match="^missing keyword argument 'bash_command'$"):
            BashOperator(task_id="no_command")
        assert BashOperator(task_id="default", bash_command="true").skip_on_exit_code == [99]
        assert BashOperator(task_id="none", bash_command="true", skip_on_exit_code=None).skip_on_exit_code == []
        with pytest.warns(DeprecationWarning, match="skip_exit_code is deprecated. Please use skip_on_exit_code"):
            op = BashOperator(task_id="old", bash_command="true", skip_exit_code=7)
        assert op.skip_on_exit_code == [7]
        assert BashOperator.template_fields == ("bash_command", "env", "cwd")
        assert BashOperator.template_ext == (".sh", ".bash")
