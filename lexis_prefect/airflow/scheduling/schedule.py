"""A DAG's ``schedule`` / ``schedule_interval`` / ``timetable`` arguments, read as Airflow 2.10's
``DAG.__init__`` reads them, and the checks its ``DAG.validate`` makes (at load and in ``dag.test``).

Accepted: a cron string or preset (``@daily``...), ``@once``, ``@continuous``, ``None``, a
``timedelta`` / ``relativedelta``, a ``Timetable`` (built-in or custom), a dataset, an alias, a
``&`` / ``|`` expression, a list of datasets and aliases. Refused with Airflow's errors: more than
one of the three arguments, a schedule without a start date, a list holding anything but datasets,
``@continuous`` with ``max_active_runs`` above 1; at load: an invalid cron expression or a
non-positive delta (``AirflowTimetableInvalid``), required params without defaults on a DAG that
can be scheduled.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow.exceptions import AirflowException, ParamValidationError, RemovedInAirflow3Warning
from lexis_prefect.airflow.scheduling.cron import DEFAULT_SCHEDULE_INTERVAL, create_timetable
from lexis_prefect.airflow.scheduling.datasets import BaseDataset, Dataset, DatasetAlias, DatasetAll
from lexis_prefect.airflow.scheduling.timetables import DatasetTriggeredTimetable, Timetable

if TYPE_CHECKING:
    from lexis_prefect.airflow.dag import DAG


@dataclass(frozen=True)
class Schedule:
    """What the three arguments settle: the timetable and the legacy ``schedule_interval``."""

    timetable: Timetable
    schedule_interval: Any


def resolve_schedule(
    *,
    schedule: Any,
    schedule_interval: Any,
    timetable: Any,
    not_set: Any,
    timezone: Any,
    has_start_date: bool,
    max_active_runs: int,
) -> Schedule:
    """Airflow's reading of the scheduling arguments (``not_set`` is the shim's NOTSET sentinel)."""
    arguments = [schedule_interval, timetable, schedule]
    if any(a is not not_set and bool(a) for a in arguments) and not has_start_date:
        raise ValueError("DAG is missing the start_date parameter")
    if sum(a is not not_set and bool(a) for a in arguments) > 1:  # Airflow's at_most_one
        raise ValueError("At most one allowed for args 'schedule_interval', 'timetable', and 'schedule'.")
    if schedule_interval is not not_set:
        warnings.warn(
            "Param `schedule_interval` is deprecated and will be removed in a future release. "
            "Please use `schedule` instead. ",
            RemovedInAirflow3Warning,
            stacklevel=4,
        )
    if timetable is not None and timetable is not not_set:
        warnings.warn(
            "Param `timetable` is deprecated and will be removed in a future release. Please use `schedule` instead. ",
            RemovedInAirflow3Warning,
            stacklevel=4,
        )
        schedule = timetable
    elif schedule_interval is not not_set:
        schedule = schedule_interval
    if isinstance(schedule, Timetable):
        result = Schedule(schedule, schedule.summary)
    elif isinstance(schedule, BaseDataset):
        made = DatasetTriggeredTimetable(schedule)
        result = Schedule(made, made.summary)
    elif isinstance(schedule, Collection) and not isinstance(schedule, str):
        if not all(isinstance(x, (Dataset, DatasetAlias)) for x in schedule):
            raise ValueError("All elements in 'schedule' should be datasets or dataset aliases")
        made = DatasetTriggeredTimetable(DatasetAll(*schedule))
        result = Schedule(made, made.summary)
    elif schedule is not_set:
        warnings.warn(
            "Creating a DAG with an implicit schedule is deprecated, and will stop working "
            "in a future release. Set `schedule=datetime.timedelta(days=1)` explicitly.",
            RemovedInAirflow3Warning,
            stacklevel=4,
        )
        result = Schedule(create_timetable(None, timezone, not_set=True), DEFAULT_SCHEDULE_INTERVAL)
    else:
        result = Schedule(create_timetable(schedule, timezone), schedule)
    limit = result.timetable.active_runs_limit
    if limit is not None and limit < max_active_runs:
        raise AirflowException(f"Invalid max_active_runs: {type(result.timetable)} requires max_active_runs <= {limit}")
    return result


def check_schedule_params(dag: DAG) -> None:
    """Airflow's ``validate_schedule_and_params`` (in ``DAG.__init__`` and ``DAG.validate``): a DAG
    that can be scheduled needs a valid default for every param."""
    if not dag.timetable.can_be_scheduled:
        return
    try:
        dag.params.validate()
    except ParamValidationError as error:
        raise AirflowException(
            "DAG is not allowed to define a Schedule, "
            "if there are any required params without default values or default values are not valid."
        ) from error


def validate_schedule(dag: DAG) -> None:
    """The schedule part of Airflow's ``DAG.validate()`` (DagBag load, ``dag.test``)."""
    check_schedule_params(dag)
    dag.timetable.validate()
