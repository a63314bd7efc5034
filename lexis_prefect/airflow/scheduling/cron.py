"""The cron and time-delta timetables: ``CronTriggerTimetable``, ``CronDataIntervalTimetable``,
``DeltaDataIntervalTimetable`` (and ``create_timetable``, what a ``schedule`` string or delta becomes).

Ported from Airflow 2.10.5 (``timetables/_cron.py``, ``trigger.py``, ``interval.py``;
Apache-2.0) on the same cron library, ``croniter``, with its DST handling, so the intervals are
Airflow's to the second. (``DeltaTriggerTimetable`` first appears in Airflow 2.11: not served.)
"""

from __future__ import annotations

import datetime
from typing import Any, Union

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from dateutil.relativedelta import relativedelta
from pendulum import DateTime

from lexis_prefect.airflow.exceptions import AirflowTimetableInvalid
from lexis_prefect.airflow.scheduling import tz
from lexis_prefect.airflow.scheduling.timetables import (
    ContinuousTimetable,
    DagRunInfo,
    DataInterval,
    NullTimetable,
    OnceTimetable,
    TimeRestriction,
    Timetable,
)

Delta = Union[datetime.timedelta, relativedelta]

#: ``airflow.utils.dates.cron_presets``.
cron_presets: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
#: Airflow's schedule when a DAG names none (with a deprecation warning).
DEFAULT_SCHEDULE_INTERVAL = datetime.timedelta(days=1)


def _covers_every_hour(cron: croniter) -> bool:
    """A cron that runs every hour needs the "fold hour" fix at the end of DST (as in Airflow)."""
    return cron.expanded[1] == ["*"]


class CronMixin:
    """A cron expression read in a timezone (DST-aware next/previous times)."""

    def __init__(self, cron: str, timezone: Any) -> None:
        self._expression = cron_presets.get(cron, cron)
        self._timezone = tz.parse_timezone(timezone) if isinstance(timezone, str) else timezone
        self.description: str = ""  # Airflow's is cron_descriptor's English text (UI only)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self._expression == other._expression and self._timezone == other._timezone

    __hash__ = object.__hash__

    @property
    def summary(self) -> str:
        return self._expression

    def validate(self) -> None:
        try:
            croniter(self._expression)
        except (CroniterBadCronError, CroniterBadDateError) as e:
            raise AirflowTimetableInvalid(str(e)) from None

    def _step(self, current: DateTime, forward: bool) -> DateTime:
        """The first cron time after (or before) ``current``, with Airflow's DST fix."""
        naive = tz.make_naive(current, self._timezone)
        cron = croniter(self._expression, start_time=naive)
        scheduled = cron.get_next(datetime.datetime) if forward else cron.get_prev(datetime.datetime)
        if not _covers_every_hour(cron):
            return tz.convert_to_utc(tz.make_aware(scheduled, self._timezone))  # type: ignore[return-value]
        return tz.convert_to_utc(current.in_timezone(self._timezone) + (scheduled - naive))  # type: ignore[return-value]

    def _get_next(self, current: DateTime) -> DateTime:
        return self._step(current, forward=True)

    def _get_prev(self, current: DateTime) -> DateTime:
        return self._step(current, forward=False)

    def _align_to_next(self, current: DateTime) -> DateTime:
        next_time = self._get_next(current)
        return next_time if self._get_prev(next_time) != current else current

    def _align_to_prev(self, current: DateTime) -> DateTime:
        prev_time = self._get_prev(current)
        return prev_time if self._get_next(prev_time) != current else current


class CronTriggerTimetable(CronMixin, Timetable):
    """Runs at each cron time; the data interval is ``[time - interval, time]`` (default: the instant)."""

    def __init__(self, cron: str, *, timezone: Any, interval: Delta = datetime.timedelta()) -> None:
        super().__init__(cron, timezone)
        self._interval = interval

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        return DataInterval(run_after - self._interval, run_after)

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction) -> DagRunInfo | None:
        if restriction.catchup:
            if last_automated_data_interval is not None:
                next_start_time = self._get_next(last_automated_data_interval.end)
            elif restriction.earliest is None:
                return None
            else:
                next_start_time = self._align_to_next(restriction.earliest)
        else:
            candidates = [self._align_to_prev(tz.utcnow())]
            if last_automated_data_interval is not None:
                candidates.append(self._get_next(last_automated_data_interval.end))
            if restriction.earliest is not None:
                candidates.append(self._align_to_next(restriction.earliest))
            next_start_time = max(candidates)
        if restriction.latest is not None and restriction.latest < next_start_time:
            return None
        return DagRunInfo.interval(next_start_time - self._interval, next_start_time)


