"""Sensors behave as in Airflow 2.10.5: BaseSensorOperator, PythonSensor, PokeReturnValue.

DAGs run for real with ``dag.test()`` on Prefect, with poke intervals of 0.05-0.2 s. The expected
states, poke counts and messages were checked by running the same DAGs on a real Airflow 2.10.5
(a separate virtualenv with ``apache-airflow==2.10.5``, ``dag.test()``): both printed identical results (the execution-timeout case
with ``dag.test(use_executor=True)``, since in-process AirflowTaskTimeout aborts Airflow's dag.test).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from lexis_prefect.airflow.dag import DAG
from lexis_prefect.airflow.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)
from lexis_prefect.airflow.operators import PythonOperator
from lexis_prefect.airflow.sensors import BaseSensorOperator, PokeReturnValue, PythonSensor, poke_mode_only
from tests.airflow.helpers import Errors

needs_prefect = pytest.mark.usefixtures("prefect_harness")


class Pokes:
    """Counts pokes per name, thread-safely (sensors of one DAG poke concurrently)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.times: dict[str, list[tuple[int, float]]] = {}
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> Pokes:
        return self

    def poke(self, name: str, try_number: int = 0) -> int:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            self.times.setdefault(name, []).append((try_number, time.monotonic()))
            return self.counts[name]


# --- arguments ------------------------------------------------------------------------------------


