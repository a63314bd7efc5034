"""``ExternalTaskSensor`` and ``ExternalTaskMarker`` (``airflow.sensors.external_task``, 2.10.5).

The sensor waits for another DAG's run with the same logical date (or the dates given by
``execution_delta`` / ``execution_date_fn``), for the whole run or for some of its tasks or a task
group, to reach ``allowed_states``; ``failed_states`` fail it (skip with ``soft_fail``) and
``skipped_states`` skip it, with Airflow's messages. The runs and task states are read from
Prefect as :mod:`lexis_prefect.airflow.standard.dag_runs` maps them. ``deferrable=True`` pokes in
place every ``poll_interval`` seconds (the shim has no triggerer).

``ExternalTaskMarker`` does nothing when it runs, as in Airflow; what it marks (clearing the other
DAG's task with "recursive" in Airflow's UI) has no counterpart in Prefect.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Collection, Iterable
from typing import Any

from lexis_prefect.airflow.exceptions import AirflowException, AirflowSkipException
from lexis_prefect.airflow.operators import EmptyOperator, determine_kwargs
from lexis_prefect.airflow.sensors import BaseSensorOperator
from lexis_prefect.airflow.standard import dag_runs

__all__ = ["ExternalTaskMarker", "ExternalTaskSensor"]

#: ``State.task_states`` and ``State.dag_states`` of Airflow 2.10.
TASK_STATES = (
    None, "removed", "scheduled", "queued", "running", "success", "restarting", "failed", "up_for_retry",
    "up_for_reschedule", "upstream_failed", "skipped", "deferred",
)  # fmt: skip
DAG_STATES = ("queued", "success", "running", "failed")


class ExternalTaskSensor(BaseSensorOperator):
    """Waits for a different DAG, task group, or task to complete for a specific logical date."""

    template_fields = ["external_dag_id", "external_task_id", "external_task_ids", "external_task_group_id"]
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Collection[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        execution_delta: datetime.timedelta | None = None,
        execution_date_fn: Callable | None = None,
        check_existence: bool = False,
        poll_interval: float = 2.0,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        if deferrable:
            kwargs["poke_interval"] = poll_interval  # the trigger's interval, poked in place
        super().__init__(**kwargs)
        self.allowed_states = list(allowed_states) if allowed_states else ["success"]
        self.skipped_states = list(skipped_states) if skipped_states else []
        self.failed_states = list(failed_states) if failed_states else []
        total_states = set(self.allowed_states + self.skipped_states + self.failed_states)
        if len(total_states) != len(self.allowed_states) + len(self.skipped_states) + len(self.failed_states):
            raise AirflowException("Duplicate values provided across allowed_states, skipped_states and failed_states.")
        if not external_task_ids:
            external_task_ids = None
        if external_task_id is not None and external_task_ids is not None:
            raise ValueError(
                "Only one of `external_task_id` or `external_task_ids` may "
                "be provided to ExternalTaskSensor; "
                "use external_task_id or external_task_ids or external_task_group_id."
            )
        if external_task_id is not None:
            external_task_ids = [external_task_id]
        if external_task_group_id is not None and external_task_ids is not None:
            raise ValueError(
                "Only one of `external_task_group_id` or `external_task_ids` may "
                "be provided to ExternalTaskSensor; "
                "use external_task_id or external_task_ids or external_task_group_id."
            )
        if external_task_ids or external_task_group_id:
            if not total_states <= set(TASK_STATES):
                raise ValueError(
                    "Valid values for `allowed_states`, `skipped_states` and `failed_states` "
                    "when `external_task_id` or `external_task_ids` or `external_task_group_id` "
                    f"is not `None`: {TASK_STATES}"
                )
        elif not total_states <= set(DAG_STATES):
            raise ValueError(
                "Valid values for `allowed_states`, `skipped_states` and `failed_states` "
                f"when `external_task_id` and `external_task_group_id` is `None`: {DAG_STATES}"
            )
        if execution_delta is not None and execution_date_fn is not None:
            raise ValueError(
                "Only one of `execution_delta` or `execution_date_fn` may be provided to ExternalTaskSensor; not both."
            )
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.external_task_ids = external_task_ids
        self.external_task_group_id = external_task_group_id
        self.check_existence = check_existence
        self._has_checked_existence = False
        self.deferrable = deferrable
        self.poll_interval = poll_interval

    def _get_dttm_filter(self, context: Any) -> list[datetime.datetime]:
        if self.execution_delta:
            dttm = context["logical_date"] - self.execution_delta
        elif self.execution_date_fn:
            dttm = self._handle_execution_date_fn(context=context)
        else:
            dttm = context["logical_date"]
        return dttm if isinstance(dttm, list) else [dttm]

    def _handle_execution_date_fn(self, context: Any) -> Any:
        """``execution_date_fn(logical_date, **context keys it names)`` (also ``context=``)."""
        logical_date = context["logical_date"]
        kwargs = {k: v for k, v in context.items() if k not in {"execution_date", "logical_date"}}
        kwargs["context"] = context
        return self.execution_date_fn(logical_date, **determine_kwargs(self.execution_date_fn, [logical_date], kwargs))  # type: ignore[misc]

    def _what(self) -> str:
        if self.external_task_ids:
            return f"Some of the external tasks {self.external_task_ids} in DAG {self.external_dag_id}"
        if self.external_task_group_id:
            return f"The external task_group '{self.external_task_group_id}' in DAG '{self.external_dag_id}'"
        return f"The external DAG {self.external_dag_id}"

    def poke(self, context: Any) -> bool:
        if self.external_task_ids and len(self.external_task_ids) > len(set(self.external_task_ids)):
            raise ValueError("Duplicate task_ids passed in external_task_ids parameter")
        dttm_filter = self._get_dttm_filter(context)
        serialized_dttm_filter = ",".join(dt.isoformat() for dt in dttm_filter)
        if self.external_task_ids:
            self.log.info(
                "Poking for tasks %s in dag %s on %s ... ", self.external_task_ids, self.external_dag_id, serialized_dttm_filter
            )
        if self.external_task_group_id:
            self.log.info(
                "Poking for task_group '%s' in dag '%s' on %s ... ",
                self.external_task_group_id,
                self.external_dag_id,
                serialized_dttm_filter,
            )
        if self.external_dag_id and not self.external_task_group_id and not self.external_task_ids:
            self.log.info("Poking for DAG '%s' on %s ... ", self.external_dag_id, serialized_dttm_filter)
        if self.check_existence and not self._has_checked_existence:
            self._check_for_existence(context)
        if self.failed_states and self.get_count(dttm_filter, self.failed_states) > 0:
            what = self._what()
            if self.soft_fail:
                raise AirflowSkipException(f"{what} failed. Skipping due to soft_fail.")
            raise AirflowException(f"{what} failed.")
        if self.skipped_states and self.get_count(dttm_filter, self.skipped_states) > 0:
            what = self._what()
            if self.external_task_group_id:
                what = f"The external task_group '{self.external_task_group_id}' in DAG {self.external_dag_id}"
            raise AirflowSkipException(f"{what} reached a state in our states-to-skip-on list. Skipping.")
        return self.get_count(dttm_filter, self.allowed_states) == len(dttm_filter)

    def get_count(self, dttm_filter: list[datetime.datetime], states: list[str]) -> float:
        """Runs (or task instances, per task) of the other DAG at those dates in ``states``."""
        if not dttm_filter:
            return 0
        runs = dag_runs.flow_runs_at(self.external_dag_id, dttm_filter)
        if self.external_task_ids:
            found = dag_runs.task_states(runs, task_ids=self.external_task_ids)
            return sum(1 for _, state in found if state in states) / len(self.external_task_ids)
        if self.external_task_group_id:
            found = dag_runs.task_states(runs, prefix=f"{self.external_task_group_id}.")
            group_task_ids = {task_id for task_id, _ in found}
            if not group_task_ids:
                return 0
            return sum(1 for _, state in found if state in states) / len(group_task_ids)
        return sum(1 for run in runs if dag_runs.dag_run_state(run) in states)

    def _check_for_existence(self, context: Any) -> None:
        """The other DAG must be known to Prefect or importable from this DAG's folder; its tasks
        (or group) are checked when it is importable."""
        dag = dag_runs.find_dag(self.external_dag_id, os.path.dirname(context["dag"].fileloc))
        if dag is None and not dag_runs.flow_exists(self.external_dag_id):
            raise AirflowException(f"The external DAG {self.external_dag_id} does not exist.")
        if dag is not None:
            for external_task_id in self.external_task_ids or ():
                if not dag.has_task(external_task_id):
                    raise AirflowException(
                        f"The external task {external_task_id} in DAG {self.external_dag_id} does not exist."
                    )
            if self.external_task_group_id and not dag.has_task_group(self.external_task_group_id):
                raise AirflowException(
                    f"The external task group '{self.external_task_group_id}' in "
                    f"DAG '{self.external_dag_id}' does not exist."
                )
        self._has_checked_existence = True


class ExternalTaskMarker(EmptyOperator):
    """Marks that a task of another DAG depends on this one (for Airflow's recursive clear)."""

    template_fields = ["external_dag_id", "external_task_id", "execution_date"]
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str,
        execution_date: str | datetime.datetime | None = "{{ logical_date.isoformat() }}",
        recursion_depth: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        if isinstance(execution_date, datetime.datetime):
            self.execution_date = execution_date.isoformat()
        elif isinstance(execution_date, str):
            self.execution_date = execution_date
        else:
            raise TypeError(f"Expected str or datetime.datetime type for execution_date. Got {type(execution_date)}")
        if recursion_depth <= 0:
            raise ValueError("recursion_depth should be a positive integer")
        self.recursion_depth = recursion_depth
