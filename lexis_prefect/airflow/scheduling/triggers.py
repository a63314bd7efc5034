"""A DAG's deployment schedule and triggers, from its timetable: what makes its runs start on Prefect.

=================================  ===========================================================
Airflow timetable                  Prefect deployment
=================================  ===========================================================
cron string / preset,              ``CronSchedule(cron, timezone=<DAG's timezone>)``: a run at each
``CronDataIntervalTimetable``,     cron time; a ``schedule=<cron>`` run due at T covers the interval
``CronTriggerTimetable``           that ends at T (:mod:`.runs`)
``timedelta``                      ``IntervalSchedule(interval, anchor_date=start_date)``
``EventsTimetable``                ``RRuleSchedule`` listing the event times (``RDATE``)
``@once``                          ``RRuleSchedule`` of one run at ``start_date`` (none if it has passed)
``None``                           no schedule
dataset(s), ``&`` / ``|``          a trigger on the ``airflow.dataset.updated`` events of those
                                   datasets (:mod:`.events`): ``DeploymentEventTrigger`` for one,
                                   ``DeploymentCompoundTrigger`` (``require="all"`` / ``"any"``)
                                   for an expression, nested as the expression is
``DatasetAlias``                   the same, on events related to the alias
``DatasetOrTimeSchedule``          both: the timetable's schedule and the datasets' trigger
``@continuous``, ``relativedelta``, refused (:class:`UnsupportedSchedule`): Prefect has no schedule
custom timetables                  for them; deploy without one (``--no-schedule``) and start runs
                                   by other means
=================================  ===========================================================

Differences from Airflow's scheduler (docs/airflow-compat.md): ``catchup`` and ``end_date`` are
not applied (Prefect schedules from now on); ``DatasetAll`` waits for every dataset within
``ALL_WITHIN`` (Prefect's compound triggers have a window; Airflow waits without one) and each
trigger firing is one run (Airflow merges events queued before the run starts).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow.exceptions import UnsupportedArgument
from lexis_prefect.airflow.scheduling.cron import CronDataIntervalTimetable, CronTriggerTimetable, DeltaDataIntervalTimetable
from lexis_prefect.airflow.scheduling.datasets import BaseDataset, Dataset, DatasetAll, DatasetAny, _DatasetAliasCondition
from lexis_prefect.airflow.scheduling.events import ALIAS_RESOURCE, ALIAS_ROLE, DATASET_RESOURCE, EVENT_NAME
from lexis_prefect.airflow.scheduling.timetables import (
    DatasetOrTimeSchedule,
    DatasetTriggeredTimetable,
    EventsTimetable,
    NullTimetable,
    OnceTimetable,
    Timetable,
)

if TYPE_CHECKING:
    from lexis_prefect.airflow.dag import DAG

#: How long a ``DatasetAll`` trigger waits for all its datasets (Prefect's compound ``within``).
ALL_WITHIN = timedelta(days=7)


class UnsupportedSchedule(UnsupportedArgument):
    """A timetable Prefect has no schedule for."""


def _tz_name(timezone: Any) -> str:
    return getattr(timezone, "name", None) or str(timezone)


def _rrule_time(value: datetime) -> str:
    return value.astimezone(_utc()).strftime("%Y%m%dT%H%M%SZ")


def _utc() -> Any:
    from datetime import timezone

    return timezone.utc


def deployment_schedules(dag: DAG, timetable: Timetable | None = None) -> list[Any]:
    """The Prefect schedules (``prefect.client.schemas.schedules``) of the DAG's timetable."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    timetable = timetable or dag.timetable
    if isinstance(timetable, DatasetOrTimeSchedule):
        return deployment_schedules(dag, timetable.timetable)
    if isinstance(timetable, (NullTimetable, DatasetTriggeredTimetable)):
        return []
    if isinstance(timetable, (CronDataIntervalTimetable, CronTriggerTimetable)):
        timetable.validate()
        return [CronSchedule(cron=timetable._expression, timezone=_tz_name(timetable._timezone))]
    if isinstance(timetable, DeltaDataIntervalTimetable) and isinstance(timetable._delta, timedelta):
        timetable.validate()
        anchor = dag.start_date or dag.default_args.get("start_date")
        return [IntervalSchedule(interval=timetable._delta, anchor_date=anchor, timezone=_tz_name(dag.timezone))]
    if isinstance(timetable, EventsTimetable):
        if not timetable.event_dates:
            return []
        dates = ",".join(_rrule_time(d) for d in timetable.event_dates)
        return [RRuleSchedule(rrule=f"DTSTART:{_rrule_time(timetable.event_dates[0])}\nRDATE:{dates}")]
    if isinstance(timetable, OnceTimetable):
        start = dag.start_date or dag.default_args.get("start_date")
        if start is None or start <= datetime.now(_utc()):
            return []  # Airflow runs it at once when it first sees the DAG; start it by hand here
        return [RRuleSchedule(rrule=f"DTSTART:{_rrule_time(start)}\nRRULE:FREQ=DAILY;COUNT=1")]
    raise UnsupportedSchedule(
        f"DAG {dag.dag_id}: its timetable {timetable.summary!r} ({type(timetable).__name__}) has no Prefect "
        "schedule; deploy it without one and start its runs by other means (see docs/airflow-compat.md)"
    )


def _condition_trigger(condition: BaseDataset) -> Any:
    """An automation trigger (nested as the expression) that fires when ``condition`` holds."""
    from prefect.events.schemas.automations import CompoundTrigger, EventTrigger

    if isinstance(condition, Dataset):
        return EventTrigger(expect={EVENT_NAME}, match={"prefect.resource.id": f"{DATASET_RESOURCE}{condition.uri}"}, threshold=1, within=timedelta(0))
    if isinstance(condition, _DatasetAliasCondition):
        related = {"prefect.resource.id": f"{ALIAS_RESOURCE}{condition.name}", "prefect.resource.role": ALIAS_ROLE}
        return EventTrigger(expect={EVENT_NAME}, match_related=related, threshold=1, within=timedelta(0))
    if isinstance(condition, (DatasetAll, DatasetAny)):
        parts = [_condition_trigger(o) for o in condition.objects]
        if len(parts) == 1:
            return parts[0]
        if isinstance(condition, DatasetAll):
            return CompoundTrigger(require="all", triggers=parts, within=ALL_WITHIN)
        return CompoundTrigger(require="any", triggers=parts, within=timedelta(0))
    raise UnsupportedSchedule(f"dataset condition {condition!r} has no Prefect trigger")


def deployment_triggers(dag: DAG) -> list[Any]:
    """The deployment triggers (``prefect.events``) of a DAG scheduled on datasets (none otherwise)."""
    from prefect.events import DeploymentCompoundTrigger, DeploymentEventTrigger
    from prefect.events.schemas.automations import CompoundTrigger

    condition = dag.timetable.dataset_condition
    if not condition:
        return []
    trigger = _condition_trigger(condition)
    name = f"{dag.dag_id}: datasets {condition.as_expression()}"[:100]
    fields = trigger.model_dump(exclude={"id", "type"})
    if isinstance(trigger, CompoundTrigger):
        return [DeploymentCompoundTrigger(name=name, **fields)]
    return [DeploymentEventTrigger(name=name, **fields)]
