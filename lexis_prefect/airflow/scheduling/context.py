"""The template-context keys that depend on the schedule and on datasets (Airflow 2.10's
``_get_template_context``): the data interval, the previous/next schedule, ``inlets`` /
``outlets`` and their event accessors, ``triggering_dataset_events``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow.scheduling.events import InletEventsAccessors, OutletEventAccessors
from lexis_prefect.airflow.scheduling.runs import previous_and_next

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator
    from lexis_prefect.airflow.execution.taskinstance import DagRun


def _ds(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d")


def schedule_context(dag_run: DagRun, task: BaseOperator) -> dict[str, Any]:
    """The keys to lay over the base context of a task of ``dag_run``."""
    dates = dag_run.run_dates
    context: dict[str, Any] = {
        "data_interval_start": dag_run.data_interval_start,
        "data_interval_end": dag_run.data_interval_end,
        "inlets": task.inlets,
        "outlets": task.outlets,
        "inlet_events": InletEventsAccessors(task.inlets),
        "outlet_events": OutletEventAccessors(),
        # a manual run (dag.test) consumed no dataset events; a dataset-triggered deployment run's
        # events are not read back from Prefect (docs/airflow-compat.md)
        "triggering_dataset_events": {},
    }
    if dates is not None:
        previous, following = previous_and_next(dag_run.dag, dates)
        context.update(
            prev_execution_date=previous,
            prev_ds=_ds(previous),
            prev_ds_nodash=_ds(previous) and _ds(previous).replace("-", ""),  # type: ignore[union-attr]
            next_execution_date=following,
            next_ds=_ds(following),
            next_ds_nodash=_ds(following) and _ds(following).replace("-", ""),  # type: ignore[union-attr]
        )
    return context