class _DataIntervalTimetable(Timetable):
    """Periodic data intervals; each run is due at the end of its interval."""

    def _skip_to_latest(self, earliest: DateTime | None) -> DateTime:
        raise NotImplementedError()

    def _align_to_next(self, current: DateTime) -> DateTime:
        raise NotImplementedError()

    def _align_to_prev(self, current: DateTime) -> DateTime:
        raise NotImplementedError()

    def _get_next(self, current: DateTime) -> DateTime:
        raise NotImplementedError()

    def _get_prev(self, current: DateTime) -> DateTime:
        raise NotImplementedError()

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction) -> DagRunInfo | None:
        earliest = restriction.earliest
        if not restriction.catchup:
            earliest = self._skip_to_latest(earliest)
        elif earliest is not None:
            earliest = self._align_to_next(earliest)
        if last_automated_data_interval is None:
            if earliest is None:
                return None
            start = earliest
        else:
            aligned_end = self._align_to_prev(last_automated_data_interval.end)
            start = max(aligned_end, earliest) if earliest is not None else aligned_end
        if restriction.latest is not None and start > restriction.latest:
            return None
        return DagRunInfo.interval(start=start, end=self._get_next(start))


class CronDataIntervalTimetable(CronMixin, _DataIntervalTimetable):
    """``schedule=<cron>``: the interval between two cron times, run at its end."""

    def _skip_to_latest(self, earliest: DateTime | None) -> DateTime:
        current_time = tz.utcnow()
        last_start = self._get_prev(current_time)
        next_start = self._get_next(last_start)
        if next_start == current_time:
            new_start = last_start
        elif next_start > current_time:
            new_start = self._get_prev(last_start)
        else:
            raise AssertionError("next schedule shouldn't be earlier")
        return new_start if earliest is None else max(new_start, self._align_to_next(earliest))

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        # the last complete interval before run_after
        end = self._align_to_prev(run_after)
        return DataInterval(start=self._get_prev(end), end=end)


class DeltaDataIntervalTimetable(_DataIntervalTimetable):
    """``schedule=<timedelta or relativedelta>``: intervals of that length, run at their end."""

    def __init__(self, delta: Delta) -> None:
        self._delta = delta

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, DeltaDataIntervalTimetable):
            return NotImplemented
        return self._delta == other._delta

    __hash__ = object.__hash__

    @property
    def summary(self) -> str:
        return str(self._delta)

    def validate(self) -> None:
        now = datetime.datetime.now()
        if (now + self._delta) <= now:
            raise AirflowTimetableInvalid(f"schedule interval must be positive, not {self._delta!r}")

    def _get_next(self, current: DateTime) -> DateTime:
        return tz.convert_to_utc(current + self._delta)  # type: ignore[return-value]

    def _get_prev(self, current: DateTime) -> DateTime:
        return tz.convert_to_utc(current - self._delta)  # type: ignore[return-value]

    def _align_to_next(self, current: DateTime) -> DateTime:
        return current

    def _align_to_prev(self, current: DateTime) -> DateTime:
        return current

    def _seconds(self) -> float:
        if isinstance(self._delta, datetime.timedelta):
            return self._delta.total_seconds()
        d = self._delta
        return d.years * 365 * 86400 + d.months * 30 * 86400 + d.days * 86400 + d.hours * 3600 + d.minutes * 60 + d.seconds

    def _skip_to_latest(self, earliest: DateTime | None) -> DateTime:
        now = tz.utcnow().timestamp()
        rounded = DateTime.fromtimestamp(now - (now % self._seconds()), tz=tz.UTC)
        new_start = self._get_prev(rounded)
        return new_start if earliest is None else max(new_start, earliest)

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        return DataInterval(start=self._get_prev(run_after), end=run_after)


def create_timetable(interval: Any, timezone: Any, *, not_set: bool = False) -> Timetable:
    """The timetable of a ``schedule`` / ``schedule_interval`` value (Airflow's ``create_timetable``;
    ``[scheduler] create_cron_data_intervals`` is True in 2.10, so a cron string has data intervals)."""
    if not_set:
        return DeltaDataIntervalTimetable(DEFAULT_SCHEDULE_INTERVAL)
    if interval is None:
        return NullTimetable()
    if interval == "@once":
        return OnceTimetable()
    if interval == "@continuous":
        return ContinuousTimetable()
    if isinstance(interval, (datetime.timedelta, relativedelta)):
        return DeltaDataIntervalTimetable(interval)
    if isinstance(interval, str):
        return CronDataIntervalTimetable(interval, timezone)
    raise ValueError(f"{interval!r} is not a valid schedule_interval.")


# Airflow's module paths, as in timetables.py
CronTriggerTimetable.__module__ = "airflow.timetables.trigger"
CronDataIntervalTimetable.__module__ = DeltaDataIntervalTimetable.__module__ = "airflow.timetables.interval"
