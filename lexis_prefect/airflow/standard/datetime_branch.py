"""``BranchDateTimeOperator`` (``airflow.operators.datetime``, 2.10.5): branch on the time now.

True branch when now (or the logical date, with ``use_task_logical_date``) lies between
``target_lower`` and ``target_upper``; times of day are combined with that date, and an upper time
before the lower one means the next day.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from lexis_prefect.airflow.exceptions import AirflowException
from lexis_prefect.airflow.operators import BaseBranchOperator
from lexis_prefect.airflow.standard import timezone
from lexis_prefect.airflow.standard.weekday import _logical_date_flag

__all__ = ["BranchDateTimeOperator", "target_times_as_dates"]


class BranchDateTimeOperator(BaseBranchOperator):
    """Follows ``follow_task_ids_if_true`` inside [target_lower, target_upper], else the others."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        target_lower: datetime.datetime | datetime.time | None,
        target_upper: datetime.datetime | datetime.time | None,
        use_task_logical_date: bool = False,
        use_task_execution_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if target_lower is None and target_upper is None:
            raise AirflowException(
                "Both target_upper and target_lower are None. At least one "
                "must be defined to be compared to the current datetime"
            )
        self.target_lower = target_lower
        self.target_upper = target_upper
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.use_task_logical_date = _logical_date_flag(
            use_task_logical_date, use_task_execution_date, "use_task_execution_date"
        )

    def choose_branch(self, context: Any) -> str | Iterable[str]:
        if self.use_task_logical_date:
            now = context["logical_date"]
        else:
            now = timezone.coerce_datetime(timezone.utcnow())
        lower, upper = target_times_as_dates(now, self.target_lower, self.target_upper)
        tz = timezone.dag_timezone(self.dag)
        lower = timezone.coerce_datetime(lower, tz)
        upper = timezone.coerce_datetime(upper, tz)
        if upper is not None and upper < now:
            return self.follow_task_ids_if_false
        if lower is not None and lower > now:
            return self.follow_task_ids_if_false
        return self.follow_task_ids_if_true


def target_times_as_dates(
    base_date: datetime.datetime,
    lower: datetime.datetime | datetime.time | None,
    upper: datetime.datetime | datetime.time | None,
) -> tuple[Any, Any]:
    """The targets as datetimes: times of day on ``base_date``'s day (upper the day after if earlier)."""
    if isinstance(lower, datetime.datetime) and isinstance(upper, datetime.datetime):
        return lower, upper
    if lower is not None and isinstance(lower, datetime.time):
        lower = datetime.datetime.combine(base_date, lower)
    if upper is not None and isinstance(upper, datetime.time):
        upper = datetime.datetime.combine(base_date, upper)
    if lower is None or upper is None:
        return lower, upper
    if upper < lower:
        upper += datetime.timedelta(days=1)
    return lower, upper
