"""``TriggerDagRunOperator`` (``airflow.operators.trigger_dagrun``, 2.10.5): start another DAG's run.

Where the run happens:

- the DAG has a Prefect deployment (a flow named by the ``dag_id``; the deployment named like it,
  else its only one): a flow run of it, created with ``run_deployment`` (linked to this task run),
  named ``manual__<logical date>`` so that the run's ``run_id`` and logical date are the ones
  asked for, with the ``conf`` keys the DAG declares as params as its parameters (other keys have
  no place in a deployment run: they are dropped with a warning);
- under ``dag.test`` (or the CLI), or when there is no deployment: the DAG is imported from this
  DAG's folder and run in process, ``dag.test(execution_date=..., run_conf=conf)``, as a Prefect
  subflow run. It runs to its end before the task goes on, ``wait_for_completion`` or not.

``wait_for_completion`` polls the run's state every ``poke_interval`` seconds: one of
``failed_states`` fails the task, one of ``allowed_states`` ends it. A run of that DAG with the same
logical date raises ``DagRunAlreadyExists`` (skipped with ``skip_when_already_exists``); with
``reset_dag_run`` a new run is made in its place (Airflow clears the old one; a Prefect run cannot
be cleared). ``trigger_run_id`` is pushed as Airflow pushes it and kept as the flow run's tag
``airflow_run_id:<id>``; the flow run name stays ``manual__<logical date>``, which is how the shim
knows a run's logical date. ``deferrable=True`` waits in place.
"""

from __future__ import annotations

import datetime
import json
import os
import time
import warnings
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from lexis_prefect.airflow.baseoperator import BaseOperator
from lexis_prefect.airflow.exceptions import (
    AirflowException,
    AirflowSkipException,
    DagNotFound,
    DagRunAlreadyExists,
    RemovedInAirflow3Warning,
)
from lexis_prefect.airflow.standard import dag_runs, timezone

__all__ = ["XCOM_LOGICAL_DATE_ISO", "XCOM_RUN_ID", "TriggerDagRunOperator"]

XCOM_LOGICAL_DATE_ISO = "trigger_logical_date_iso"
XCOM_RUN_ID = "trigger_run_id"
DAG_RUN_STATES = ("queued", "running", "success", "failed")


def _dag_run_state(state: Any) -> str:
    value = str(getattr(state, "value", state))
    if value not in DAG_RUN_STATES:
        raise ValueError(f"{value!r} is not a valid DagRunState")
    return value


