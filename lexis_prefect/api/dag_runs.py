"""DAG runs: the flow runs of a deployment that the caller started through this API.

Ownership and identity are tags on the flow run (filterable on the Prefect server, shown in its
UI, and kept by runs that suspend and resume): `lexis.user:<AAI sub>` (who started it; every read
and write filters by it), `airflow.dag_run_id:<dag_run_id>` and `airflow.logical_date:<ISO date>`.
The flow run is named `manual__<logical date>`, the name the Airflow-compat shim gives a manual run
and keeps, so the run's `ts`/`logical_date` in templates is the one given here.

Shapes and errors: apache-airflow 2.10.5 `airflow/api_connexion/endpoints/dag_run_endpoint.py`
(post_dag_run, get_dag_runs, get_dag_run, update_dag_run_state, delete_dag_run) and
`airflow/api_connexion/schemas/dag_run_schema.py` (DAGRunSchema: `dag_run_id`, `logical_date` =
`execution_date`, both filled in when not given).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any

import pendulum
from fastapi import APIRouter, Body, Query, Request, Response
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterTags,
)
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Cancelling

from lexis_prefect.api.auth import User
from lexis_prefect.api.conf import check_conf, secret_parameters
from lexis_prefect.api.context import Caller, Client, context_of, read_all
from lexis_prefect.api.dags import DagEntry, catalogue, find_dag
from lexis_prefect.api.errors import Problem
from lexis_prefect.api.paging import Limit, Offset, page, sort_key
from lexis_prefect.api.secrets import delete_token_block, reference, save_token_block
from lexis_prefect.api.states import dag_run_state

__all__ = ["find_run", "router", "run_json"]

router = APIRouter()
USER_TAG = "lexis.user:"
RUN_ID_TAG = "airflow.dag_run_id:"
DATE_TAG = "airflow.logical_date:"
#: Airflow's `[scheduler] allowed_run_id_pattern` default.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
SORTABLE = {"id", "state", "dag_id", "execution_date", "dag_run_id", "start_date", "end_date", "updated_at",
            "external_trigger", "conf"}


def _tag(run: Any, prefix: str) -> str | None:
    return next((t[len(prefix):] for t in run.tags or [] if t.startswith(prefix)), None)


def dag_run_id_of(run: Any) -> str:
    return _tag(run, RUN_ID_TAG) or run.name


def logical_date_of(run: Any) -> datetime:
    text = _tag(run, DATE_TAG)
    if text:
        return datetime.fromisoformat(text)
    return run.expected_start_time or run.created


def _iso(value: datetime | None) -> str | None:
    return None if value is None else pendulum.instance(value).isoformat()


def run_json(dag_id: str, run: Any) -> dict[str, Any]:
    """DAGRunSchema's fields. `conf` is the run's parameters, the token as its Secret block reference."""
    logical = _iso(logical_date_of(run))
    return {
        "conf": run.parameters or {},
        "dag_id": dag_id,
        "dag_run_id": dag_run_id_of(run),
        "data_interval_end": logical,
        "data_interval_start": logical,
        "end_date": _iso(run.end_time),
        "execution_date": logical,
        "external_trigger": True,
        "last_scheduling_decision": None,
        "logical_date": logical,
        "note": None,
        "run_type": "scheduled" if run.auto_scheduled else "manual",
        "start_date": _iso(run.start_time),
        "state": dag_run_state(run.state),
    }


async def _runs(client: PrefectClient, entries: list[DagEntry], tags: list[str]) -> list[Any]:
    if not entries:
        return []
    deployments = DeploymentFilter(id=DeploymentFilterId(any_=[e.deployment.id for e in entries]))
    runs = FlowRunFilter(tags=FlowRunFilterTags(all_=tags))
    return await read_all(
        lambda limit, offset: client.read_flow_runs(
            deployment_filter=deployments, flow_run_filter=runs, limit=limit, offset=offset
        )
    )


async def find_run(client: PrefectClient, dag_id: str, dag_run_id: str, user: User, title: str | None = None) -> tuple[DagEntry, Any]:
    """The caller's run; 404 when the DAG or the run does not exist, 403 when it is someone else's."""
    entry = await find_dag(client, dag_id)
    found = await _runs(client, [entry], [f"{RUN_ID_TAG}{dag_run_id}"])
    mine = [r for r in found if f"{USER_TAG}{user.sub}" in (r.tags or [])]
    if mine:
        return entry, mine[0]
    if found:
        raise Problem(403, f"DAGRun with DAG ID: '{dag_id}' and DagRun ID: '{dag_run_id}' was started by another user")
    raise Problem(404, f"DAGRun with DAG ID: '{dag_id}' and DagRun ID: '{dag_run_id}' not found", title=title)


def _date(value: Any, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, datetime):
        raise Problem(400, f"{{'{field}': ['Not a valid datetime.']}}")
    if parsed.tzinfo is None:
        raise Problem(400, f"{{'{field}': ['Naive datetime is disallowed']}}")
    return parsed


def _logical_date(body: dict[str, Any]) -> datetime:
    """DAGRunSchema.autogenerate: logical_date, else execution_date, else now; both must agree."""
    logical, execution = body.get("logical_date"), body.get("execution_date")
    if logical is not None and execution is not None and logical != execution:
        raise Problem(400, f"{logical!r} != {execution!r}", title="logical_date conflicts with execution_date")
    given = logical if logical is not None else execution
    if given is None:
        return datetime.now(timezone.utc)
    return _date(given, "logical_date")


@router.post("/dags/{dag_id}/dagRuns")
async def post_dag_run(
    dag_id: str, request: Request, body: Annotated[Any, Body()] = None, user: User = Caller, client: PrefectClient = Client
) -> dict[str, Any]:
    try:
        entry = await find_dag(client, dag_id)
    except Problem:
        raise Problem(404, f"DAG with dag_id: '{dag_id}' not found", title="DAG not found") from None
    if not isinstance(body, dict):
        raise Problem(400, "Invalid input type: the body must be a JSON object")
    unknown = sorted(set(body) - {"conf", "dag_run_id", "logical_date", "execution_date", "data_interval_start",
                                  "data_interval_end", "note"})
    if unknown:
        raise Problem(400, f"{{{', '.join(repr(k) + ': [' + repr('Unknown field.') + ']' for k in unknown)}}}")
    logical_date = _logical_date(body)
    dag_run_id = body.get("dag_run_id") or f"manual__{logical_date.isoformat()}"
    if not isinstance(dag_run_id, str) or not RUN_ID_PATTERN.match(dag_run_id):
        raise Problem(400, f"The provided run ID '{dag_run_id}' is invalid. It does not match the pattern "
                           f"'{RUN_ID_PATTERN.pattern}'")
    conf = body.get("conf") or {}
    parameters = check_conf(entry, conf)
    if await _runs(client, [entry], [f"{RUN_ID_TAG}{dag_run_id}"]):
        raise Problem(409, f"DAGRun with DAG ID: '{dag_id}' and DAGRun ID: '{dag_run_id}' already exists")
    run = await _start(client, context_of(request), entry, user, conf, parameters, logical_date, dag_run_id)
    return run_json(entry.dag_id, run)


async def _start(client: PrefectClient, context: Any, entry: DagEntry, user: User, conf: dict[str, Any],
                 parameters: dict[str, Any], logical_date: datetime, dag_run_id: str) -> Any:
    """The flow run, its secret parameters made Secret blocks of its own (deleted again on failure)."""
    secrets = secret_parameters(entry)
    names: list[str] = []
    try:
        for name in secrets:
            token = await _run_token(context, user, conf.get(name))
            names.append(await save_token_block(await context.credentials(), token, context.config.aai_transport))
            parameters[name] = reference(names[-1])
        run = await client.create_flow_run_from_deployment(
            entry.deployment.id,
            parameters=parameters,
            name=f"manual__{logical_date.isoformat()}",
            tags=[f"{USER_TAG}{user.sub}", f"{RUN_ID_TAG}{dag_run_id}", f"{DATE_TAG}{logical_date.isoformat()}"],
            idempotency_key=f"airflow-api:{entry.deployment.id}:{dag_run_id}",
        )
    except PrefectHTTPStatusError as exc:
        await delete_token_block(client, {n: reference(n) for n in names})
        if exc.response.status_code in (409, 422):  # the server's own check of the parameters
            raise Problem(400, _server_detail(exc.response)) from None
        raise
    except BaseException:
        await delete_token_block(client, {n: reference(n) for n in names})
        raise
    # The idempotency key makes a concurrent POST of the same dag_run_id return the first one's run.
    lost = bool(names) and (run.parameters or {}).get(secrets[0]) != reference(names[0])
    if lost or dag_run_id_of(run) != dag_run_id or f"{USER_TAG}{user.sub}" not in run.tags:
        raise await _lost_race(client, names, entry.dag_id, dag_run_id)
    return run


async def _lost_race(client: PrefectClient, names: list[str], dag_id: str, dag_run_id: str) -> Problem:
    await delete_token_block(client, {n: reference(n) for n in names})
    return Problem(409, f"DAGRun with DAG ID: '{dag_id}' and DAGRun ID: '{dag_run_id}' already exists")


def _server_detail(response: Any) -> str:
    """The Prefect server's reason for refusing a run's parameters (they hold no token: secret
    parameters are block references by then)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return f"The Prefect server refused the run's parameters: {detail or response.status_code}"


