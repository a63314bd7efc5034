"""Task instances: the task runs of a DAG run's flow run, named by their Airflow task ids.

The Airflow-compat shim names each task run by its task id (`task_id[i]` for the i-th mapped one):
that name is split into `task_id` and `map_index` (-1 when not mapped). Shapes: apache-airflow
2.10.5 `airflow/api_connexion/schemas/task_instance_schema.py` and
`endpoints/task_instance_endpoint.py`; logs: `endpoints/log_endpoint.py` (JSON
`{"continuation_token", "content"}`, or text/plain when asked for).
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId, TaskRunFilter, TaskRunFilterFlowRunId
from prefect.client.schemas.sorting import LogSort

from lexis_prefect.api.auth import User
from lexis_prefect.api.context import Caller, Client, read_all
from lexis_prefect.api.dag_runs import _iso, dag_run_id_of, find_run, logical_date_of
from lexis_prefect.api.errors import Problem
from lexis_prefect.api.paging import Limit, Offset, page, sort_key
from lexis_prefect.api.states import task_state

__all__ = ["router"]

router = APIRouter()
MAPPED = re.compile(r"^(?P<task_id>.+)\[(?P<index>\d+)\]$")


def split_name(name: str) -> tuple[str, int]:
    match = MAPPED.match(name)
    return (match["task_id"], int(match["index"])) if match else (name, -1)


def task_instance_json(dag_id: str, run: Any, task_run: Any) -> dict[str, Any]:
    task_id, map_index = split_name(task_run.name)
    duration = task_run.total_run_time.total_seconds() if task_run.start_time else None
    return {
        "dag_id": dag_id,
        "dag_run_id": dag_run_id_of(run),
        "duration": duration,
        "end_date": _iso(task_run.end_time),
        "execution_date": _iso(logical_date_of(run)),
        "executor": None,
        "executor_config": "{}",
        "hostname": "",
        "map_index": map_index,
        "max_tries": task_run.empirical_policy.retries or 0,
        "note": None,
        "operator": None,
        "pid": None,
        "pool": "default_pool",
        "pool_slots": 1,
        "priority_weight": 1,
        "queue": "default",
        "queued_when": None,
        "rendered_fields": {},
        "rendered_map_index": None,
        "sla_miss": None,
        "start_date": _iso(task_run.start_time),
        "state": task_state(task_run.state),
        "task_display_name": task_id,
        "task_id": task_id,
        "trigger": None,
        "triggerer_job": None,
        "try_number": task_run.run_count,
        "unixname": "",
    }


async def _all_task_runs(client: PrefectClient, flow_run_id: UUID) -> list[Any]:
    runs = TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
    return await read_all(lambda limit, offset: client.read_task_runs(task_run_filter=runs, limit=limit, offset=offset))


def _latest(task_runs: list[Any]) -> list[Any]:
    """One task run per name, the newest: a run that suspended and resumed starts again from the top
    (lexis_prefect.hpc.suspend), so a task id has a task run from before the suspension too."""
    latest: dict[str, Any] = {}
    for task_run in sorted(task_runs, key=lambda t: t.created):
        latest[task_run.name] = task_run
    return sorted(latest.values(), key=lambda t: (sort_key(t.start_time), t.name))


async def _task_runs(client: PrefectClient, flow_run_id: UUID) -> list[Any]:
    return _latest(await _all_task_runs(client, flow_run_id))


async def _one(client: PrefectClient, dag_id: str, dag_run_id: str, task_id: str, map_index: int, user: User) -> tuple[Any, Any, Any]:
    entry, run = await find_run(client, dag_id, dag_run_id, user)
    for task_run in await _task_runs(client, run.id):
        if split_name(task_run.name) == (task_id, map_index):
            return entry, run, task_run
    raise Problem(404, None, title="Task instance not found")


@router.get("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances")
async def get_task_instances(
    dag_id: str,
    dag_run_id: str,
    limit: Limit,
    offset: Offset,
    state: Annotated[list[str] | None, Query()] = None,
    user: User = Caller,
    client: PrefectClient = Client,
) -> dict[str, Any]:
    entry, run = await find_run(client, dag_id, dag_run_id, user)
    rows = [task_instance_json(entry.dag_id, run, t) for t in await _task_runs(client, run.id)]
    if state:
        wanted = {None if s in ("none", "null") else s for s in state}
        rows = [r for r in rows if r["state"] in wanted]
    return {"task_instances": page(rows, limit, offset), "total_entries": len(rows)}


@router.get("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}")
async def get_task_instance(dag_id: str, dag_run_id: str, task_id: str, user: User = Caller,
                            client: PrefectClient = Client) -> dict[str, Any]:
    entry, run, task_run = await _one(client, dag_id, dag_run_id, task_id, -1, user)
    return task_instance_json(entry.dag_id, run, task_run)


@router.get("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}")
async def get_mapped_task_instance(dag_id: str, dag_run_id: str, task_id: str, map_index: int, user: User = Caller,
                                   client: PrefectClient = Client) -> dict[str, Any]:
    entry, run, task_run = await _one(client, dag_id, dag_run_id, task_id, map_index, user)
    return task_instance_json(entry.dag_id, run, task_run)


@router.get("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{task_try_number}")
async def get_log(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    task_try_number: int,
    request: Request,
    map_index: int = -1,
    full_content: bool = False,
    token: str | None = None,
    user: User = Caller,
    client: PrefectClient = Client,
) -> Any:
    """The task's Prefect logs as text: those of every task run of its name in the run (one per
    suspension of the run). Prefect keeps one log per task run, not per try: every try number up to
    the run count answers the whole log."""
    try:
        _, _, task_run = await _one(client, dag_id, dag_run_id, task_id, map_index, user)
    except Problem as problem:
        if problem.status == 404 and problem.title == "Task instance not found":
            raise Problem(404, None, title="TaskInstance not found") from None
        raise
    if task_try_number < 1 or task_try_number > max(task_run.run_count, 1):
        raise Problem(404, None, title="TaskInstance not found")
    same = [t.id for t in await _all_task_runs(client, task_run.flow_run_id) if t.name == task_run.name]
    logs = LogFilter(task_run_id=LogFilterTaskRunId(any_=same))
    entries = await read_all(
        lambda limit, offset: client.read_logs(log_filter=logs, limit=limit, offset=offset, sort=LogSort.TIMESTAMP_ASC)
    )
    content = "".join(f"[{e.timestamp.isoformat()}] {{{e.name}}} {_level(e.level)} - {e.message}\n" for e in entries)
    if "text/plain" in request.headers.get("accept", "") and "application/json" not in request.headers.get("accept", ""):
        return PlainTextResponse(content)
    # Airflow's token is a signed reading position; the whole log is answered at once here, and an
    # empty token is what Airflow reads as "from the start".
    return {"continuation_token": "", "content": content}


def _level(level: int) -> str:
    return logging.getLevelName(level)
