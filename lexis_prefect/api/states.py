"""Prefect states as Airflow states (docs/airflow-rest-api.md has the same tables).

Airflow 2.10's `DagState` is one of queued, running, success, failed; `TaskState` adds
upstream_failed, skipped, up_for_retry, scheduled, ... (apache-airflow 2.10.5,
`airflow/api_connexion/openapi/v1.yaml`, components DagState and TaskState).
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import StateType

__all__ = ["DAG_RUN_STATES", "dag_run_state", "task_state"]

#: Prefect state type -> Airflow DAG run state.
DAG_RUN_STATES: dict[StateType, str] = {
    StateType.SCHEDULED: "queued",  # also Late and AwaitingRetry
    StateType.PENDING: "queued",  # a worker took it; its process is starting
    StateType.RUNNING: "running",
    StateType.PAUSED: "running",  # suspended while its HEAppE job runs; the watcher resumes it
    StateType.COMPLETED: "success",
    StateType.FAILED: "failed",
    StateType.CRASHED: "failed",
    StateType.CANCELLING: "failed",  # Airflow's PATCH state=failed answers failed at once too
    StateType.CANCELLED: "failed",
}

#: Prefect state names the Airflow-compat shim gives task runs, as Airflow task states.
_TASK_STATE_NAMES = {
    "Skipped": "skipped",
    "UpstreamFailed": "upstream_failed",
    "AwaitingRetry": "up_for_retry",
    "Retrying": "running",
    "Late": "scheduled",
}
_TASK_STATE_TYPES: dict[StateType, str] = {
    StateType.SCHEDULED: "scheduled",
    StateType.PENDING: "queued",
    StateType.RUNNING: "running",
    StateType.PAUSED: "deferred",
    StateType.COMPLETED: "success",
    StateType.FAILED: "failed",
    StateType.CRASHED: "failed",
    StateType.CANCELLING: "failed",
    StateType.CANCELLED: "failed",
}


def dag_run_state(state: Any) -> str:
    """The Airflow state of a flow run's state (None: a run just created, `queued`)."""
    return "queued" if state is None else DAG_RUN_STATES[state.type]


def task_state(state: Any) -> str | None:
    """The Airflow state of a task run's state; None (Airflow's "no status") without one."""
    if state is None:
        return None
    return _TASK_STATE_NAMES.get(state.name) or _TASK_STATE_TYPES[state.type]

