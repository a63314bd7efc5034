"""Days of the week: ``WeekDay`` (``airflow.utils.weekday``), ``BranchDayOfWeekOperator``
(``airflow.operators.weekday``) and ``DayOfWeekSensor`` (``airflow.sensors.weekday``), 2.10.5.

Without ``use_task_logical_date`` they look at today's date (in the DAG's timezone for the branch,
in UTC for the sensor, as Airflow does), so their outcome depends on the day a run happens.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Iterable
from typing import Any

from lexis_prefect.airflow.exceptions import RemovedInAirflow3Warning
from lexis_prefect.airflow.operators import BaseBranchOperator
from lexis_prefect.airflow.sensors import BaseSensorOperator
from lexis_prefect.airflow.standard import timezone

__all__ = ["BranchDayOfWeekOperator", "DayOfWeekSensor", "WeekDay"]


@enum.unique
class WeekDay(enum.IntEnum):
    """Days of the week, numbered as ISO does (Monday is 1)."""

    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def get_weekday_number(cls, week_day_str: str) -> WeekDay:
        """The day named ``week_day_str`` (any case); an unknown name raises AttributeError."""
        sanitized_week_day_str = week_day_str.upper()
        if sanitized_week_day_str not in cls.__members__:
            raise AttributeError(f'Invalid Week Day passed: "{week_day_str}"')
        return cls[sanitized_week_day_str]

    @classmethod
    def convert(cls, day: str | WeekDay) -> int:
        """The day number of a name or a WeekDay."""
        if isinstance(day, WeekDay):
            return day
        return cls.get_weekday_number(week_day_str=day)

    @classmethod
    def validate_week_day(cls, week_day: str | WeekDay | Iterable[str] | Iterable[WeekDay]) -> set[int]:
        """The set of day numbers of a name, a WeekDay or an iterable of them."""
        if not isinstance(week_day, Iterable):
            if isinstance(week_day, WeekDay):
                week_day = {week_day}
            else:
                raise TypeError(
                    f"Unsupported Type for week_day parameter: {type(week_day)}."
                    "Input should be iterable type:"
                    "str, set, list, dict or Weekday enum type"
                )
        if isinstance(week_day, str):
            week_day = {week_day}
        return {cls.convert(item) for item in week_day}


def _logical_date_flag(use_task_logical_date: bool, deprecated: bool, name: str) -> bool:
    """``use_task_logical_date``, or the deprecated ``use_task_execution_*`` spelling (warns)."""
    if deprecated:
        warnings.warn(
            f"Parameter ``{name}`` is deprecated. Use ``use_task_logical_date``.",
            RemovedInAirflow3Warning,
            stacklevel=4,
        )
        return deprecated
    return use_task_logical_date


class BranchDayOfWeekOperator(BaseBranchOperator):
    """Follows ``follow_task_ids_if_true`` when the day is one of ``week_day``, else the others."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        week_day: str | Iterable[str] | WeekDay | Iterable[WeekDay],
        use_task_logical_date: bool = False,
        use_task_execution_day: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.week_day = week_day
        self.use_task_logical_date = _logical_date_flag(
            use_task_logical_date, use_task_execution_day, "use_task_execution_day"
        )
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def choose_branch(self, context: Any) -> str | Iterable[str]:
        if self.use_task_logical_date:
            now = context["logical_date"]
        else:
            now = timezone.make_naive(timezone.utcnow(), timezone.dag_timezone(self.dag))
        if now.isoweekday() in self._week_day_num:
            return self.follow_task_ids_if_true
        return self.follow_task_ids_if_false


class DayOfWeekSensor(BaseSensorOperator):
    """Waits until the day (UTC, or of the logical date) is one of ``week_day``."""

    def __init__(
        self,
        *,
        week_day: str | Iterable[str] | WeekDay | Iterable[WeekDay],
        use_task_logical_date: bool = False,
        use_task_execution_day: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.week_day = week_day
        self.use_task_logical_date = _logical_date_flag(
            use_task_logical_date, use_task_execution_day, "use_task_execution_day"
        )
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def poke(self, context: Any) -> bool:
        self.log.info(
            "Poking until weekday is in %s, Today is %s",
            self.week_day,
            WeekDay(timezone.utcnow().isoweekday()).name,
        )
        if self.use_task_logical_date:
            return context["logical_date"].isoweekday() in self._week_day_num
        return timezone.utcnow().isoweekday() in self._week_day_num
