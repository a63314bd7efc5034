"""``airflow.utils.dates`` (2.10.5): ``days_ago``, ``cron_presets``, ``date_range``, ``round_time``...

Ported as they are, deprecation warnings included (``days_ago`` and ``date_range`` warn with
``RemovedInAirflow3Warning``).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any, Literal

from croniter import croniter
from dateutil.relativedelta import relativedelta

from lexis_prefect.airflow.exceptions import RemovedInAirflow3Warning
from lexis_prefect.airflow.scheduling.cron import cron_presets
from lexis_prefect.airflow.standard import timezone

__all__ = [
    "cron_presets",
    "date_range",
    "datetime_to_nano",
    "days_ago",
    "infer_time_unit",
    "parse_execution_date",
    "round_time",
    "scale_time_units",
]



def date_range(
    start_date: datetime,
    end_date: datetime | None = None,
    num: int | None = None,
    delta: str | timedelta | relativedelta | None = None,
) -> list[datetime]:
    """Dates from ``start_date`` every ``delta`` (a timedelta, relativedelta or cron expression)."""
    warnings.warn(
        "`airflow.utils.dates.date_range()` is deprecated. Please use `airflow.timetables`.",
        category=RemovedInAirflow3Warning,
        stacklevel=2,
    )
    if not delta:
        return []
    if end_date:
        if start_date > end_date:
            raise ValueError("Wait. start_date needs to be before end_date")
        if num:
            raise ValueError("Wait. Either specify end_date OR num")
    if not end_date and not num:
        end_date = timezone.utcnow()
    delta_iscron = False
    time_zone = start_date.tzinfo
    abs_delta: timedelta | relativedelta
    if isinstance(delta, str):
        delta_iscron = True
        if timezone.is_localized(start_date):
            start_date = timezone.make_naive(start_date, time_zone)
        cron = croniter(cron_presets.get(delta, delta), start_date)
    elif isinstance(delta, (timedelta, relativedelta)):
        abs_delta = abs(delta)
    else:
        raise TypeError("Wait. delta must be either datetime.timedelta or cron expression as str")

    def aware(date: datetime) -> datetime:
        return timezone.make_aware(date, time_zone) if timezone.is_naive(date) else date  # type: ignore[return-value]

    dates = []
    if end_date:
        if timezone.is_naive(start_date) and not timezone.is_naive(end_date):
            end_date = timezone.make_naive(end_date, time_zone)
        while start_date <= end_date:
            dates.append(aware(start_date))
            start_date = cron.get_next(datetime) if delta_iscron else start_date + abs_delta
    else:
        num_entries: int = num  # type: ignore[assignment]
        for _ in range(abs(num_entries)):
            dates.append(aware(start_date))
            if delta_iscron:
                start_date = cron.get_next(datetime) if num_entries > 0 else cron.get_prev(datetime)
            else:
                start_date = start_date + abs_delta if num_entries > 0 else start_date - abs_delta
    return sorted(dates)


def round_time(
    dt: datetime,
    delta: str | timedelta | relativedelta,
    start_date: datetime = timezone.make_aware(datetime.min),  # type: ignore[assignment]
) -> datetime:
    """``start_date + i * delta`` closest to ``dt`` (a binary search; cron: the previous fire time)."""
    if isinstance(delta, str):
        time_zone = start_date.tzinfo
        start_date = timezone.make_naive(start_date, time_zone)
        cron = croniter(delta, start_date)
        prev = cron.get_prev(datetime)
        if prev == start_date:
            return timezone.make_aware(start_date, time_zone)  # type: ignore[return-value]
        return timezone.make_aware(prev, time_zone)  # type: ignore[return-value]
    dt -= timedelta(microseconds=dt.microsecond)
    upper = 1
    while start_date + upper * delta < dt:
        upper *= 2
    lower = upper // 2
    while True:
        if start_date + (lower + 1) * delta >= dt:
            if (start_date + (lower + 1) * delta) - dt <= dt - (start_date + lower * delta):
                return start_date + (lower + 1) * delta
            return start_date + lower * delta
        candidate = lower + (upper - lower) // 2
        if start_date + candidate * delta >= dt:
            upper = candidate
        else:
            lower = candidate


TimeUnit = Literal["days", "hours", "minutes", "seconds"]


def infer_time_unit(time_seconds_arr: Collection[float]) -> TimeUnit:
    """The unit that suits durations given in seconds (5400 s: minutes, 36000 s: hours)."""
    if not time_seconds_arr:
        return "hours"
    max_time_seconds = max(time_seconds_arr)
    if max_time_seconds <= 60 * 2:
        return "seconds"
    if max_time_seconds <= 60 * 60 * 2:
        return "minutes"
    if max_time_seconds <= 24 * 60 * 60 * 2:
        return "hours"
    return "days"


def scale_time_units(time_seconds_arr: Collection[float], unit: TimeUnit) -> Collection[float]:
    """Durations in seconds converted to ``unit``."""
    factor = {"minutes": 60, "hours": 60 * 60, "days": 24 * 60 * 60}.get(unit, 1)
    return [x / factor for x in time_seconds_arr]


def days_ago(n: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime:
    """Midnight (UTC, or the given time of day) ``n`` days ago; deprecated in Airflow 2."""
    warnings.warn(
        "Function `days_ago` is deprecated and will be removed in Airflow 3.0. "
        "You can achieve equivalent behavior with `pendulum.today('UTC').add(days=-N, ...)`",
        RemovedInAirflow3Warning,
        stacklevel=2,
    )
    today = timezone.utcnow().replace(hour=hour, minute=minute, second=second, microsecond=microsecond)
    return today - timedelta(days=n)


def parse_execution_date(execution_date_str: str) -> Any:
    """A date string as an aware datetime (``timezone.parse``)."""
    return timezone.parse(execution_date_str)


def datetime_to_nano(datetime: datetime) -> int:
    """Nanoseconds since the epoch."""
    return int(datetime.timestamp() * 1000000000)
