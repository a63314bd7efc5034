"""Dataset events: what a task records on its outlets, and the Prefect event each one becomes.

As in Airflow 2.10 (``utils/context.py``, ``models/taskinstance.py``): a task's context holds
``outlet_events`` (``outlet_events[dataset].extra`` to fill, ``outlet_events[alias].add(dataset,
extra)``), a generator callable may ``yield Metadata(dataset, extra)``, and when the task ends
**success** (not skipped, not failed) there is one event per ``Dataset`` outlet with its extra,
and one per dataset added through an alias outlet (one per distinct URI and extra, naming every
alias that added it).

Each event is a Prefect event (the names are the shim's, see docs/airflow-compat.md):

- event ``airflow.dataset.updated``;
- resource ``airflow.dataset.<uri>`` (``airflow.dataset.uri`` holds the URI);
- related: one ``airflow.dataset-alias.<name>`` per alias it came through (role
  ``airflow-dataset-alias``), and ``airflow.dag.<dag_id>`` / ``airflow.task.<dag_id>.<task_id>``;
  Prefect adds the flow run, task run and deployment;
- payload: ``uri``, ``extra``, ``dag_id``, ``task_id``, ``run_id``, ``source_alias_names``.

A deployment of a DAG scheduled on datasets is triggered by these events
(:mod:`lexis_prefect.airflow.scheduling.triggers`). ``inlet_events[dataset]`` lists the events of
that dataset this process has recorded, oldest first: in ``dag.test`` that is what Airflow's fresh
database holds, the events of the run's earlier tasks.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow.scheduling.datasets import Dataset, DatasetAlias, DatasetAliasEvent, extract_event_key

if TYPE_CHECKING:
    from lexis_prefect.airflow.execution.taskinstance import TaskInstance

EVENT_NAME = "airflow.dataset.updated"
DATASET_RESOURCE = "airflow.dataset."
ALIAS_RESOURCE = "airflow.dataset-alias."
ALIAS_ROLE = "airflow-dataset-alias"

_STRING_KEY = (
    "Accessing outlet_events using string is deprecated and will be removed in Airflow 3. "
    "Please use the Dataset or DatasetAlias object (renamed as Asset and AssetAlias in Airflow 3) directly"
)
_STRING_EMIT = (
    "Emitting dataset events using string is deprecated and will be removed in Airflow 3. "
    "Please use the Dataset object (renamed as Asset in Airflow 3) directly"
)


class Metadata:
    """``yield Metadata(dataset, extra, alias=...)`` from a task: extra for that dataset's event."""

    def __init__(self, target: str | Dataset, extra: dict[str, Any], alias: DatasetAlias | str | None = None) -> None:
        if isinstance(target, str):
            warnings.warn(_STRING_KEY, DeprecationWarning, stacklevel=2)
        self.uri = extract_event_key(target)
        self.extra = extra
        if isinstance(alias, DatasetAlias):
            self.alias_name: str | None = alias.name
        else:  # Airflow 2.10 warns here for alias=None too
            warnings.warn(_STRING_EMIT, DeprecationWarning, stacklevel=2)
            self.alias_name = alias

    def __repr__(self) -> str:
        return f"Metadata(uri={self.uri!r}, extra={self.extra!r}, alias_name={self.alias_name!r})"


class OutletEventAccessor:
    """``outlet_events[key]``: the extra of a dataset's event, or the events added to an alias."""

    def __init__(self, raw_key: str | Dataset | DatasetAlias, extra: dict[str, Any] | None = None) -> None:
        self.raw_key = raw_key
        self.extra: dict[str, Any] = {} if extra is None else extra
        self.dataset_alias_events: list[DatasetAliasEvent] = []

    def add(self, dataset: Dataset | str, extra: dict[str, Any] | None = None) -> None:
        """Emit an event for ``dataset`` through this alias (ignored on a dataset's accessor, as in Airflow)."""
        if isinstance(dataset, str):
            warnings.warn(_STRING_EMIT, DeprecationWarning, stacklevel=2)
            uri = dataset
        elif isinstance(dataset, Dataset):
            uri = dataset.uri
        else:
            return
        if isinstance(self.raw_key, str):
            alias_name = self.raw_key
        elif isinstance(self.raw_key, DatasetAlias):
            alias_name = self.raw_key.name
        else:
            return
        self.dataset_alias_events.append(DatasetAliasEvent(source_alias_name=alias_name, dest_dataset_uri=uri, extra=extra or {}))

    def __repr__(self) -> str:
        return f"OutletEventAccessor(raw_key={self.raw_key!r}, extra={self.extra!r}, dataset_alias_events={self.dataset_alias_events!r})"


class OutletEventAccessors(Mapping[str, OutletEventAccessor]):
    """``context["outlet_events"]``: an accessor made on first use of a key."""

    def __init__(self) -> None:
        self._dict: dict[str, OutletEventAccessor] = {}

    def __str__(self) -> str:
        return f"OutletEventAccessors(_dict={self._dict})"

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __getitem__(self, key: str | Dataset | DatasetAlias) -> OutletEventAccessor:
        if isinstance(key, str):
            warnings.warn(_STRING_KEY, DeprecationWarning, stacklevel=2)
        event_key = extract_event_key(key)
        if event_key not in self._dict:
            self._dict[event_key] = OutletEventAccessor(key)
        return self._dict[event_key]


