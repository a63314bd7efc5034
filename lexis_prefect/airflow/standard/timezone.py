"""The parts of ``airflow.utils.timezone`` (2.10.5) the standard operators and DAG files use.

Airflow keeps every date timezone-aware (UTC unless said otherwise); a DAG's timezone is that of
its ``start_date`` (``DAG.timezone``), UTC when it has none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from pendulum.tz.timezone import FixedTimezone, Timezone

utc = pendulum.UTC
TIMEZONE: Timezone = utc  # Airflow's [core] default_timezone, which the shim keeps at utc


def utcnow() -> pendulum.DateTime:
    """Now, in UTC, aware."""
    return pendulum.now("UTC")


def is_localized(value: dt.datetime) -> bool:
    return value.utcoffset() is not None


def is_naive(value: dt.datetime) -> bool:
    return value.utcoffset() is None


def make_aware(value: dt.datetime | None, timezone: Any = None) -> dt.datetime | None:
    """A naive datetime read in ``timezone`` (default UTC); an aware one raises, as in Airflow."""
    if value is None:
        return None
    if not is_naive(value):
        raise ValueError(f"make_aware expects a naive datetime, got {value}")
    timezone = timezone or TIMEZONE
    if isinstance(timezone, (Timezone, FixedTimezone)):
        return pendulum.instance(value.replace(tzinfo=timezone))
    return value.replace(tzinfo=timezone)


def make_naive(value: dt.datetime, timezone: Any = None) -> dt.datetime:
    """An aware datetime as the naive wall time in ``timezone`` (default UTC)."""
    if is_naive(value):
        raise ValueError("make_naive() cannot be applied to a naive datetime")
    date = value.astimezone(timezone or TIMEZONE)
    return dt.datetime(date.year, date.month, date.day, date.hour, date.minute, date.second, date.microsecond)


def convert_to_utc(value: dt.datetime | None) -> pendulum.DateTime | None:
    """Naive values are taken as UTC (Airflow's default timezone)."""
    if value is None:
        return None
    if is_naive(value):
        value = value.replace(tzinfo=TIMEZONE)
    return pendulum.instance(value.astimezone(utc))


def coerce_datetime(value: dt.datetime | None, tz: Any = None) -> pendulum.DateTime | None:
    """A pendulum DateTime; a naive value gets ``tz`` (default UTC)."""
    if value is None:
        return None
    if isinstance(value, pendulum.DateTime):
        return value
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz or utc)
    return pendulum.instance(value)


def parse(string: str, timezone: Any = None, *, strict: bool = False) -> pendulum.DateTime:
    """``pendulum.parse``, naive strings read in ``timezone`` (default UTC)."""
    return pendulum.parse(string, tz=timezone or TIMEZONE, strict=strict)  # type: ignore[return-value]


def dag_timezone(dag: Any) -> Any:
    """``DAG.timezone``: the tz of its ``start_date``, else UTC (the default timezone)."""
    explicit = getattr(dag, "timezone", None)
    if explicit is not None:
        return explicit
    start = getattr(dag, "start_date", None) or (getattr(dag, "default_args", None) or {}).get("start_date")
    if isinstance(start, dt.datetime) and start.tzinfo is not None:
        return pendulum.instance(start).timezone
    return TIMEZONE