async def _run_token(context: Any, user: User, given: Any) -> Any:
    """The token the run acts with: conf's, which must be the caller's own, else the bearer token."""
    from pydantic import SecretStr

    if given is None or given == "":
        return user.token
    owner = await context.verifier.verify(SecretStr(given))  # 401 for an invalid one
    if owner.sub != user.sub:
        raise Problem(403, "conf['access_token'] belongs to another user than the bearer token")
    return owner.token


def _filtered(runs: list[Any], entries: dict[Any, DagEntry], query: dict[str, Any]) -> list[tuple[str, Any]]:
    rows = [(entries[r.deployment_id].dag_id, r) for r in runs if r.deployment_id in entries]
    if query["state"]:
        rows = [(d, r) for d, r in rows if dag_run_state(r.state) in query["state"]]
    checks = {
        "execution_date": lambda r: logical_date_of(r),
        "start_date": lambda r: r.start_time,
        "end_date": lambda r: r.end_time,
        "updated_at": lambda r: r.updated,
    }
    for field, value_of in checks.items():
        for suffix, keep in (("_gte", lambda v, b: v is not None and v >= b), ("_lte", lambda v, b: v is not None and v <= b)):
            bound = query.get(field + suffix)
            if bound is not None:
                limit = _date(bound.replace(" ", "+"), field + suffix)  # a "+" unescaped in a URL
                rows = [(d, r) for d, r in rows if keep(value_of(r), limit)]
    return rows


