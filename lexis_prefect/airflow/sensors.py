"""Airflow 2.10's sensors: ``BaseSensorOperator``, ``PythonSensor`` and ``PokeReturnValue``.

Ported from ``airflow/sensors/base.py`` and ``airflow/sensors/python.py`` (2.10.5): the same
arguments and validation, the poke loop with its timeout, ``soft_fail``/``silent_fail``/
``never_fail`` handling, exponential backoff with Airflow's hash-based jitter, and the same log
lines and messages.
"""

from __future__ import annotations

import hashlib
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from lexis_prefect.airflow.baseoperator import BaseOperator
from lexis_prefect.airflow.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
)
from lexis_prefect.airflow.operators import SkipMixin, determine_kwargs

__all__ = ["BaseSensorOperator", "PokeReturnValue", "PythonSensor", "poke_mode_only"]

#: Airflow's ``[sensors] default_timeout``: 7 days.
DEFAULT_SENSOR_TIMEOUT = 60 * 60 * 24 * 7


class PokeReturnValue:
    """What ``poke`` may return: done or not, and the value to push as XCom once done."""

    def __init__(self, is_done: bool, xcom_value: Any | None = None) -> None:
        self.xcom_value = xcom_value
        self.is_done = is_done

    def __bool__(self) -> bool:
        return self.is_done


class _SensorStopped(AirflowException):
    """``on_kill`` interrupted the wait between pokes (the try has already failed by timeout)."""


