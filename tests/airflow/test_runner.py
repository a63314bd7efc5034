"""Running a DAG with ``dag.test()`` on Prefect: Airflow 2.10.5's run-time semantics.

Every test runs for real (Prefect's test harness, tasks in the flow's thread pool). Airflow's
behaviour used as the expectation was checked with ``dag.test()`` on a real Airflow 2.10.5
(a separate virtualenv with ``apache-airflow==2.10.5``) on the same shapes (airflow-on-prefect.md §1.4, §1.7, §1.8).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from lexis_prefect.airflow.baseoperator import BaseOperator
from lexis_prefect.airflow.dag import DAG
from lexis_prefect.airflow.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTimeout,
    ParamValidationError,
)
from lexis_prefect.airflow.params import Param
from lexis_prefect.airflow.task_group import TaskGroup

pytestmark = pytest.mark.usefixtures("prefect_harness")


NO_DELAY = {"retry_delay": timedelta(0)}


class Op(BaseOperator):
    """Calls ``fn(context)`` (if given) and returns its result."""

    template_fields = ("value",)

    def __init__(self, *, fn: Callable[[dict], Any] | None = None, value: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fn = fn
        self.value = value

    def execute(self, context: Any) -> Any:
        return self.fn(context) if self.fn is not None else self.value


def boom(context: Any) -> None:
    raise ValueError("boom")


def skip(context: Any) -> None:
    raise AirflowSkipException("not today")


# --- reading the Prefect side back -------------------------------------------------------------


def prefect_task_runs(flow_run_id: str, expected: int, timeout: float = 15) -> dict[str, Any]:
    """The flow run's task runs by name, once ``expected`` of them are in a final state.

    Task run states reach the server as events, recorded asynchronously: poll briefly.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])))
            by_name = {run.name: run for run in runs}
            if len(by_name) >= expected and all(r.state and r.state.is_final() for r in by_name.values()):
                return by_name
            if time.monotonic() > deadline:
                return by_name
            time.sleep(0.1)


def prefect_flow_run_state(flow_run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id)).state


# --- the leaf rule and propagation -------------------------------------------------------------


def test_failed_non_leaf_with_successful_leaves_is_a_successful_run() -> None:
    with DAG("leaf_rule_ok", schedule=None) as dag:
        failing = Op(task_id="failing", fn=boom)
        after = Op(task_id="after", trigger_rule="all_done")
        Op(task_id="other_leaf")
        failing >> after
    result = dag.test()
    assert result.state == "success"
    assert result.tasks == {"failing": "failed", "after": "success", "other_leaf": "success"}


def test_lexis_shape_failed_job_still_succeeds() -> None:
    """ref_token >> keeper; ref_token >> job >> stop(all_done) >> finish: Airflow 2.10.5 gives success."""
    with DAG("lexis_shape", schedule=None) as dag:
        ref_token = Op(task_id="ref_token")
        keeper = Op(task_id="keeper")
        with TaskGroup("job") as job:
            Op(task_id="submit") >> Op(task_id="wait", fn=boom)
        stop = Op(task_id="ref_token_stop", trigger_rule="all_done")
        finish = Op(task_id="finish")
        ref_token >> keeper
        ref_token >> job >> stop >> finish
    result = dag.test()
    assert result.state == "success"
    assert result.tasks == {
        "ref_token": "success",
        "keeper": "success",
        "job.submit": "success",
        "job.wait": "failed",
        "ref_token_stop": "success",
        "finish": "success",
    }
    assert prefect_flow_run_state(result.flow_run_id).is_completed()


def test_failed_leaf_fails_the_run_and_the_flow_run() -> None:
    with DAG("leaf_rule_failed", schedule=None) as dag:
        Op(task_id="ok") >> Op(task_id="leaf", fn=boom)
        Op(task_id="other_leaf")
    result = dag.test()
    assert result.state == "failed"
    assert result.tasks == {"ok": "success", "leaf": "failed", "other_leaf": "success"}
    state = prefect_flow_run_state(result.flow_run_id)
    assert state.is_failed() and "leaf" in (state.message or "")


