"""A DAG run's type, run id, logical date and data interval, as Airflow derives them from the timetable.

- ``dag.test(execution_date)`` and any run started by hand (a deployment run from the UI or
  the API, ``lexis-prefect airflow test``): Airflow's manual run. ``run_after`` is the execution
  date (now by default), the logical date is ``run_after`` itself, the data interval
  ``timetable.infer_manual_data_interval(run_after)`` (``[prev cron tick, last cron tick]`` for a
  cron schedule, ``[run_after - delta, run_after]`` for a delta), the run id
  ``manual__<run_after>``.
- A run Prefect's scheduler made from the deployment's schedule (``auto_scheduled``), due at
  ``T``: Airflow's scheduled run due at ``T``. The schedule fires where the timetable's runs are
  due (:mod:`.triggers`), so its data interval is the one that ends at ``T``
  (``infer_manual_data_interval(T)``), its logical date the interval's start, its run id
  ``scheduled__<logical date>``: a ``@daily`` run due at midnight covers the previous day.
- A run a deployment trigger made from dataset events (its idempotency key names the
  automation) of a DAG scheduled on datasets: ``dataset_triggered__<now>``, the interval the
  instant it started (Airflow spans the triggering events' source runs; those are not read).

Dates are given in UTC, as Airflow's context gives them (read back from its database).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pendulum

from lexis_prefect.airflow.scheduling import tz
from lexis_prefect.airflow.scheduling.timetables import DataInterval

if TYPE_CHECKING:
    from lexis_prefect.airflow.dag import DAG

RUN_TYPES = ("manual", "scheduled", "dataset_triggered")


@dataclass(frozen=True)
class RunDates:
    """What a run's context says of when it is."""

    run_type: str
    run_id: str
    logical_date: pendulum.DateTime
    data_interval: DataInterval
    #: Airflow's ``dag_run.external_trigger``: True for a run triggered from outside (UI, API);
    #: ``dag.test`` creates its manual run with False, so its prev/next dates come from the timetable.
    external_trigger: bool = False


def _utc(value: datetime) -> pendulum.DateTime:
    return pendulum.instance(value).in_timezone("UTC")


def manual_run(dag: DAG, execution_date: datetime | None = None, external_trigger: bool = False) -> RunDates:
    """Airflow's manual run: logical date ``execution_date`` (default now); ``dag.test``'s is not
    an external trigger, one started from the UI or the API is."""
    execution_date = execution_date or tz.utcnow()
    logical_date = tz.coerce_datetime(execution_date)
    interval = dag.timetable.infer_manual_data_interval(run_after=logical_date)
    return RunDates(
        "manual",
        f"manual__{execution_date.isoformat()}",
        _utc(logical_date),
        DataInterval(_utc(interval.start), _utc(interval.end)),
        external_trigger,
    )


def scheduled_run(dag: DAG, due: datetime) -> RunDates:
    """Airflow's scheduled run due at ``due``: the data interval that ends then."""
    interval = dag.timetable.infer_manual_data_interval(run_after=tz.coerce_datetime(due))
    start, end = _utc(interval.start), _utc(interval.end)
    return RunDates("scheduled", f"scheduled__{start.isoformat()}", start, DataInterval(start, end))


def dataset_triggered_run(dag: DAG, at: datetime) -> RunDates:
    at = _utc(at)
    return RunDates("dataset_triggered", f"dataset_triggered__{at.isoformat()}", at, DataInterval(at, at))


def kind_of_flow_run(dag: DAG, flow_run: Any) -> str:
    """Which of Airflow's run types a Prefect flow run stands for (see the module docstring)."""
    if flow_run is None:
        return "manual"
    if getattr(flow_run, "auto_scheduled", False):
        return "scheduled"
    key = getattr(flow_run, "idempotency_key", None) or ""
    if key.startswith("automation ") and dag.timetable.dataset_condition:
        return "dataset_triggered"
    return "manual"


def current_flow_run() -> Any:
    """The Prefect flow run being executed here, or None."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context.flow_run if context is not None else None


def run_dates_of_flow_run(dag: DAG, flow_run: Any, started: datetime | None = None) -> RunDates | None:
    """A scheduled or dataset-triggered flow run's dates (None for a manual one: see the runner)."""
    kind = kind_of_flow_run(dag, flow_run)
    if kind == "scheduled":
        return scheduled_run(dag, flow_run.expected_start_time)
    if kind == "dataset_triggered":
        return dataset_triggered_run(dag, flow_run.expected_start_time or started or tz.utcnow())
    return None


def previous_and_next(dag: DAG, dates: RunDates) -> tuple[pendulum.DateTime | None, pendulum.DateTime | None]:
    """``prev_execution_date`` / ``next_execution_date`` of the context: for a manual run both are its
    logical date (Airflow); for another, the timetable's neighbouring schedule."""
    if dates.external_trigger:
        return dates.logical_date, dates.logical_date
    from lexis_prefect.airflow.scheduling.cron import _DataIntervalTimetable
    from lexis_prefect.airflow.scheduling.timetables import TimeRestriction

    timetable = dag.timetable
    # Airflow's dag.next_dagrun_info(interval, restricted=False) and dag.previous_schedule(logical date)
    following = timetable.next_dagrun_info(
        last_automated_data_interval=dates.data_interval, restriction=TimeRestriction(None, None, True)
    )
    previous = None
    if isinstance(timetable, _DataIntervalTimetable):
        previous = timetable._get_prev(dates.logical_date)
    return previous, following.logical_date if following is not None else None