class BaseSensorOperator(BaseOperator, SkipMixin):
    """A task that calls ``poke(context)`` every ``poke_interval`` seconds until it returns true.

    ``timeout`` (default 7 days) ends it with ``AirflowSensorTimeout`` (failed, never retried),
    or ``skipped`` when ``soft_fail``. An error raised by ``poke`` fails the try (retries apply)
    unless ``silent_fail`` (logged, poking goes on) or ``never_fail`` (skipped). A
    ``PokeReturnValue(is_done=True, xcom_value=v)`` pushes ``v`` as the task's XCom.

    ``mode="reschedule"`` cannot hand the worker slot back here (a Prefect task run cannot be
    suspended and resumed later by the DAG's scheduler): the sensor waits in place between pokes,
    holding its thread of the DAG's task pool, exactly as in ``poke`` mode. What reschedule mode
    keeps from Airflow is its clock: the timeout counts from the start of the first try that
    was rescheduled (kept on the task instance as ``ti.first_try_start``), so a sensor retried
    after an error does not get a fresh timeout, and the backoff interval follows Airflow's
    reschedule formula.
    """

    ui_color: str = "#e6f1f2"
    valid_modes: Iterable[str] = ["poke", "reschedule"]

    def __init__(
        self,
        *,
        poke_interval: timedelta | float = 60,
        timeout: timedelta | float = DEFAULT_SENSOR_TIMEOUT,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait: timedelta | float | None = None,
        silent_fail: bool = False,
        never_fail: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.poke_interval = self._coerce(poke_interval, "poke_interval").total_seconds()
        self.soft_fail = soft_fail
        self.timeout = self._coerce(timeout, "timeout").total_seconds()
        self.mode = mode
        self.exponential_backoff = exponential_backoff
        self.max_wait = self._coerce(max_wait, "max_wait", optional=True)
        if soft_fail is True and never_fail is True:
            raise ValueError("soft_fail and never_fail are mutually exclusive, you can not provide both.")
        self.silent_fail = silent_fail
        self.never_fail = never_fail
        self._validate_input_values()

    @staticmethod
    def _coerce(value: float | timedelta | None, name: str, optional: bool = False) -> timedelta | None:
        """A non-negative number of seconds or a timedelta, as a timedelta (None too, if ``optional``)."""
        if (value is None and optional) or isinstance(value, timedelta):
            return value
        if isinstance(value, (int, float)) and value >= 0:
            return timedelta(seconds=value)
        raise AirflowException(f"Operator arg `{name}` must be timedelta object or a non-negative number")

    def _validate_input_values(self) -> None:
        if not isinstance(self.poke_interval, (int, float)) or self.poke_interval < 0:
            raise AirflowException("The poke_interval must be a non-negative number")
        if not isinstance(self.timeout, (int, float)) or self.timeout < 0:
            raise AirflowException("The timeout must be a non-negative number")
        if self.mode not in self.valid_modes:
            raise AirflowException(
                f"The mode must be one of {self.valid_modes},'{self.dag.dag_id if self.has_dag() else ''} "
                f".{self.task_id}'; received '{self.mode}'."
            )

    @property
    def reschedule(self) -> bool:
        """Define mode rescheduled sensors."""
        return self.mode == "reschedule"

    def poke(self, context: Any) -> bool | PokeReturnValue:
        """Override when deriving this class."""
        raise AirflowException("Override me.")

    def prepare_for_execution(self) -> BaseOperator:
        task = super().prepare_for_execution()
        task._stop = threading.Event()  # type: ignore[attr-defined]  # one per execution copy
        return task

    def _stop_event(self) -> threading.Event:
        event = self.__dict__.get("_stop")
        if event is None:
            event = self.__dict__.setdefault("_stop", threading.Event())
        return event

    def on_kill(self) -> None:
        """Stop waiting between pokes (the execution timeout has ended the try)."""
        self._stop_event().set()

    def _wait(self, seconds: float) -> None:
        """Sleep between pokes; ``on_kill`` cuts it short."""
        if self._stop_event().wait(max(seconds, 0)):
            raise _SensorStopped(f"Sensor {self.task_id} was stopped while waiting for its next poke")

    def execute(self, context: Any) -> Any:
        started_at: datetime | float
        ti = context["ti"]
        if self.reschedule:
            # Airflow takes the start of the first try that was rescheduled (its first
            # TaskReschedule record), else now; the shim keeps that start on the task instance,
            # which lives for the whole run, as ``ti.first_try_start``.
            start_date = getattr(ti, "first_try_start", None) or datetime.now(timezone.utc)
            started_at = start_date

            def run_duration() -> float:
                return (datetime.now(timezone.utc) - start_date).total_seconds()

        else:
            started_at = start_monotonic = time.monotonic()

            def run_duration() -> float:
                return time.monotonic() - start_monotonic

        poke_count = 1
        xcom_value = None
        while True:
            try:
                poke_return = self.poke(context)
            except (AirflowSensorTimeout, AirflowTaskTimeout, AirflowFailException) as e:
                if self.soft_fail:
                    raise AirflowSkipException("Skipping due to soft_fail is set to True.") from e
                elif self.never_fail:
                    raise AirflowSkipException("Skipping due to never_fail is set to True.") from e
                raise e
            except AirflowSkipException as e:
                raise e
            except Exception as e:
                if self.silent_fail:
                    self.log.error("Sensor poke failed: \n %s", traceback.format_exc())
                    poke_return = False
                elif self.never_fail:
                    raise AirflowSkipException("Skipping due to never_fail is set to True.") from e
                else:
                    raise e

            if poke_return:
                if isinstance(poke_return, PokeReturnValue):
                    xcom_value = poke_return.xcom_value
                break

            if run_duration() > self.timeout:
                message = (
                    f"Sensor has timed out; run duration of {run_duration()} seconds exceeds "
                    f"the specified timeout of {self.timeout}."
                )
                if self.soft_fail:
                    raise AirflowSkipException(message)
                raise AirflowSensorTimeout(message)
            if self.reschedule:
                # Airflow raises AirflowRescheduleException here (recording the try's start) and
                # pokes again in a later execution; the shim waits in place (see the class
                # docstring). Each rescheduled execution starts its count at 1: the formula
                # estimates the poke count from the elapsed time instead.
                if getattr(ti, "first_try_start", None) is None:
                    ti.first_try_start = start_date
                self._wait(self._get_next_poke_interval(started_at, run_duration, 1))
            else:
                self._wait(self._get_next_poke_interval(started_at, run_duration, poke_count))
                poke_count += 1
        self.log.info("Success criteria met. Exiting.")
        return xcom_value

    def _get_next_poke_interval(
        self,
        started_at: datetime | float,
        run_duration: Callable[[], float],
        poke_count: int,
    ) -> float:
        """Airflow's formula: the poke interval, or with ``exponential_backoff`` a jittered doubling."""
        if not self.exponential_backoff:
            return self.poke_interval

        if self.reschedule:
            elapsed_time = run_duration()
            cumulative_time: float = 0.0
            estimated_poke_count: int = 0
            while cumulative_time <= elapsed_time:
                estimated_poke_count += 1
                min_backoff = max(int(self.poke_interval * (2 ** (estimated_poke_count - 2))), 1)
                run_hash = int(
                    hashlib.sha1(f"{self.dag_id}#{self.task_id}#{started_at}#{estimated_poke_count}".encode()).hexdigest(),
                    16,
                )
                modded_hash = min_backoff + run_hash % min_backoff
                interval_with_jitter = min(modded_hash, timedelta.max.total_seconds() - 1)
                cumulative_time += interval_with_jitter
            poke_count = estimated_poke_count or poke_count

        min_backoff = max(int(self.poke_interval * (2 ** (poke_count - 2))), 1)
        run_hash = int(hashlib.sha1(f"{self.dag_id}#{self.task_id}#{started_at}#{poke_count}".encode()).hexdigest(), 16)
        modded_hash = min_backoff + run_hash % min_backoff
        delay_backoff_in_seconds = min(modded_hash, timedelta.max.total_seconds() - 1)
        new_interval = min(self.timeout - int(run_duration()), delay_backoff_in_seconds)
        if self.max_wait:
            new_interval = min(self.max_wait.total_seconds(), new_interval)
        self.log.info("new %s interval is %s", self.mode, new_interval)
        return new_interval


def poke_mode_only(cls: type[BaseSensorOperator]) -> type[BaseSensorOperator]:
    """Class decorator: the sensor only works in ``poke`` mode (setting another mode raises)."""

    def mode_getter(_: Any) -> str:
        return "poke"

    def mode_setter(_: Any, value: str) -> None:
        if value != "poke":
            raise ValueError(f"Cannot set mode to '{value}'. Only 'poke' is acceptable")

    if not issubclass(cls, BaseSensorOperator):
        raise ValueError(
            f"poke_mode_only decorator should only be applied to subclasses of BaseSensorOperator, got:{cls}."
        )
    cls.mode = property(mode_getter, mode_setter)  # type: ignore[assignment]
    return cls


class PythonSensor(BaseSensorOperator):
    """Waits for a Python callable to return a true value (or a done ``PokeReturnValue``).

    The callable gets its arguments as a PythonOperator's does: ``op_args``, ``op_kwargs`` and
    the context keys it names (all of them with ``**kwargs``); ``templates_dict`` is rendered.
    """

    template_fields: Sequence[str] = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable,
        op_args: list | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = op_args or []
        self.op_kwargs = op_kwargs or {}
        self.templates_dict = templates_dict

    def poke(self, context: Any) -> PokeReturnValue | bool:
        context.update(self.op_kwargs, templates_dict=self.templates_dict)
        self.op_kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        self.log.info("Poking callable: %s", str(self.python_callable))
        return_value = self.python_callable(*self.op_args, **self.op_kwargs)
        if isinstance(return_value, PokeReturnValue):
            return return_value
        return PokeReturnValue(bool(return_value))