def test_upstream_failed_and_skipped_propagate_through_the_default_rule() -> None:
    with DAG("propagation", schedule=None) as dag:
        Op(task_id="f", fn=boom) >> Op(task_id="f1") >> Op(task_id="f2")
        s = Op(task_id="s", fn=skip)
        s >> Op(task_id="s1") >> Op(task_id="s2")
        s >> Op(task_id="s_none_failed", trigger_rule="none_failed")
        Op(task_id="ok") >> Op(task_id="ok1")
    result = dag.test()
    assert result.tasks == {
        "f": "failed",
        "f1": "upstream_failed",
        "f2": "upstream_failed",
        "s": "skipped",
        "s1": "skipped",
        "s2": "skipped",
        "s_none_failed": "success",
        "ok": "success",
        "ok1": "success",
    }
    assert result.state == "failed"  # f2 is a leaf in upstream_failed


def test_skipped_leaves_are_a_successful_run() -> None:
    with DAG("skipped_leaves", schedule=None) as dag:
        Op(task_id="s", fn=skip) >> Op(task_id="after")
    result = dag.test()
    assert result.state == "success" and result.tasks == {"s": "skipped", "after": "skipped"}


def test_trigger_rules_decide_mixed_upstreams() -> None:
    with DAG("mixed_rules", schedule=None) as dag:
        ok, bad, skp = Op(task_id="ok"), Op(task_id="bad", fn=boom), Op(task_id="skp", fn=skip)
        rules = ["one_success", "one_failed", "all_failed", "none_skipped", "all_done", "none_failed_min_one_success"]
        for rule in rules:
            [ok, bad, skp] >> Op(task_id=rule, trigger_rule=rule)
    result = dag.test()
    assert result.tasks == {
        "ok": "success",
        "bad": "failed",
        "skp": "skipped",
        "one_success": "success",
        "one_failed": "success",
        "all_failed": "skipped",
        "none_skipped": "skipped",
        "all_done": "success",
        "none_failed_min_one_success": "upstream_failed",
    }


def test_every_task_has_an_airflow_state_and_a_named_prefect_task_run() -> None:
    with DAG("prefect_states", schedule=None) as dag:
        ok = Op(task_id="ok")
        bad = Op(task_id="bad", fn=boom)
        s = Op(task_id="s", fn=skip)
        ok >> bad >> Op(task_id="uf")
        s >> Op(task_id="sk")
    result = dag.test()
    assert result.tasks == {"ok": "success", "bad": "failed", "uf": "upstream_failed", "s": "skipped", "sk": "skipped"}
    runs = prefect_task_runs(result.flow_run_id, expected=5)
    assert {name: run.state.name for name, run in runs.items()} == {
        "ok": "Completed",
        "bad": "Failed",
        "uf": "UpstreamFailed",
        "s": "Skipped",
        "sk": "Skipped",
    }
    assert runs["uf"].state.is_failed() and runs["sk"].state.is_completed()
    assert prefect_flow_run_state(result.flow_run_id).is_failed()  # uf is a failed leaf


# --- retries and timeouts ----------------------------------------------------------------------


def flaky(fail_times: int, tries: list) -> Callable[[dict], str]:
    def fn(context: Any) -> str:
        tries.append(context["ti"].try_number)
        if len(tries) <= fail_times:
            raise ValueError(f"try {len(tries)} fails")
        return "ok"

    return fn


def test_task_failing_twice_with_two_retries_succeeds_on_the_third_try() -> None:
    tries: list = []
    with DAG("retries_ok", schedule=None, default_args=NO_DELAY) as dag:
        Op(task_id="t", fn=flaky(2, tries), retries=2)
    result = dag.test()
    assert result.state == "success" and result.tasks == {"t": "success"}
    assert tries == [1, 2, 3]  # try_number in the context, as Airflow counts them
    run = prefect_task_runs(result.flow_run_id, expected=1)["t"]
    assert run.state.name == "Completed" and run.run_count == 3


