"""``airflow.timetables``: the base protocol and the timetables that are not cron or delta based.

Ported from Airflow 2.10.5 (``timetables/base.py``, ``simple.py``, ``events.py``,
``datasets.py``; Apache-2.0), so that a DAG's data interval, logical date and run id come out as
Airflow computes them: ``infer_manual_data_interval`` for ``dag.test`` and manual runs,
``next_dagrun_info`` for a scheduled deployment run. A custom timetable (a ``Timetable``
subclass in the DAG file, an importable module or a plugin) works the same way through these
two methods; its deployment has no Prefect schedule (see :mod:`.triggers`).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import pendulum
from pendulum import DateTime

from lexis_prefect.airflow.exceptions import AirflowTimetableInvalid
from lexis_prefect.airflow.scheduling import tz
from lexis_prefect.airflow.scheduling.datasets import BaseDataset, Dataset, DatasetAlias, DatasetAll, _DatasetAliasCondition


class _NullDataset(BaseDataset):
    """No datasets (a time-only timetable's ``dataset_condition``)."""

    def __bool__(self) -> bool:
        return False

    def __or__(self, other: BaseDataset) -> BaseDataset:
        return NotImplemented

    def __and__(self, other: BaseDataset) -> BaseDataset:
        return NotImplemented

    def as_expression(self) -> Any:
        return None

    def evaluate(self, statuses: dict[str, bool]) -> bool:
        return False

    def iter_datasets(self) -> Iterator[tuple[str, Dataset]]:
        return iter(())

    def iter_dataset_aliases(self) -> Iterator[DatasetAlias]:
        return iter(())


class DataInterval(NamedTuple):
    """The data a run covers; both ends aware."""

    start: DateTime
    end: DateTime

    @classmethod
    def exact(cls, at: DateTime) -> DataInterval:
        return cls(start=at, end=at)


class TimeRestriction(NamedTuple):
    """When runs may be: not before ``earliest`` nor after ``latest`` (inclusive); ``catchup``."""

    earliest: DateTime | None
    latest: DateTime | None
    catchup: bool


class DagRunInfo(NamedTuple):
    """When a scheduled run is due (``run_after``) and what data it covers."""

    run_after: DateTime
    data_interval: DataInterval

    @classmethod
    def exact(cls, at: DateTime) -> DagRunInfo:
        return cls(run_after=at, data_interval=DataInterval.exact(at))

    @classmethod
    def interval(cls, start: DateTime, end: DateTime) -> DagRunInfo:
        return cls(run_after=end, data_interval=DataInterval(start, end))

    @property
    def logical_date(self) -> DateTime:
        return self.data_interval.start


class Timetable:
    """What every timetable provides (Airflow's ``Timetable`` protocol, as a base class)."""

    description: str = ""
    periodic: bool = True
    _can_be_scheduled: bool = True
    run_ordering: Sequence[str] = ("data_interval_end", "execution_date")
    active_runs_limit: int | None = None
    dataset_condition: BaseDataset = _NullDataset()

    @property
    def can_be_scheduled(self) -> bool:
        return self._can_be_scheduled

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls()

    def serialize(self) -> dict[str, Any]:
        return {}

    def validate(self) -> None:
        """Raise :class:`AirflowTimetableInvalid` if misconfigured (checked when the DAG is loaded)."""

    @property
    def summary(self) -> str:
        return type(self).__name__

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        raise NotImplementedError()

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        raise NotImplementedError()

    def generate_run_id(self, *, run_type: str, logical_date: DateTime, data_interval: DataInterval | None, **extra: Any) -> str:
        return f"{run_type}__{logical_date.isoformat()}"


class _TrivialTimetable(Timetable):
    periodic = False
    run_ordering: Sequence[str] = ("execution_date",)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return True

    __hash__ = object.__hash__

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        return DataInterval.exact(run_after)


class NullTimetable(_TrivialTimetable):
    """``schedule=None``: never scheduled, external triggers only."""

    can_be_scheduled = False  # type: ignore[assignment]
    description: str = "Never, external triggers only"

    @property
    def summary(self) -> str:
        return "None"

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction) -> DagRunInfo | None:
        return None


class OnceTimetable(_TrivialTimetable):
    """``schedule="@once"``: one run at the start date."""

    description: str = "Once, as soon as possible"

    @property
    def summary(self) -> str:
        return "@once"

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction) -> DagRunInfo | None:
        if last_automated_data_interval is not None or restriction.earliest is None:
            return None
        run_after = restriction.earliest
        if restriction.latest is not None and run_after > restriction.latest:
            return None
        return DagRunInfo.exact(run_after)


class ContinuousTimetable(_TrivialTimetable):
    """``schedule="@continuous"``: one run after the other (``max_active_runs`` must be 1)."""

    description: str = "As frequently as possible, but only one run at a time."
    active_runs_limit = 1

    @property
    def summary(self) -> str:
        return "@continuous"

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction) -> DagRunInfo | None:
        if restriction.earliest is None:
            return None
        if last_automated_data_interval is not None:
            start, end = last_automated_data_interval.end, tz.utcnow()
        else:
            start, end = restriction.earliest, max(restriction.earliest, tz.utcnow())
        if restriction.latest is not None and end > restriction.latest:
            return None
        return DagRunInfo.interval(start, end)