def test_defaults() -> None:
    sensor = PythonSensor(task_id="free", python_callable=lambda: True)
    assert (sensor.poke_interval, sensor.timeout, sensor.mode, sensor.max_wait) == (60.0, 604800.0, "poke", None)
    assert (sensor.soft_fail, sensor.never_fail, sensor.silent_fail, sensor.exponential_backoff) == (False,) * 4
    assert sensor.template_fields == ("templates_dict", "op_args", "op_kwargs")
    timed = PythonSensor(task_id="timed", python_callable=print, poke_interval=timedelta(minutes=2), timeout=timedelta(hours=1), max_wait=5)
    assert (timed.poke_interval, timed.timeout, timed.max_wait) == (120.0, 3600.0, timedelta(seconds=5))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"mode": "bogus"}, AirflowException, "The mode must be one of ['poke', 'reschedule'],'v .s'; received 'bogus'."),
        ({"poke_interval": -1}, AirflowException, "Operator arg `poke_interval` must be timedelta object or a non-negative number"),
        ({"poke_interval": "5"}, AirflowException, "Operator arg `poke_interval` must be timedelta object or a non-negative number"),
        ({"timeout": -1}, AirflowException, "Operator arg `timeout` must be timedelta object or a non-negative number"),
        ({"max_wait": -1}, AirflowException, "Operator arg `max_wait` must be timedelta object or a non-negative number"),
        ({"soft_fail": True, "never_fail": True}, ValueError, "soft_fail and never_fail are mutually exclusive, you can not provide both."),
    ],
)
def test_argument_validation_as_airflow(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with DAG("v", schedule=None), pytest.raises(error) as caught:
        PythonSensor(task_id="s", python_callable=lambda: True, **kwargs)
    assert str(caught.value) == message


def test_mode_message_without_a_dag_and_poke_mode_only() -> None:
    with pytest.raises(AirflowException) as caught:
        PythonSensor(task_id="nodag", python_callable=lambda: True, mode="x")
    assert str(caught.value) == "The mode must be one of ['poke', 'reschedule'],' .nodag'; received 'x'."

    @poke_mode_only
    class OnlyPoke(BaseSensorOperator):
        def poke(self, context: Any) -> bool:
            return True

    sensor = OnlyPoke(task_id="only_poke")
    assert sensor.mode == "poke"
    with pytest.raises(ValueError, match="Cannot set mode to 'reschedule'. Only 'poke' is acceptable"):
        sensor.mode = "reschedule"


def test_poke_return_value() -> None:
    assert not PokeReturnValue(False, "x") and PokeReturnValue(True).xcom_value is None
    assert PokeReturnValue(is_done=True, xcom_value={"a": 1}).xcom_value == {"a": 1}


# --- the poke loop --------------------------------------------------------------------------------


@needs_prefect
def test_poke_until_true_then_push_the_poke_return_value() -> None:
    pokes = Pokes()

    def with_value(ti: Any) -> PokeReturnValue:
        n = pokes.poke("with_value")
        return PokeReturnValue(is_done=n >= 3, xcom_value={"pokes": n})

    def check(ti: Any) -> None:
        assert ti.xcom_pull(task_ids="with_value") == {"pokes": 3}
        assert ti.xcom_pull(task_ids="truthy") is None  # a plain truthy result pushes nothing
        assert ti.xcom_pull(task_ids="done_no_value") is None

    with DAG("sensor_done", schedule=None, default_args={"poke_interval": 0.05}) as dag:
        sensors = [
            PythonSensor(task_id="with_value", python_callable=with_value),
            PythonSensor(task_id="truthy", python_callable=lambda: "yes"),
            PythonSensor(task_id="done_no_value", python_callable=lambda: PokeReturnValue(True)),
        ]
        sensors >> PythonOperator(task_id="check", python_callable=check)
    assert dag.test().tasks == {"with_value": "success", "truthy": "success", "done_no_value": "success", "check": "success"}
    assert pokes.counts == {"with_value": 3}


@needs_prefect
def test_timeout_fails_without_retries_or_skips_with_soft_fail() -> None:
    pokes, errors = Pokes(), Errors()
    with DAG("sensor_timeout", schedule=None, default_args={"on_failure_callback": errors, "poke_interval": 0.05, "timeout": 0.3, "retry_delay": 0}) as dag:
        PythonSensor(task_id="times_out", python_callable=lambda: pokes.poke("times_out") < 0, retries=2)
        PythonSensor(task_id="soft", python_callable=lambda: pokes.poke("soft") < 0, soft_fail=True)
        PythonSensor(task_id="not_done", python_callable=lambda: PokeReturnValue(False, "x"))
        PythonSensor(task_id="zero", python_callable=lambda: False, timeout=0)  # one poke, then timed out
    assert dag.test().tasks == {"times_out": "failed", "soft": "skipped", "not_done": "failed", "zero": "failed"}
    # ~0.3 s at 0.05 s is about 7 pokes for one try; three tries would be ~21
    assert 3 <= pokes.counts["times_out"] <= 12 and 3 <= pokes.counts["soft"] <= 12
    assert set(errors.seen) == {"times_out", "not_done", "zero"}
    for text in errors.seen.values():
        assert text.startswith("AirflowSensorTimeout: Sensor has timed out; run duration of ")
        assert text.endswith(" seconds exceeds the specified timeout of 0.3.") or text.endswith("timeout of 0.0.")


@needs_prefect
def test_errors_raised_by_poke() -> None:
    pokes, errors = Pokes(), Errors()

    def raises(name: str, exc: BaseException, after: int = 1) -> Any:
        def poke() -> bool:
            if pokes.poke(name) >= after:
                raise exc
            return False

        return poke

    cases = {
        # (exception, sensor kwargs, expected state)
        "fail_exc": (AirflowFailException("nope"), {"retries": 2}, "failed"),  # not retried
        "fail_exc_soft": (AirflowFailException("nope"), {"soft_fail": True}, "skipped"),
        "fail_exc_never": (AirflowFailException("nope"), {"never_fail": True}, "skipped"),
        "timeout_exc_soft": (AirflowSensorTimeout("t"), {"soft_fail": True}, "skipped"),
        "skip_exc": (AirflowSkipException("k"), {}, "skipped"),
        "value_error_retried": (ValueError("v"), {"retries": 1}, "failed"),  # retried once
        "value_error_soft": (ValueError("v"), {"soft_fail": True}, "failed"),  # soft_fail does not cover it
        "value_error_never": (ValueError("v"), {"never_fail": True}, "skipped"),
        "value_error_silent": (ValueError("v"), {"silent_fail": True}, "failed"),  # keeps poking until the timeout
    }
    with DAG("sensor_errors", schedule=None, default_args={"on_failure_callback": errors, "poke_interval": 0.05, "timeout": 0.3, "retry_delay": 0}) as dag:
        for task_id, (exc, kwargs, _) in cases.items():
            PythonSensor(task_id=task_id, python_callable=raises(task_id, exc, after=2 if task_id == "value_error_never" else 1), **kwargs)
    assert dag.test().tasks == {task_id: state for task_id, (_, _, state) in cases.items()}
    silent = pokes.counts.pop("value_error_silent")
    assert silent >= 3
    assert pokes.counts == {
        "fail_exc": 1,
        "fail_exc_soft": 1,
        "fail_exc_never": 1,
        "timeout_exc_soft": 1,
        "skip_exc": 1,
        "value_error_retried": 2,
        "value_error_soft": 1,
        "value_error_never": 2,
    }
    assert errors.seen["fail_exc"] == "AirflowFailException: nope"
    assert errors.seen["value_error_soft"] == "ValueError: v"
    assert errors.seen["value_error_silent"].startswith("AirflowSensorTimeout: ")


@needs_prefect
def test_python_sensor_arguments_and_context() -> None:
    def ready(a, b, templates_dict, ds, params):
        return a == 1 and b == "W" and templates_dict == {"k": "W"} and len(ds) == 10 and params["w"] == "W"

    with DAG("sensor_args", schedule=None, params={"w": "W"}) as dag:
        PythonSensor(
            task_id="args",
            python_callable=ready,
            op_args=[1],
            op_kwargs={"b": "{{ params.w }}"},
            templates_dict={"k": "{{ params.w }}"},
            poke_interval=0.05,
            timeout=2,
        )
    assert dag.test().tasks == {"args": "success"}


# --- exponential backoff ------------------------------------------------------------------------------

# (task_id, poke_interval, max_wait, timeout, mode, [(poke_count, run_duration, interval)]): the
# intervals computed by Airflow 2.10.5's BaseSensorOperator._get_next_poke_interval for dag "bo_dag",
# started_at 1234.5 (poke) or datetime(2024, 1, 2, 3, 4, 5, 678000, UTC) (reschedule).
AIRFLOW_BACKOFF = [
    ('s_1_poke', 1, None, 3600, 'poke', [(1, 0.0, 1), (2, 1.5, 1), (3, 4.2, 3), (5, 30.0, 15), (8, 99.0, 110)]),
    ('s_1_reschedule', 1, None, 3600, 'reschedule', [(1, 0.0, 1), (2, 1.5, 1), (3, 4.2, 3), (5, 30.0, 30), (8, 99.0, 90)]),
    ('s_0_1_poke', 0.1, None, 3600, 'poke', [(1, 0.0, 1), (2, 1.5, 1), (3, 4.2, 1), (5, 30.0, 1), (8, 99.0, 10)]),
    ('s_0_1_reschedule', 0.1, None, 3600, 'reschedule', [(1, 0.0, 1), (2, 1.5, 1), (3, 4.2, 1), (5, 30.0, 20), (8, 99.0, 55)]),
    ('s_7_poke', 7, timedelta(seconds=20), 3600, 'poke', [(1, 0.0, 4), (2, 1.5, 12), (3, 4.2, 20.0), (5, 30.0, 20.0), (8, 99.0, 20.0)]),
    ('s_7_reschedule', 7, timedelta(seconds=20), 3600, 'reschedule', [(1, 0.0, 3), (2, 1.5, 3), (3, 4.2, 11), (5, 30.0, 20.0), (8, 99.0, 20.0)]),
    ('s_60_poke', 60, None, 100, 'poke', [(1, 0.0, 46), (2, 1.5, 83), (3, 4.2, 96.0), (5, 30.0, 70.0), (8, 99.0, 1.0)]),
    ('s_60_reschedule', 60, None, 100, 'reschedule', [(1, 0.0, 40), (2, 1.5, 40), (3, 4.2, 40), (5, 30.0, 40), (8, 99.0, 1.0)]),
]


@pytest.mark.parametrize(("task_id", "interval", "max_wait", "timeout", "mode", "expected"), AIRFLOW_BACKOFF)
def test_exponential_backoff_is_airflows_formula(
    task_id: str, interval: float, max_wait: Any, timeout: float, mode: str, expected: list
) -> None:
    with DAG("bo_dag", schedule=None):
        sensor = PythonSensor(
            task_id=task_id,
            python_callable=print,
            poke_interval=interval,
            exponential_backoff=True,
            max_wait=max_wait,
            timeout=timeout,
            mode=mode,
        )
    started: Any = 1234.5 if mode == "poke" else datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    got = [(count, dur, sensor._get_next_poke_interval(started, lambda dur=dur: dur, count)) for count, dur, _ in expected]
    assert got == expected


def test_backoff_is_capped_by_max_wait_and_the_time_left() -> None:
    with DAG("cap", schedule=None):
        capped = PythonSensor(task_id="capped", python_callable=print, poke_interval=7, exponential_backoff=True, max_wait=timedelta(seconds=20))
        short = PythonSensor(task_id="short", python_callable=print, poke_interval=60, exponential_backoff=True, timeout=100)
        plain = PythonSensor(task_id="plain", python_callable=print, poke_interval=7)
    assert capped._get_next_poke_interval(1.0, lambda: 99.0, 8) == 20
    assert short._get_next_poke_interval(1.0, lambda: 30.0, 5) == 70  # timeout - int(run duration)
    assert plain._get_next_poke_interval(1.0, lambda: 99.0, 8) == 7


@needs_prefect
def test_backoff_with_max_wait_in_a_run() -> None:
    pokes = Pokes()
    with DAG("sensor_backoff", schedule=None) as dag:
        PythonSensor(
            task_id="backoff",
            python_callable=lambda: pokes.poke("backoff") >= 3,
            poke_interval=0.05,
            exponential_backoff=True,
            max_wait=timedelta(seconds=0.1),
            timeout=5,
        )
    assert dag.test().tasks == {"backoff": "success"}
    times = [t for _, t in pokes.times["backoff"]]
    assert len(times) == 3 and times[-1] - times[0] < 1.0  # waits of max_wait (0.1 s), not the 1 s minimum


# --- reschedule mode, execution timeout ------------------------------------------------------------------


@needs_prefect
def test_reschedule_clock_starts_at_the_first_rescheduled_try() -> None:
    """Retried after an error, a reschedule sensor keeps the clock of its first rescheduled try.

    Airflow 2.10.5 (same DAG): poke mode and a reschedule sensor whose first try failed before
    rescheduling get a fresh timeout in try 2 ("long"); a reschedule sensor whose first try had
    rescheduled once times out shortly into try 2 ("short").
    """
    pokes = Pokes()

    def sensor(name: str, fail_on_first_poke: bool) -> Any:
        def poke(ti: Any) -> bool:
            pokes.poke(name, ti.try_number)
            mine = [p for p in pokes.times[name] if p[0] == ti.try_number]
            if ti.try_number == 1 and (fail_on_first_poke or len(mine) == 2):
                time.sleep(1.0)
                raise ValueError("first try breaks")
            return False

        return poke

    args = {"retries": 1, "retry_delay": timedelta(0), "poke_interval": 0.2, "timeout": 1.5}
    with DAG("reschedule_clock", schedule=None, default_args=args) as dag:
        PythonSensor(task_id="resched_after_reschedule", python_callable=sensor("resched_after_reschedule", False), mode="reschedule")
        PythonSensor(task_id="resched_fail_first", python_callable=sensor("resched_fail_first", True), mode="reschedule")
        PythonSensor(task_id="poke_after_poke", python_callable=sensor("poke_after_poke", False))
    assert set(dag.test().tasks.values()) == {"failed"}

    def second_try_span(name: str) -> float:
        times = [t for n, t in pokes.times[name] if n == 2]
        return times[-1] - times[0]

    assert second_try_span("resched_after_reschedule") < 1.0
    assert second_try_span("resched_fail_first") >= 1.4
    assert second_try_span("poke_after_poke") >= 1.4


@needs_prefect
def test_execution_timeout_stops_the_wait_and_is_not_a_soft_fail() -> None:
    pokes = Pokes()
    with DAG("sensor_exec_timeout", schedule=None) as dag:
        PythonSensor(
            task_id="slow",
            python_callable=lambda: pokes.poke("slow") < 0,
            poke_interval=0.2,
            timeout=30,
            soft_fail=True,  # covers timeouts raised by poke only: this one fails the task
            execution_timeout=timedelta(seconds=0.5),
        )
    started = time.monotonic()
    assert dag.test().tasks == {"slow": "failed"}
    assert time.monotonic() - started < 20
    seen = pokes.counts["slow"]
    time.sleep(0.5)
    assert pokes.counts["slow"] == seen  # on_kill ended the waiting loop: no poke after the timeout


def test_on_kill_interrupts_the_wait_between_pokes() -> None:
    with DAG("kill", schedule=None):
        sensor = PythonSensor(task_id="k", python_callable=lambda: False, poke_interval=30, timeout=60)
    running = sensor.prepare_for_execution()
    context = {"ti": type("TI", (), {"try_number": 1})(), "templates_dict": None}
    outcome: list[BaseException] = []

    def target() -> None:
        try:
            running.execute(context)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    time.sleep(0.2)
    running.on_kill()
    thread.join(5)
    assert not thread.is_alive() and len(outcome) == 1 and isinstance(outcome[0], AirflowException)