def test_task_failing_twice_with_one_retry_fails_after_two_tries() -> None:
    tries: list = []
    with DAG("retries_exhausted", schedule=None, default_args=NO_DELAY) as dag:
        Op(task_id="t", fn=flaky(2, tries), retries=1)
    result = dag.test()
    assert result.state == "failed" and result.tasks == {"t": "failed"}
    assert tries == [1, 2]


def test_airflow_fail_exception_is_not_retried() -> None:
    tries: list = []

    def fail_now(context: Any) -> None:
        tries.append(context["ti"].try_number)
        raise AirflowFailException("no point retrying")

    with DAG("fail_now", schedule=None, default_args=NO_DELAY) as dag:
        Op(task_id="t", fn=fail_now, retries=3)
    result = dag.test()
    assert result.tasks == {"t": "failed"} and tries == [1]


def test_skip_is_not_retried() -> None:
    tries: list = []

    def skip_counted(context: Any) -> None:
        tries.append(1)
        raise AirflowSkipException()

    with DAG("skip_once", schedule=None, default_args=NO_DELAY) as dag:
        Op(task_id="t", fn=skip_counted, retries=3)
    assert dag.test().tasks == {"t": "skipped"} and tries == [1]


def airflow_backoff(dag_id: str, task_id: str, logical_date: datetime, retry_delay: float, retries: int) -> list[float]:
    """Airflow 2.10.5 ``TaskInstance.next_retry_datetime`` with exponential backoff: it hashes
    ``str(execution_date)`` (``2024-01-01 00:00:00+00:00``, a space, not ``T``)."""
    delays = []
    for try_number in range(1, retries + 1):
        min_backoff = max(1, math.ceil(retry_delay * 2 ** (try_number - 1)))
        key = f"{dag_id}#{task_id}#{logical_date}#{try_number}".encode()
        ti_hash = int(hashlib.sha1(key).hexdigest(), 16)
        delays.append(float(min(min_backoff + ti_hash % min_backoff, 24 * 60 * 60)))
    return delays


def test_exponential_backoff_delays_for_a_date() -> None:
    # dag.test on Airflow 2.10.5 (execution_date 2024-01-01 UTC, retry_delay 100 s): the first retry
    # waited 146 s; the formula above gives the same
    with DAG("backoff", schedule=None):
        t = Op(task_id="t", retries=3, retry_delay=timedelta(seconds=100), retry_exponential_backoff=True)
    date = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert airflow_backoff("backoff", "t", date, 100, 3)[0] == 146.0
    assert t.retry_delays(str(date)) == airflow_backoff("backoff", "t", date, 100, 3)


def test_exponential_backoff_delays_in_a_run_are_airflows() -> None:
    seen: dict = {}
    with DAG("backoff_run", schedule=None) as dag:
        Op(
            task_id="t",
            fn=lambda context: seen.update(date=context["logical_date"]),
            retries=2,
            retry_delay=timedelta(seconds=100),
            retry_exponential_backoff=True,
        )
    result = dag.test()
    assert result.tasks == {"t": "success"}
    policy = prefect_task_runs(result.flow_run_id, expected=1)["t"].empirical_policy
    assert policy.retries == 2
    assert policy.retry_delay == airflow_backoff("backoff_run", "t", seen["date"], 100, 2)


class KillableOp(Op):
    killed: list = []

    def on_kill(self) -> None:
        self.killed.append(self)


def test_execution_timeout_fails_the_task_and_calls_on_kill() -> None:
    release = threading.Event()
    tries: list = []

    def hang(context: Any) -> None:
        tries.append(context["ti"].try_number)
        release.wait(10)

    KillableOp.killed = []
    with DAG("timeout", schedule=None, default_args=NO_DELAY) as dag:
        t = KillableOp(task_id="t", fn=hang, execution_timeout=timedelta(seconds=0.3))
        Op(task_id="other")
    try:
        result = dag.test()
    finally:
        release.set()
    assert result.tasks == {"t": "failed", "other": "success"} and tries == [1]
    # Airflow calls on_kill on the task it executed (the rendered copy)
    assert len(KillableOp.killed) == 1 and KillableOp.killed[0] is not t


