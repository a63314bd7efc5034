"""``LatestOnlyOperator`` (``airflow.operators.latest_only``, 2.10.5).

Skips its direct downstream tasks unless the run is the latest scheduled one. Every run the shim
makes (``dag.test``, the CLI, a deployment run) is a manual one, ``external_trigger`` true, for
which Airflow lets everything proceed; a run marked scheduled (``dag_run.external_trigger``
false) is checked as Airflow checks it: the next data interval after this run's must contain now.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from lexis_prefect.airflow.operators import BaseBranchOperator
from lexis_prefect.airflow.standard import timezone

__all__ = ["LatestOnlyOperator"]


class LatestOnlyOperator(BaseBranchOperator):
    """Skip the direct downstream tasks of runs that are not the most recent scheduled one."""

    ui_color = "#e9ffdb"  # nyanza

    def choose_branch(self, context: Any) -> str | Iterable[str]:
        dag_run = context["dag_run"]
        if dag_run.external_trigger:
            self.log.info("Externally triggered DAG_Run: allowing execution to proceed.")
            return list(context["task"].get_direct_relative_ids(upstream=False))
        next_interval = _next_data_interval(context["dag"], dag_run)
        now = timezone.utcnow()
        if next_interval is None:
            self.log.info("Last scheduled execution: allowing execution to proceed.")
            return list(context["task"].get_direct_relative_ids(upstream=False))
        left_window, right_window = next_interval
        self.log.info(
            "Checking latest only with left_window: %s right_window: %s now: %s", left_window, right_window, now
        )
        if not left_window < now <= right_window:
            self.log.info("Not latest execution, skipping downstream.")
            return []
        self.log.info("Latest, allowing execution to proceed.")
        return list(context["task"].get_direct_relative_ids(upstream=False))


def _next_data_interval(dag: Any, dag_run: Any) -> tuple[datetime, datetime] | None:
    """The data interval after ``dag_run``'s, for a cron or timedelta schedule (Airflow's
    ``dag.next_dagrun_info(..., restricted=False)``); None when the DAG has no such schedule."""
    next_info = getattr(dag, "next_dagrun_info", None)
    if callable(next_info) and hasattr(dag, "get_run_data_interval"):  # a DAG model that knows its timetable
        info = next_info(dag.get_run_data_interval(dag_run), restricted=False)
        return None if info is None else tuple(info.data_interval)  # type: ignore[return-value]
    schedule = getattr(dag, "schedule", None)
    end = dag_run.data_interval_end
    if isinstance(schedule, timedelta):
        return end, end + schedule
    if isinstance(schedule, str):
        from croniter import croniter

        from lexis_prefect.airflow.standard.dates import cron_presets

        expression = cron_presets.get(schedule, schedule)
        if not croniter.is_valid(expression):
            return None
        tz = timezone.dag_timezone(dag)
        # CronDataIntervalTimetable: the next interval starts where this run's ended
        right = croniter(expression, timezone.make_naive(end, tz)).get_next(datetime)
        return end, timezone.make_aware(right, tz)
    return None