class TriggerDagRunOperator(BaseOperator):
    """Triggers a DAG run for a specified DAG ID (see the module docstring for where it runs)."""

    template_fields: Sequence[str] = (
        "trigger_dag_id",
        "trigger_run_id",
        "logical_date",
        "conf",
        "wait_for_completion",
        "skip_when_already_exists",
    )
    template_fields_renderers = {"conf": "py"}
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: dict | None = None,
        logical_date: str | datetime.datetime | None = None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: int = 60,
        allowed_states: list[str] | None = None,
        failed_states: list[str] | None = None,
        skip_when_already_exists: bool = False,
        deferrable: bool = False,
        execution_date: str | datetime.datetime | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf
        self.reset_dag_run = reset_dag_run
        self.wait_for_completion = wait_for_completion
        self.poke_interval = poke_interval
        self.allowed_states = [_dag_run_state(s) for s in allowed_states] if allowed_states else ["success"]
        if failed_states or failed_states == []:
            self.failed_states = [_dag_run_state(s) for s in failed_states]
        else:
            self.failed_states = ["failed"]
        self.skip_when_already_exists = skip_when_already_exists
        self._defer = deferrable
        if execution_date is not None:
            warnings.warn(
                "Parameter 'execution_date' is deprecated. Use 'logical_date' instead.",
                RemovedInAirflow3Warning,
                stacklevel=2,
            )
            logical_date = execution_date
        if logical_date is not None and not isinstance(logical_date, (str, datetime.datetime)):
            raise TypeError(
                f"Expected str or datetime.datetime type for parameter 'logical_date'. Got {type(logical_date).__name__}"
            )
        self.logical_date = logical_date

    def execute(self, context: Any) -> None:
        if isinstance(self.logical_date, datetime.datetime):
            parsed_logical_date = timezone.coerce_datetime(self.logical_date)
        elif isinstance(self.logical_date, str):
            parsed_logical_date = timezone.parse(self.logical_date)
        else:
            parsed_logical_date = timezone.utcnow()
        try:
            json.dumps(self.conf)
        except TypeError:
            raise AirflowException("conf parameter should be JSON Serializable") from None
        run_id = str(self.trigger_run_id) if self.trigger_run_id else dag_runs.run_name(parsed_logical_date)
        deployment = None if _in_process_run() else dag_runs.deployment_of(self.trigger_dag_id)
        if deployment is None:
            state = self._run_in_process(context, parsed_logical_date, run_id)
        else:
            flow_run_id = self._run_deployment(deployment, parsed_logical_date, run_id)
            _push_run(context, parsed_logical_date, run_id)
            state = self._wait(flow_run_id, parsed_logical_date) if self.wait_for_completion else None
        if state is None or not self.wait_for_completion:
            return
        if state in self.failed_states:
            raise AirflowException(f"{self.trigger_dag_id} failed with failed states {state}")
        if state in self.allowed_states:
            self.log.info("%s finished with allowed state %s", self.trigger_dag_id, state)
            return
        raise AirflowException(f"{self.trigger_dag_id} return {state} which is not in {self.failed_states} or {self.allowed_states}")

    # -- a deployment run ----------------------------------------------------------------------
    def _check_existing(self, logical_date: datetime.datetime, run_id: str) -> None:
        existing = dag_runs.flow_runs_at(self.trigger_dag_id, [logical_date])
        if not existing:
            return
        if self.reset_dag_run:
            self.log.info("Clearing %s on %s: a new run replaces %s", self.trigger_dag_id, logical_date, existing[0].name)
            return
        if self.skip_when_already_exists:
            raise AirflowSkipException("Skipping due to skip_when_already_exists is set to True and DagRunAlreadyExists")
        found = SimpleNamespace(dag_id=self.trigger_dag_id, run_id=existing[0].name, flow_run=existing[0])
        raise DagRunAlreadyExists(found, logical_date, run_id)

    def _run_deployment(self, deployment: Any, logical_date: datetime.datetime, run_id: str) -> Any:
        from prefect.deployments import run_deployment

        self._check_existing(logical_date, run_id)
        declared = set((deployment.parameter_openapi_schema or {}).get("properties", {}))
        conf = dict(self.conf or {})
        dropped = sorted(set(conf) - declared)
        if dropped:
            self.log.warning(
                "conf keys %s are not params of DAG %s: a deployment run has no place for them; dropped",
                dropped,
                self.trigger_dag_id,
            )
        flow_run = run_deployment(
            name=f"{self.trigger_dag_id}/{deployment.name}",
            parameters={k: v for k, v in conf.items() if k in declared},
            flow_run_name=dag_runs.run_name(logical_date),
            tags=[f"airflow_run_id:{run_id}"],
            timeout=0,
        )
        self.log.info("Triggered %s: flow run %s (%s)", self.trigger_dag_id, flow_run.name, flow_run.id)
        return flow_run.id

    def _wait(self, flow_run_id: Any, logical_date: datetime.datetime) -> str:
        from prefect import get_client

        while True:
            self.log.info(
                "Waiting for %s on %s to become allowed state %s ...", self.trigger_dag_id, logical_date, self.allowed_states
            )
            time.sleep(self.poke_interval)
            with get_client(sync_client=True) as client:
                state = dag_runs.dag_run_state(client.read_flow_run(flow_run_id))
            if state in self.failed_states or state in self.allowed_states:
                return state

    # -- in process ------------------------------------------------------------------------------
    def _run_in_process(self, context: Any, logical_date: datetime.datetime, run_id: str) -> str:
        folder = os.path.dirname(context["dag"].fileloc)
        dag = dag_runs.find_dag(self.trigger_dag_id, folder)
        if dag is None:
            raise DagNotFound(
                f"Dag id {self.trigger_dag_id} not found: it has no Prefect deployment and no DAG file "
                f"of {folder} defines it (see docs/airflow-compat.md)"
            )
        _push_run(context, logical_date, run_id)
        self.log.info("Running %s in process on %s (no deployment, or under dag.test)", self.trigger_dag_id, logical_date)
        result = dag.test(execution_date=logical_date, run_conf=self.conf)
        self.log.info("%s finished %s: %s", self.trigger_dag_id, result.state, result.tasks)
        return result.state


def _push_run(context: Any, logical_date: datetime.datetime, run_id: str) -> None:
    """The XComs Airflow pushes once the run exists (its extra link reads them)."""
    ti = context["task_instance"]
    ti.xcom_push(key=XCOM_LOGICAL_DATE_ISO, value=logical_date.isoformat())
    ti.xcom_push(key=XCOM_RUN_ID, value=run_id)


def _in_process_run() -> bool:
    """Whether this run was started by ``dag.test`` / the CLI (not by a deployment)."""
    from lexis_prefect.airflow.execution.runner import _test_run

    return _test_run.get() is not None