def _sorted(rows: list[tuple[str, Any]], order_by: str) -> list[tuple[str, Any]]:
    field = order_by.lstrip("-")
    if field not in SORTABLE:
        raise Problem(400, f"Ordering with '{field}' is disallowed or the attribute does not exist on the model")
    keys = {
        "id": lambda row: row[1].created,
        "state": lambda row: dag_run_state(row[1].state),
        "dag_id": lambda row: row[0],
        "execution_date": lambda row: logical_date_of(row[1]),
        "dag_run_id": lambda row: dag_run_id_of(row[1]),
        "start_date": lambda row: sort_key(row[1].start_time),
        "end_date": lambda row: sort_key(row[1].end_time),
        "updated_at": lambda row: row[1].updated,
        "external_trigger": lambda row: True,
        "conf": lambda row: str(row[1].parameters),
    }
    return sorted(rows, key=keys[field], reverse=order_by.startswith("-"))


@router.get("/dags/{dag_id}/dagRuns")
async def get_dag_runs(
    dag_id: str,
    limit: Limit,
    offset: Offset,
    request: Request,
    state: Annotated[list[str] | None, Query()] = None,
    order_by: str = "id",
    user: User = Caller,
    client: PrefectClient = Client,
) -> dict[str, Any]:
    """The caller's runs of one DAG, or of every DAG with dag_id `~`."""
    entries = await catalogue(client) if dag_id == "~" else [await find_dag(client, dag_id)]
    runs = await _runs(client, entries, [f"{USER_TAG}{user.sub}"])
    query = {**request.query_params, "state": state}
    rows = _sorted(_filtered(runs, {e.deployment.id: e for e in entries}, query), order_by)
    return {"dag_runs": [run_json(d, r) for d, r in page(rows, limit, offset)], "total_entries": len(rows)}


@router.get("/dags/{dag_id}/dagRuns/{dag_run_id}")
async def get_dag_run(dag_id: str, dag_run_id: str, user: User = Caller, client: PrefectClient = Client) -> dict[str, Any]:
    entry, run = await find_run(client, dag_id, dag_run_id, user, title="DAGRun not found")
    return run_json(entry.dag_id, run)


@router.patch("/dags/{dag_id}/dagRuns/{dag_run_id}")
async def update_dag_run_state(
    dag_id: str, dag_run_id: str, body: Annotated[Any, Body()] = None, user: User = Caller, client: PrefectClient = Client
) -> dict[str, Any]:
    """`state: failed` cancels the flow run (as `prefect flow-run cancel`), and so its HEAppE jobs."""
    try:
        entry, run = await find_run(client, dag_id, dag_run_id, user)
    except Problem as problem:
        if problem.status == 404:
            raise Problem(404, None, title=f"Dag Run id {dag_run_id} not found in dag {dag_id}") from None
        raise
    state = body.get("state") if isinstance(body, dict) else None
    if state not in ("success", "failed", "queued"):
        # connexion's check of the body against the spec, before the endpoint (recorded from Airflow 2.10.5)
        raise Problem(400, f"{state!r} is not one of ['success', 'failed', 'queued'] - 'state'")
    if state != "failed":
        raise Problem(400, f"lexis-prefect cannot set a DAG run to {state!r}: only 'failed' (which cancels it)")
    if not (run.state and run.state.is_final()):
        # As `prefect flow-run cancel` does (no force: the server's rules apply, e.g. a suspended run,
        # which has no process to stop, is cancelled at once and the watcher cancels its jobs).
        await client.set_flow_run_state(
            run.id, Cancelling(message=f"cancelled through the Airflow REST API by {user.username or user.sub}")
        )
        run = await client.read_flow_run(run.id)
    return run_json(entry.dag_id, run)


@router.delete("/dags/{dag_id}/dagRuns/{dag_run_id}", status_code=204)
async def delete_dag_run(dag_id: str, dag_run_id: str, user: User = Caller, client: PrefectClient = Client) -> Response:
    """Deletes a finished run and the Secret block of its token; a run still going is refused."""
    entry, run = await find_run(client, dag_id, dag_run_id, user)
    if not (run.state and run.state.is_final()):
        raise Problem(400, f"DAGRun with DAG ID: '{dag_id}' and DagRun ID: '{dag_run_id}' has not ended: "
                           "set its state to failed first (that cancels it)")
    await client.delete_flow_run(run.id)
    await delete_token_block(client, run.parameters or {})
    return Response(status_code=204)