@dataclass(frozen=True)
class DatasetEvent:
    """One recorded dataset event (what ``inlet_events[...]`` lists, like Airflow's row)."""

    uri: str
    extra: dict[str, Any]
    timestamp: datetime
    source_dag_id: str
    source_task_id: str
    source_run_id: str
    source_map_index: int = -1
    source_aliases: tuple[str, ...] = ()

    @property
    def dataset(self) -> Dataset:
        return Dataset(self.uri)


@dataclass
class _Journal:
    """The dataset events recorded by this process, oldest first."""

    events: list[DatasetEvent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, event: DatasetEvent) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, wanted: Callable[[DatasetEvent], bool]) -> list[DatasetEvent]:
        with self.lock:
            return [e for e in self.events if wanted(e)]


JOURNAL = _Journal()


class InletEventsAccessors(Mapping[str, list[DatasetEvent]]):
    """``context["inlet_events"]``: the recorded events of an inlet dataset (or alias), by object or index."""

    def __init__(self, inlets: list[Any]) -> None:
        self._inlets = inlets
        self._datasets = {i.uri: i for i in inlets if isinstance(i, Dataset)}
        self._aliases = {i.name: i for i in inlets if isinstance(i, DatasetAlias)}

    def __iter__(self) -> Iterator[Any]:
        return iter(self._inlets)

    def __len__(self) -> int:
        return len(self._inlets)

    def __getitem__(self, key: Any) -> list[DatasetEvent]:
        if isinstance(key, int):
            key = self._inlets[key]
            if not isinstance(key, (Dataset, DatasetAlias)):
                raise IndexError(key)
        if isinstance(key, DatasetAlias):
            name = self._aliases[key.name].name
            return JOURNAL.of(lambda e: name in e.source_aliases)
        if isinstance(key, (Dataset, str)):
            if isinstance(key, str):
                warnings.warn(
                    "Accessing inlet_events using string is deprecated and will be removed in Airflow 3. "
                    "Please use the Dataset object (renamed as Asset in Airflow 3) directly",
                    DeprecationWarning,
                    stacklevel=2,
                )
            uri = self._datasets[extract_event_key(key)].uri
            return JOURNAL.of(lambda e: e.uri == uri)
        raise ValueError(key)


def run_callable(func: Callable[..., Any], outlet_events: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Airflow's ``ExecutionCallableRunner``: a generator callable is exhausted, its ``Metadata``
    going to ``outlet_events``, and its ``return`` value is the result."""
    if not inspect.isgeneratorfunction(func):
        return func(*args, **kwargs)
    result: Any = None

    def _run() -> Any:
        nonlocal result
        result = yield from func(*args, **kwargs)

    for item in _run():
        if isinstance(item, Metadata) and outlet_events is not None:
            outlet_events[item.uri].extra.update(item.extra)
            if item.alias_name:
                outlet_events[item.alias_name].add(item.uri, extra=item.extra)
            continue
        from prefect.logging import get_logger

        get_logger("lexis_prefect.airflow").warning("Ignoring unknown data of %r received from task", type(item))
    return result


def outlet_dataset_events(outlets: list[Any], events: OutletEventAccessors) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """The (uri, extra, alias names) of the events a successful task emits (Airflow's
    ``_register_dataset_changes``): every Dataset outlet, then each distinct (uri, extra) added
    through alias outlets."""
    found: list[tuple[str, dict[str, Any], tuple[str, ...]]] = []
    through_aliases: dict[tuple[str, frozenset], set[str]] = defaultdict(set)
    for obj in outlets or []:
        if isinstance(obj, Dataset):
            found.append((obj.uri, events[obj].extra, ()))
        elif isinstance(obj, DatasetAlias):
            for added in events[obj].dataset_alias_events:
                key = (added["dest_dataset_uri"], frozenset(added["extra"].items()))
                through_aliases[key].add(added["source_alias_name"])
    for (uri, extra_items), names in through_aliases.items():
        found.append((uri, dict(extra_items), tuple(sorted(names))))
    return found


def emit_dataset_events(ti: TaskInstance, context: Mapping[str, Any]) -> list[DatasetEvent]:
    """Record and emit the dataset events of a task instance that ended success."""
    from prefect.events import emit_event

    recorded = []
    for uri, extra, aliases in outlet_dataset_events(ti.task.outlets, context["outlet_events"]):
        event = DatasetEvent(
            uri, extra, datetime.now(timezone.utc), ti.dag_id, ti.task_id, ti.run_id, ti.map_index, aliases
        )
        JOURNAL.add(event)
        recorded.append(event)
        related = [{"prefect.resource.id": f"{ALIAS_RESOURCE}{name}", "prefect.resource.role": ALIAS_ROLE} for name in aliases]
        related += [
            {"prefect.resource.id": f"airflow.dag.{ti.dag_id}", "prefect.resource.role": "airflow-dag"},
            {"prefect.resource.id": f"airflow.task.{ti.dag_id}.{ti.task_id}", "prefect.resource.role": "airflow-task"},
        ]
        emit_event(
            EVENT_NAME,
            resource={"prefect.resource.id": f"{DATASET_RESOURCE}{uri}", "prefect.resource.name": uri, "airflow.dataset.uri": uri},
            occurred=event.timestamp,
            related=related,
            payload={
                "uri": uri,
                "extra": extra,
                "dag_id": ti.dag_id,
                "task_id": ti.task_id,
                "run_id": ti.run_id,
                "map_index": ti.map_index,
                "source_alias_names": list(aliases),
            },
        )
    return recorded
