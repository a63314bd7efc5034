"""Other DAGs' runs as Prefect holds them, for ExternalTaskSensor and TriggerDagRunOperator.

The mapping (docs/airflow-compat.md, "Cross-DAG"):

- a DAG is a Prefect flow named by its ``dag_id``; its deployments are that flow's deployments;
- a DAG run is a flow run of that flow; its logical date is in its name,
  ``manual__<ISO date in UTC>`` (the shim names every run so, ``run_id`` alike), so a run is found
  by ``(dag_id, logical date)`` through its name, as Airflow finds it by ``execution_date``;
- the run's state: Completed is ``success``, Failed/Crashed/Cancelled ``failed``,
  Running/Paused/Cancelling ``running``, Scheduled/Pending ``queued``;
- a task instance is the task run named by the ``task_id`` in that flow run, in the Airflow state
  the shim gave it (a Completed run named ``Skipped`` is ``skipped``, a Failed one named
  ``UpstreamFailed`` ``upstream_failed``, ``AwaitingRetry``/``Retrying`` ``up_for_retry``).

A DAG that is not deployed can still be run in process: :func:`find_dag` imports it from the DAG
folder of the DAG asking (the files whose text names the ``dag_id``), as Airflow's DagBag would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pendulum

__all__ = [
    "dag_run_state",
    "deployment_of",
    "find_dag",
    "flow_exists",
    "flow_runs_at",
    "run_name",
    "task_states",
]

#: Prefixes of Airflow run ids (DagRunType) that a run name may carry.
RUN_TYPES = ("manual", "scheduled", "backfill", "dataset_triggered")


def run_name(logical_date: dt.datetime, run_type: str = "manual") -> str:
    """The flow run name (and Airflow ``run_id``) of a run with this logical date."""
    return f"{run_type}__{pendulum.instance(logical_date).in_tz('UTC').isoformat()}"


def dag_run_state(flow_run: Any) -> str:
    """The Airflow DagRunState of a flow run."""
    state_type = getattr(flow_run.state, "type", None)
    name = getattr(state_type, "value", str(state_type))
    if name == "COMPLETED":
        return "success"
    if name in ("FAILED", "CRASHED", "CANCELLED"):
        return "failed"
    if name in ("SCHEDULED", "PENDING"):
        return "queued"
    return "running"


def _task_state(task_run: Any) -> str:
    state = task_run.state
    if state is None:  # created, its first state not written yet
        return "scheduled"
    kind = getattr(state.type, "value", str(state.type))
    if kind == "COMPLETED":
        return "skipped" if state.name == "Skipped" else "success"
    if kind in ("FAILED", "CRASHED", "CANCELLED"):
        return "upstream_failed" if state.name == "UpstreamFailed" else "failed"
    if state.name in ("AwaitingRetry", "Retrying"):
        return "up_for_retry"
    if kind == "RUNNING":
        return "running"
    if kind == "PENDING":
        return "queued"
    return "scheduled"


def flow_runs_at(dag_id: str, logical_dates: Iterable[dt.datetime]) -> list[Any]:
    """The flow runs of ``dag_id`` whose logical date is one of ``logical_dates``."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterName

    names = [run_name(date, run_type) for date in logical_dates for run_type in RUN_TYPES]
    if not names:
        return []
    with get_client(sync_client=True) as client:
        return list(
            client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[dag_id])),
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=names)),
            )
        )


def task_states(flow_runs: Iterable[Any], task_ids: Iterable[str] | None = None, prefix: str | None = None) -> list[tuple[str, str]]:
    """``(task_id, Airflow state)`` of the named tasks (or those under ``prefix``) in ``flow_runs``."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    ids = [run.id for run in flow_runs]
    if not ids:
        return []
    wanted = set(task_ids or ())
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    return [
        (run.name, _task_state(run))
        for run in task_runs
        if run.name in wanted or (prefix is not None and run.name.startswith(prefix))
    ]


def flow_exists(dag_id: str) -> bool:
    """Whether Prefect knows a flow named ``dag_id`` (it was deployed or has run)."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_flow_by_name(dag_id)
        except ObjectNotFound:
            return False
    return True


#: Folders a DAG folder scan does not enter (environments, caches, VCS data).
_SKIPPED_DIRS = {"__pycache__", "site-packages", "node_modules"}


def find_dag(dag_id: str, folder: str | Path) -> Any | None:
    """The DAG ``dag_id`` imported from a file of ``folder`` (recursively) that names it, or None.

    Only files that mention ``airflow`` and ``dag`` are imported (Airflow's safe-mode test for a
    DAG file) and among them those holding the id; hidden folders and environments are skipped.
    """
    from lexis_prefect.airflow.loader import DagFileError, load_dags

    root = Path(folder)
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts[:-1]
        if any(part.startswith(".") or part in _SKIPPED_DIRS for part in parts):
            continue
        try:
            text = path.read_text(errors="ignore")
            if dag_id not in text or "airflow" not in text.lower() or "dag" not in text.lower():
                continue
            dags = load_dags(path)
        except (OSError, DagFileError):
            continue
        if dag_id in dags:
            return dags[dag_id]
    return None


def deployment_of(dag_id: str) -> Any | None:
    """The deployment that runs ``dag_id``: the one named like it, else its only one; None if none."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    from lexis_prefect.airflow.exceptions import AirflowException

    with get_client(sync_client=True) as client:
        deployments = list(client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=[dag_id]))))
    if not deployments:
        return None
    named = [d for d in deployments if d.name == dag_id]
    if named:
        return named[0]
    if len(deployments) == 1:
        return deployments[0]
    names = sorted(d.name for d in deployments)
    raise AirflowException(
        f"DAG {dag_id} has several deployments {names} and none is named {dag_id!r}: the shim cannot tell "
        "which one to trigger (see docs/airflow-compat.md)"
    )
