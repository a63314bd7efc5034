"""Airflow's timezone helpers (``airflow/utils/timezone.py``) that the timetables use.

Airflow's default timezone (``[core] default_timezone``) is UTC, which is what the shim follows.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from pendulum import DateTime

UTC = pendulum.UTC
#: Airflow's ``settings.TIMEZONE`` with its default configuration.
DEFAULT_TIMEZONE = UTC


def utcnow() -> DateTime:
    return pendulum.now(UTC)


def parse_timezone(name: str | int) -> pendulum.Timezone | pendulum.FixedTimezone:
    return pendulum.timezone(name)


def make_aware(value: dt.datetime, timezone: dt.tzinfo | None = None) -> dt.datetime:
    """A naive time read in ``timezone`` (the second of a doubled hour, as Airflow picks)."""
    timezone = timezone or DEFAULT_TIMEZONE
    if value.tzinfo is not None and value.utcoffset() is not None:
        raise ValueError(f"make_aware expects a naive datetime, got {value}")
    value = value.replace(fold=1)
    convert = getattr(timezone, "convert", None)
    return convert(value) if convert is not None else value.replace(tzinfo=timezone)


def make_naive(value: dt.datetime, timezone: dt.tzinfo | None = None) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("make_naive() cannot be applied to a naive datetime")
    date = value.astimezone(timezone or DEFAULT_TIMEZONE)
    return dt.datetime(date.year, date.month, date.day, date.hour, date.minute, date.second, date.microsecond)


def convert_to_utc(value: dt.datetime | None) -> DateTime | None:
    """``value`` in UTC; a naive one is read in the default timezone."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        value = pendulum.instance(value, DEFAULT_TIMEZONE)
    return pendulum.instance(value.astimezone(UTC))


def coerce_datetime(value: dt.datetime | None, tz: dt.tzinfo | None = None) -> DateTime | None:
    """An aware pendulum DateTime (a naive one read in ``tz`` or the default timezone)."""
    if value is None:
        return None
    if isinstance(value, DateTime):
        return value if value.tzinfo else make_aware(value, tz)  # type: ignore[return-value]
    return pendulum.instance(value if value.tzinfo else make_aware(value, tz))


def dag_timezone(start_date: dt.datetime | None, default_args: dict) -> pendulum.Timezone | pendulum.FixedTimezone:
    """A DAG's timezone as Airflow's ``DAG.__init__`` settles it: its (or default_args') start_date's, else UTC."""
    date = start_date or default_args.get("start_date")
    if isinstance(date, str):
        date = pendulum.parse(date, tz=DEFAULT_TIMEZONE)
    if isinstance(date, dt.datetime) and date.tzinfo:
        return pendulum.instance(date).timezone or DEFAULT_TIMEZONE
    return DEFAULT_TIMEZONE