class DatasetTriggeredTimetable(_TrivialTimetable):
    """A DAG scheduled on datasets (never by time)."""

    description: str = "Triggered by datasets"

    def __init__(self, datasets: BaseDataset) -> None:
        self.dataset_condition = datasets
        if isinstance(self.dataset_condition, DatasetAlias):
            self.dataset_condition = _DatasetAliasCondition(self.dataset_condition.name)
        self._summary = "Dataset" if next(self.dataset_condition.iter_datasets(), False) else "Unresolved DatasetAlias"

    @property
    def summary(self) -> str:
        return self._summary

    def data_interval_for_events(self, logical_date: DateTime, events: Collection[Any]) -> DataInterval:
        """The interval of a dataset-triggered run: from the earliest to the latest triggering event."""
        if not events:
            return DataInterval(logical_date, logical_date)
        stamps = [pendulum.instance(e.timestamp) for e in events]
        return DataInterval(min(stamps), max(stamps))

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction) -> DagRunInfo | None:
        return None


class DatasetOrTimeSchedule(DatasetTriggeredTimetable):
    """Runs on a time schedule and also when its datasets are updated."""

    def __init__(self, *, timetable: Timetable, datasets: Collection[Dataset] | BaseDataset) -> None:
        self.timetable = timetable
        self.dataset_condition = datasets if isinstance(datasets, BaseDataset) else DatasetAll(*datasets)
        self.description = f"Triggered by datasets or {timetable.description}"
        self.periodic = timetable.periodic
        self._can_be_scheduled = timetable._can_be_scheduled
        self.active_runs_limit = timetable.active_runs_limit

    def validate(self) -> None:
        if isinstance(self.timetable, DatasetTriggeredTimetable):
            raise AirflowTimetableInvalid("cannot nest dataset timetables")
        if not isinstance(self.dataset_condition, BaseDataset):
            raise AirflowTimetableInvalid("all elements in 'datasets' must be datasets")

    @property
    def summary(self) -> str:
        return f"Dataset or {self.timetable.summary}"

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        return self.timetable.infer_manual_data_interval(run_after=run_after)

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction) -> DagRunInfo | None:
        return self.timetable.next_dagrun_info(last_automated_data_interval=last_automated_data_interval, restriction=restriction)

    def generate_run_id(self, *, run_type: str, **kwargs: Any) -> str:
        if run_type != "dataset_triggered":
            return self.timetable.generate_run_id(run_type=run_type, **kwargs)
        return super().generate_run_id(run_type=run_type, **kwargs)


class EventsTimetable(Timetable):
    """Runs at listed instants (``restrict_to_events``: a manual run takes the latest past one)."""

    def __init__(
        self,
        event_dates: Iterable[DateTime],
        restrict_to_events: bool = False,
        presorted: bool = False,
        description: str | None = None,
    ) -> None:
        self.event_dates = list(event_dates)
        if not presorted:
            self.event_dates.sort()
        self.restrict_to_events = restrict_to_events
        if description is None:
            if self.event_dates:
                self.description = f"{len(self.event_dates)} events between {self.event_dates[0]} and {self.event_dates[-1]}"
            else:
                self.description = "No events"
            self._summary = f"{len(self.event_dates)} events"
        else:
            self._summary = self.description = description

    @property
    def summary(self) -> str:
        return self._summary

    def __repr__(self) -> str:
        return self.summary

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction) -> DagRunInfo | None:
        earliest = restriction.earliest
        if not restriction.catchup:
            current_time = tz.utcnow()
            if earliest is None or current_time > earliest:
                earliest = pendulum.instance(current_time)
        for next_event in self.event_dates:
            if earliest and next_event < earliest:
                continue
            if last_automated_data_interval and next_event <= last_automated_data_interval.end:
                continue
            break
        else:
            return None
        if restriction.latest is not None and next_event > restriction.latest:
            return None
        return DagRunInfo.exact(next_event)

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        if not self.restrict_to_events or not self.event_dates:
            return DataInterval.exact(run_after)
        if run_after < self.event_dates[0]:
            return DataInterval.exact(self.event_dates[0])
        past_events = itertools.dropwhile(lambda when: when > run_after, self.event_dates[::-1])
        return DataInterval.exact(next(past_events))

    def serialize(self) -> dict[str, Any]:
        return {"event_dates": [str(x) for x in self.event_dates], "restrict_to_events": self.restrict_to_events}


# The classes carry the module paths Airflow users know them by (served by the facade), so that
# messages naming a class (``Invalid max_active_runs: <class '...'>``) read as Airflow's.
for _cls, _module in {
    DagRunInfo: "base", DataInterval: "base", TimeRestriction: "base", Timetable: "base",
    NullTimetable: "simple", OnceTimetable: "simple", ContinuousTimetable: "simple", DatasetTriggeredTimetable: "simple",
    DatasetOrTimeSchedule: "datasets", EventsTimetable: "events",
}.items():  # fmt: skip
    _cls.__module__ = f"airflow.timetables.{_module}"
