"""Time sensors of Airflow 2.10.5: ``TimeDeltaSensor`` (``airflow.sensors.time_delta``),
``TimeSensor`` (``airflow.sensors.time_sensor``), ``DateTimeSensor`` (``airflow.sensors.date_time``)
and their deferrable ``...Async`` forms.

The sensors poke as Airflow's do (``poke_interval``, ``timeout``, ``soft_fail``, ``mode``). The
async forms defer to a ``DateTimeTrigger`` in Airflow, which frees the worker slot; the shim has no
triggerer, so they wait in place until the moment (no poke loop, no sensor timeout, as a deferral
without a timeout), holding their thread of the run's pool, and end as Airflow's ``execute_complete``
does (no XCom). An execution timeout or a stopped run cuts the wait short (``on_kill``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from lexis_prefect.airflow.exceptions import AirflowSkipException
from lexis_prefect.airflow.sensors import BaseSensorOperator
from lexis_prefect.airflow.standard import timezone

__all__ = [
    "DateTimeSensor",
    "DateTimeSensorAsync",
    "TimeDeltaSensor",
    "TimeDeltaSensorAsync",
    "TimeSensor",
    "TimeSensorAsync",
]


class _WaitsInPlace(BaseSensorOperator):
    """What stands for a deferral to a DateTimeTrigger: sleep until ``moment``, then complete."""

    def _wait_until(self, moment: datetime.datetime) -> None:
        if not isinstance(moment, datetime.datetime):
            raise TypeError("Expected datetime.datetime type for moment. Got {}".format(type(moment)))
        if moment.tzinfo is None:
            raise ValueError("You cannot pass naive datetimes")
        self.log.info("Waiting in place until %s (Airflow defers to a DateTimeTrigger)", moment)
        self._wait((moment - timezone.utcnow()).total_seconds())
        self.log.info("Trigger fired event")

    def execute_complete(self, context: Any, event: Any = None) -> None:
        """Handle the event when the trigger fires and return immediately."""
        return None


class TimeDeltaSensor(BaseSensorOperator):
    """Waits for ``delta`` after the run's data interval end."""

    def __init__(self, *, delta: datetime.timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delta = delta

    def poke(self, context: Any) -> bool:
        target_dttm = context["data_interval_end"]
        target_dttm += self.delta
        self.log.info("Checking if the time (%s) has come", target_dttm)
        return timezone.utcnow() > target_dttm


class TimeDeltaSensorAsync(TimeDeltaSensor, _WaitsInPlace):
    """TimeDeltaSensor that waits in place; returns True (pushed) only when no wait was needed."""

    def __init__(self, *, end_from_trigger: bool = False, delta: datetime.timedelta, **kwargs: Any) -> None:
        super().__init__(delta=delta, **kwargs)
        self.end_from_trigger = end_from_trigger

    def execute(self, context: Any) -> bool | None:
        target_dttm = context["data_interval_end"]
        target_dttm += self.delta
        if timezone.utcnow() > target_dttm:
            return True  # the target is in the past: Airflow returns at once
        try:
            self._wait_until(target_dttm)
        except (TypeError, ValueError) as e:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from e
            raise
        return self.execute_complete(context)


class TimeSensor(BaseSensorOperator):
    """Waits until the time of day (in the DAG's timezone) is past ``target_time``."""

    def __init__(self, *, target_time: datetime.time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time

    def poke(self, context: Any) -> bool:
        self.log.info("Checking if the time (%s) has come", self.target_time)
        return timezone.make_naive(timezone.utcnow(), timezone.dag_timezone(self.dag)).time() > self.target_time


class TimeSensorAsync(_WaitsInPlace):
    """Waits in place until ``target_time`` today (in the DAG's timezone).

    Airflow computes the moment when the DAG file is parsed, which a worker does right before the
    task runs; the shim parses a DAG file once per run, so it computes the moment again when the
    task starts (``target_datetime`` is then today's).
    """

    start_from_trigger = False

    def __init__(
        self,
        *,
        target_time: datetime.time,
        start_from_trigger: bool = False,
        trigger_kwargs: dict[str, Any] | None = None,
        end_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.start_from_trigger = start_from_trigger
        self.end_from_trigger = end_from_trigger
        self.target_time = target_time
        self.target_datetime = self._today_at(target_time)

    def _today_at(self, target_time: datetime.time) -> datetime.datetime:
        tz = timezone.dag_timezone(self.dag)
        aware_time = timezone.coerce_datetime(datetime.datetime.combine(datetime.datetime.today(), target_time, tz))
        return timezone.convert_to_utc(aware_time)  # type: ignore[return-value]

    def execute(self, context: Any) -> None:
        self.target_datetime = self._today_at(self.target_time)
        self._wait_until(self.target_datetime)
        return self.execute_complete(context)


class DateTimeSensor(BaseSensorOperator):
    """Waits until ``target_time`` (a datetime or a templated ISO string) has passed."""

    template_fields: Sequence[str] = ("target_time",)

    def __init__(self, *, target_time: str | datetime.datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # a template field: kept as a str
        if isinstance(target_time, datetime.datetime):
            self.target_time = target_time.isoformat()
        elif isinstance(target_time, str):
            self.target_time = target_time
        else:
            raise TypeError(f"Expected str or datetime.datetime type for target_time. Got {type(target_time)}")

    def poke(self, context: Any) -> bool:
        self.log.info("Checking if the time (%s) has come", self.target_time)
        return timezone.utcnow() > timezone.parse(self.target_time)


class DateTimeSensorAsync(DateTimeSensor, _WaitsInPlace):
    """DateTimeSensor that waits in place until ``target_time``."""

    start_from_trigger = False

    def __init__(
        self,
        *,
        start_from_trigger: bool = False,
        end_from_trigger: bool = False,
        trigger_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.end_from_trigger = end_from_trigger
        self.start_from_trigger = start_from_trigger

    def execute(self, context: Any) -> None:
        self._wait_until(timezone.parse(self.target_time))
        return self.execute_complete(context)