def test_execution_timeout_is_retried() -> None:
    release = threading.Event()
    tries: list = []

    def hang_first(context: Any) -> str:
        tries.append(context["ti"].try_number)
        if len(tries) == 1:
            release.wait(10)
        return "second try in time"

    with DAG("timeout_retried", schedule=None, default_args=NO_DELAY) as dag:
        Op(task_id="t", fn=hang_first, execution_timeout=timedelta(seconds=0.3), retries=1)
    try:
        result = dag.test()
    finally:
        release.set()
    assert result.tasks == {"t": "success"} and tries == [1, 2]


def test_execution_timeout_error_is_airflow_task_timeout() -> None:
    release = threading.Event()
    errors: list = []
    with DAG("timeout_error", schedule=None, default_args=NO_DELAY) as dag:
        Op(
            task_id="t",
            fn=lambda context: release.wait(10),
            execution_timeout=timedelta(seconds=0.3),
            on_failure_callback=lambda context: errors.append(context["exception"]),
        )
    try:
        result = dag.test()
    finally:
        release.set()
    assert result.tasks == {"t": "failed"}
    assert len(errors) == 1 and isinstance(errors[0], AirflowTaskTimeout)


# --- concurrency -------------------------------------------------------------------------------


def test_independent_tasks_run_at_the_same_time() -> None:
    barrier = threading.Barrier(2, timeout=20)  # passes only when both tasks wait at once
    with DAG("concurrent", schedule=None) as dag:
        start = Op(task_id="start")
        start >> [Op(task_id="a", fn=lambda c: barrier.wait()), Op(task_id="b", fn=lambda c: barrier.wait())]
    result = dag.test()
    assert result.tasks == {"start": "success", "a": "success", "b": "success"}


def test_max_active_tasks_one_runs_them_one_at_a_time() -> None:
    barrier = threading.Barrier(2, timeout=0.5)
    lock = threading.Lock()
    active = {"now": 0, "peak": 0}
    met: list = []

    def meet(context: Any) -> None:
        with lock:
            active["now"] += 1
            active["peak"] = max(active["peak"], active["now"])
        try:
            barrier.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            met.append(False)
        finally:
            with lock:
                active["now"] -= 1

    with DAG("serial", schedule=None, max_active_tasks=1) as dag:
        Op(task_id="a", fn=meet)
        Op(task_id="b", fn=meet)
    result = dag.test()
    assert result.tasks == {"a": "success", "b": "success"}
    assert active["peak"] == 1 and met == [False, False]


# --- params ------------------------------------------------------------------------------------


def record_params(seen: dict) -> Callable[[dict], None]:
    def fn(context: Any) -> None:
        seen[context["ti"].task_id] = {"params": context["params"], "conf": context["dag_run"].conf}

    return fn


JOB_SCHEMA = {
    "type": "object",
    "required": ["requirements", "data_inputs"],
    "properties": {"requirements": {"type": "object"}, "data_inputs": {"type": "array"}},
}


def test_conf_replaces_a_whole_dict_param() -> None:
    seen: dict = {}
    default = {"requirements": {"cpus": 4}, "data_inputs": ["a"], "extra": 1}
    with DAG("conf_replaces", schedule=None, params={"job1": Param(default, schema=JOB_SCHEMA), "n": 1}) as dag:
        Op(task_id="t", fn=record_params(seen))
    result = dag.test(run_conf={"job1": {"requirements": {}, "data_inputs": []}})
    assert result.tasks == {"t": "success"}
    assert seen["t"]["params"] == {"job1": {"requirements": {}, "data_inputs": []}, "n": 1}  # no deep merge
    assert seen["t"]["conf"] == {"job1": {"requirements": {}, "data_inputs": []}}
    assert dag.params["job1"] == default  # the DAG's Param is untouched


def test_bad_conf_raises_before_any_task_ran(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with DAG("bad_conf", schedule=None, params={"job1": Param({"requirements": {}, "data_inputs": []}, schema=JOB_SCHEMA)}) as dag:
        Op(task_id="t", fn=lambda context: marker.write_text("ran"))
    with pytest.raises(ParamValidationError, match="Invalid input for param job1: 'requirements' is a required property"):
        dag.test(run_conf={"job1": {"data_inputs": []}})
    assert not marker.exists()


def test_required_param_without_conf_raises_before_any_task_ran(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with DAG("required_conf", schedule=None, params={"tok": Param(type="string")}) as dag:
        Op(task_id="t", fn=lambda context: marker.write_text("ran"))
    with pytest.raises(ParamValidationError, match="tok"):
        dag.test()
    assert not marker.exists()
    assert dag.test(run_conf={"tok": "abc"}).tasks == {"t": "success"} and marker.exists()


def test_undeclared_conf_key_reaches_dag_run_conf_and_params() -> None:
    seen: dict = {}
    with DAG("undeclared", schedule=None, params={"a": 1}) as dag:
        Op(task_id="t", fn=record_params(seen))
    assert dag.test(run_conf={"extra": {"x": [1]}}).tasks == {"t": "success"}
    assert seen["t"]["conf"] == {"extra": {"x": [1]}}
    assert seen["t"]["params"] == {"a": 1, "extra": {"x": [1]}}


def test_no_conf_gives_an_empty_dag_run_conf() -> None:
    seen: dict = {}
    with DAG("no_conf", schedule=None, params={"a": 1}) as dag:
        Op(task_id="t", fn=record_params(seen))
    assert dag.test().tasks == {"t": "success"}
    assert seen["t"] == {"params": {"a": 1}, "conf": {}}


def test_task_params_override_dag_params_and_conf_overrides_both() -> None:
    seen: dict = {}
    with DAG("task_params", schedule=None, params={"a": 1, "b": 2}) as dag:
        Op(task_id="own", fn=record_params(seen), params={"b": 20, "c": 30})
        Op(task_id="plain", fn=record_params(seen))
    assert dag.test().state == "success"
    assert seen["own"]["params"] == {"a": 1, "b": 20, "c": 30}
    assert seen["plain"]["params"] == {"a": 1, "b": 2}
    seen.clear()
    assert dag.test(run_conf={"b": 99}).state == "success"
    assert seen["own"]["params"] == {"a": 1, "b": 99, "c": 30}  # [core] dag_run_conf_overrides_params
    assert seen["plain"]["params"] == {"a": 1, "b": 99}


def test_task_param_with_a_schema_is_used() -> None:
    seen: dict = {}
    with DAG("task_param_schema", schedule=None) as dag:
        Op(task_id="t", fn=record_params(seen), params={"n": Param(1, type="integer")})
    assert dag.test(run_conf={"n": 5}).tasks == {"t": "success"}
    assert seen["t"]["params"] == {"n": 5}


def test_conf_rejected_by_a_task_level_param_fails_only_that_task() -> None:
    # On Airflow 2.10.5 the DAG-level check passes (the DAG has no param "n"); then task t raises
    # ParamValidationError when it starts and u runs. (Airflow's dag.test even loops on t for ever,
    # as the error comes before the try is counted; the scheduler fails that task.)
    with DAG("task_param_conf", schedule=None) as dag:
        Op(task_id="t", params={"n": Param(1, type="integer")})
        Op(task_id="u")
    result = dag.test(run_conf={"n": "not a number"})
    assert result.tasks == {"t": "failed", "u": "success"}
    assert result.state == "failed"


def test_calling_the_flow_with_parameters_is_a_run_with_that_conf() -> None:
    """What a deployment run does: the flow's parameters; those that differ from the defaults are the conf."""
    seen: dict = {}
    with DAG("direct_call", schedule=None, params={"a": 1, "tok": Param("x", type="string")}) as dag:
        Op(task_id="t", fn=record_params(seen))
    state = dag(tok="12345", return_state=True)
    assert state.is_completed()
    assert seen["t"] == {"params": {"a": 1, "tok": "12345"}, "conf": {"tok": "12345"}}


def test_calling_the_flow_with_a_bad_parameter_fails_it_before_any_task(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with DAG("direct_bad", schedule=None, params={"job1": Param({"requirements": {}, "data_inputs": []}, schema=JOB_SCHEMA)}) as dag:
        Op(task_id="t", fn=lambda context: marker.write_text("ran"))
    state = dag(job1={"data_inputs": []}, return_state=True)
    assert state.is_failed() and "Invalid input for param job1" in (state.message or "")
    assert not marker.exists()


# --- callbacks ---------------------------------------------------------------------------------


def test_task_callbacks_are_called_with_a_context() -> None:
    calls: list = []

    def cb(name: str) -> Callable[[dict], None]:
        def record(context: Any) -> None:
            # a failing callback is only logged: record what it saw instead of asserting in it
            exc = context.get("exception")
            full = context["dag"].dag_id == "callbacks" and {"params", "ds", "task", "dag_run"} <= set(context)
            calls.append((name, context["ti"].task_id, context["ti"].try_number, type(exc).__name__ if exc else None, full))

        return record

    every = {
        "on_success_callback": cb("success"),
        "on_failure_callback": cb("failure"),
        "on_retry_callback": cb("retry"),
        "on_skipped_callback": cb("skipped"),
        "on_execute_callback": cb("execute"),
    }
    with DAG("callbacks", schedule=None, default_args=NO_DELAY) as dag:
        ok = Op(task_id="ok", **every)
        bad = Op(task_id="bad", fn=flaky(5, []), retries=1, **every)
        sk = Op(task_id="sk", fn=skip, on_skipped_callback=cb("skipped"))
        ok >> bad >> Op(task_id="uf", **every)  # marked upstream_failed: no callback (Airflow too)
        sk >> Op(task_id="after_skip", **every)  # marked skipped: no callback (Airflow too)
    result = dag.test()
    assert result.tasks == {"ok": "success", "bad": "failed", "uf": "upstream_failed", "sk": "skipped", "after_skip": "skipped"}
    assert sorted(calls) == sorted(
        [
            ("execute", "ok", 1, None, True),
            ("success", "ok", 1, None, True),
            ("execute", "bad", 1, None, True),
            ("retry", "bad", 1, "ValueError", True),
            ("execute", "bad", 2, None, True),
            ("failure", "bad", 2, "ValueError", True),
            ("skipped", "sk", 1, None, True),
        ]
    )


def test_a_failing_callback_does_not_change_the_task_state() -> None:
    def broken(context: Any) -> None:
        raise RuntimeError("callback bug")

    with DAG("broken_callback", schedule=None) as dag:
        Op(task_id="t", on_success_callback=broken)
    assert dag.test().tasks == {"t": "success"}


def test_skipped_task_also_calls_on_success_callback() -> None:
    calls: list = []
    with DAG("skip_success_callback", schedule=None) as dag:
        Op(
            task_id="sk",
            fn=skip,
            on_skipped_callback=lambda context: calls.append("skipped"),
            on_success_callback=lambda context: calls.append("success"),
        )
    assert dag.test().tasks == {"sk": "skipped"}
    assert calls == ["skipped", "success"]


def test_dag_callbacks_follow_the_leaf_rule() -> None:
    calls: list = []

    def cb(name: str) -> Callable[[dict], None]:
        return lambda context: calls.append((name, context["reason"], context["dag_run"].dag_id, dict(context["params"])))

    def make(dag_id: str, leaf_fails: bool) -> DAG:
        with DAG(dag_id, schedule=None, params={"p": 1}, on_success_callback=cb("success"), on_failure_callback=cb("failure")) as dag:
            Op(task_id="mid", fn=boom) >> Op(task_id="leaf", trigger_rule="all_done", fn=boom if leaf_fails else None)
        return dag

    assert make("dag_cb_ok", leaf_fails=False).test().state == "success"
    assert make("dag_cb_failed", leaf_fails=True).test().state == "failed"
    assert calls == [("success", "success", "dag_cb_ok", {"p": 1}), ("failure", "task_failure", "dag_cb_failed", {"p": 1})]


def test_dag_callback_context_is_a_task_instance_context() -> None:
    contexts: list = []
    with DAG("dag_cb_context", schedule=None, on_failure_callback=contexts.append) as dag:
        Op(task_id="t", fn=boom)
    assert dag.test().state == "failed"
    (context,) = contexts
    assert context["reason"] == "task_failure"
    assert context["ti"].task_id == "t" and context["task_instance"] is context["ti"]
    assert {"ds", "ts", "macros", "var", "task", "logical_date"} <= set(context)


def test_self_params_in_execute_are_the_run_params() -> None:
    seen: dict = {}

    class ReadsSelfParams(BaseOperator):
        def execute(self, context: Any) -> None:
            seen["params"] = dict(self.params)
            seen["same"] = self.params is context["params"]

    with DAG("self_params", schedule=None, params={"a": 1, "b": 2}) as dag:
        ReadsSelfParams(task_id="t", params={"c": 3})
    assert dag.test(run_conf={"a": 10}).tasks == {"t": "success"}
    assert seen == {"params": {"a": 10, "b": 2, "c": 3}, "same": True}


def test_hooks_and_callbacks_run_around_execute() -> None:
    order: list = []
    with DAG("hook_order", schedule=None, params={"a": 1}) as dag:
        Op(
            task_id="t",
            value="{{ params.a }}",
            fn=lambda context: order.append(("execute", context["task"].value)),
            pre_execute=lambda context: order.append(("pre_execute", context["task"].value)),
            post_execute=lambda context, result: order.append(("post_execute", None)),
            on_execute_callback=lambda context: order.append(("on_execute", None)),
            on_success_callback=lambda context: order.append(("on_success", None)),
        )
    assert dag.test().tasks == {"t": "success"}
    # templates are rendered before any of them
    assert ("pre_execute", "1") in order and ("execute", "1") in order
    assert order[-3:] == [("execute", "1"), ("post_execute", None), ("on_success", None)]


def test_pre_execute_runs_before_on_execute_callback() -> None:
    order: list = []
    with DAG("pre_execute_order", schedule=None) as dag:
        Op(
            task_id="t",
            fn=lambda context: order.append("execute"),
            pre_execute=lambda context: order.append("pre_execute"),
            on_execute_callback=lambda context: order.append("on_execute"),
        )
    assert dag.test().tasks == {"t": "success"}
    assert order == ["pre_execute", "on_execute", "execute"]


def test_fail_stop_skips_the_remaining_tasks() -> None:
    with DAG("fail_stop", schedule=None, fail_stop=True) as dag:
        Op(task_id="a", fn=boom) >> Op(task_id="b")
    result = dag.test()
    # Airflow 2.10.5 dag.test on this DAG: a failed, b skipped, and so (leaf rule) the DAG run "success"
    assert result.tasks == {"a": "failed", "b": "skipped"}
    assert result.state == "success"


# --- XCom --------------------------------------------------------------------------------------


def test_xcom_push_and_pull() -> None:
    seen: dict = {}

    def produce(context: Any) -> str:
        context["ti"].xcom_push(key="extra", value={"x": 1})
        return "rv"

    def pull(context: Any) -> None:
        ti = context["ti"]
        seen["by_key"] = ti.xcom_pull(task_ids="produce", key="extra")
        seen["return_value"] = ti.xcom_pull(task_ids="produce")
        seen["list"] = ti.xcom_pull(task_ids=["number", "produce"])
        seen["list_reversed"] = ti.xcom_pull(task_ids=["produce", "number"])
        seen["missing"] = ti.xcom_pull(task_ids="produce", key="nope")
        seen["default"] = ti.xcom_pull(task_ids="produce", key="nope", default="dflt")
        seen["unpushed"] = ti.xcom_pull(task_ids="unpushed")
        seen["templated"] = context["task"].value

    with DAG("xcom_run", schedule=None) as dag:
        producers = [
            Op(task_id="produce", fn=produce),
            Op(task_id="number", value=2),
            Op(task_id="unpushed", value=3, do_xcom_push=False),
        ]
        producers >> Op(task_id="pull", fn=pull, value="{{ ti.xcom_pull(task_ids='produce') }}-{{ ti.xcom_pull(task_ids='number') }}")
    assert dag.test().state == "success"
    assert seen == {
        "by_key": {"x": 1},
        "return_value": "rv",
        "list": [2, "rv"],
        "list_reversed": ["rv", 2],
        "missing": None,
        "default": "dflt",
        "unpushed": None,
        "templated": "rv-2",
    }


def test_xcoms_of_a_failed_try_are_cleared_before_the_retry() -> None:
    seen: dict = {}

    def push_then_fail_once(context: Any) -> None:
        ti = context["ti"]
        if ti.try_number == 1:
            ti.xcom_push(key="first_try_only", value=1)
            raise ValueError("first try fails")
        ti.xcom_push(key="second", value=2)

    def pull(context: Any) -> None:
        ti = context["ti"]
        seen["first"] = ti.xcom_pull(task_ids="t", key="first_try_only", default="gone")
        seen["second"] = ti.xcom_pull(task_ids="t", key="second")

    with DAG("xcom_retry", schedule=None, default_args=NO_DELAY) as dag:
        Op(task_id="t", fn=push_then_fail_once, retries=1) >> Op(task_id="pull", fn=pull)
    assert dag.test().state == "success"
    assert seen == {"first": "gone", "second": 2}


def test_xcom_arg_is_resolved_and_is_an_edge() -> None:
    seen: dict = {}

    def produce(context: Any) -> dict:
        return {"job_id": 7, "dir": "/x"}

    with DAG("xcom_arg_run", schedule=None) as dag:
        a = Op(task_id="a", fn=produce, multiple_outputs=True)
        b = Op(task_id="b", value={"whole": a.output, "key": a.output["job_id"]}, fn=lambda c: seen.update(b=c["task"].value))
        c = Op(task_id="c", value=f"dir={a.output['dir']}", fn=lambda c: seen.update(c=c["task"].value))
        a >> c  # an XComArg formatted into a str is only a template: no edge from it
    assert b.upstream_task_ids == {"a"}
    assert dag.test().state == "success"
    assert seen == {"b": {"whole": {"job_id": 7, "dir": "/x"}, "key": 7}, "c": "dir=/x"}


# --- dag.test() itself -------------------------------------------------------------------------


def test_dag_test_execution_date_sets_the_logical_date() -> None:
    seen: dict = {}
    with DAG("execution_date", schedule=None) as dag:
        Op(task_id="t", fn=lambda context: seen.update(ds=context["ds"], run_id=context["run_id"]))
    date = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert dag.test(execution_date=date).state == "success"
    assert seen == {"ds": "2024-01-02", "run_id": "manual__2024-01-02T03:04:05+00:00"}


def test_dag_test_returns_the_result_and_runs_again() -> None:
    runs: list = []
    with DAG("rerun", schedule=None) as dag:
        Op(task_id="t", fn=lambda context: runs.append(context["run_id"]))
    first, second = dag.test(), dag.test()
    assert first.state == second.state == "success" and first.dag_id == "rerun"
    assert first.run_id != second.run_id and runs == [first.run_id, second.run_id]
    assert first.flow_run_id != second.flow_run_id
    assert first.get_task_instance("t").state == "success"


def test_task_exception_does_not_escape_dag_test() -> None:
    with DAG("no_raise", schedule=None) as dag:
        Op(task_id="t", fn=lambda context: (_ for _ in ()).throw(AirflowException("logged, not raised")))
    assert dag.test().tasks == {"t": "failed"}


class _SleepsAsync(BaseOperator):
    """An ``async def execute`` that would sleep for a minute; records how it ended."""

    ended: list[str] = []

    async def execute(self, context: Any) -> None:
        import asyncio

        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            _SleepsAsync.ended.append("cancelled")
            raise
        _SleepsAsync.ended.append("finished")


def test_an_async_execute_past_its_timeout_is_cancelled():
    _SleepsAsync.ended.clear()
    with DAG("async_timeout") as dag:
        _SleepsAsync(task_id="t", execution_timeout=timedelta(seconds=0.3))
    result = dag.test()
    assert result.tasks == {"t": "failed"}
    deadline = time.monotonic() + 10
    while not _SleepsAsync.ended and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _SleepsAsync.ended == ["cancelled"]
