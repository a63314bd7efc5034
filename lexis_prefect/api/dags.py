"""DAGs: the Prefect deployments, as Airflow 2.10 shows DAGs.

Which deployments and under which dag_id: every deployment is a DAG. A deployment of a DAG file
(tagged `airflow`, or whose entrypoint lies in a `dags/` folder) is named by its flow, which the
Airflow-compat shim names by the DAG's `dag_id`; a native flow is named by its flow too. When
several deployments share a flow name, the DAG-file one (else the oldest) keeps the bare name and
the others are `<flow name>.<deployment name>` (Airflow allows dots in a dag_id).

Shapes: apache-airflow 2.10.5 `airflow/api_connexion/schemas/dag_schema.py` (DAGSchema,
DAGDetailSchema; `params` is `Param.dump()` of each param: `__class`, `value`, `description`,
`schema`, from `airflow/models/param.py`) and `airflow/api_connexion/endpoints/dag_endpoint.py`
(paging, `dag_id_pattern` as a case-insensitive substring, `tags`, `paused`, 404 bodies).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowFilter, FlowFilterId

from lexis_prefect.api.auth import User
from lexis_prefect.api.context import Caller, Client, read_all
from lexis_prefect.api.errors import Problem
from lexis_prefect.api.paging import Limit, Offset, page

__all__ = ["DagEntry", "catalogue", "find_dag", "router"]

router = APIRouter()
PARAM_CLASS = "airflow.models.param.Param"
#: Airflow's defaults for what a deployment does not say.
MAX_ACTIVE = 16


@dataclass
class DagEntry:
    dag_id: str
    flow_name: str
    deployment: Any  # prefect DeploymentResponse
    dag_file: bool

    @property
    def schema(self) -> dict[str, Any]:
        return self.deployment.parameter_openapi_schema or {}


def _is_dag_file(deployment: Any) -> bool:
    path = (deployment.entrypoint or "").split(":")[0]
    return "airflow" in (deployment.tags or []) or "dags" in path.split("/")[:-1]


async def catalogue(client: PrefectClient) -> list[DagEntry]:
    """Every deployment as a DAG, sorted by dag_id."""
    deployments = await read_all(lambda limit, offset: client.read_deployments(limit=limit, offset=offset))
    flow_ids = list({d.flow_id for d in deployments})
    flows = await read_all(
        lambda limit, offset: client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids)), limit=limit, offset=offset)
    ) if flow_ids else []
    names = {f.id: f.name for f in flows}
    by_flow: dict[str, list[Any]] = {}
    for deployment in deployments:
        by_flow.setdefault(names.get(deployment.flow_id, str(deployment.flow_id)), []).append(deployment)
    entries = []
    for flow_name, group in by_flow.items():
        group.sort(key=lambda d: (not _is_dag_file(d), d.created))
        for index, deployment in enumerate(group):
            dag_id = flow_name if index == 0 else f"{flow_name}.{deployment.name}"
            entries.append(DagEntry(dag_id, flow_name, deployment, _is_dag_file(deployment)))
    return sorted(entries, key=lambda e: e.dag_id)


async def find_dag(client: PrefectClient, dag_id: str) -> DagEntry:
    for entry in await catalogue(client):
        if entry.dag_id == dag_id:
            return entry
    raise Problem(404, f"The DAG with dag_id: {dag_id} was not found", title="DAG not found")


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def dag_json(entry: DagEntry) -> dict[str, Any]:
    """DAGSchema's fields."""
    deployment = entry.deployment
    return {
        "dag_id": entry.dag_id,
        "dag_display_name": entry.dag_id,
        "root_dag_id": None,
        "is_paused": bool(deployment.paused),
        "is_active": True,
        "is_subdag": False,
        "last_parsed_time": _iso(deployment.updated),
        "last_pickled": None,
        "last_expired": None,
        "scheduler_lock": None,
        "pickle_id": None,
        "default_view": "grid",
        "fileloc": (deployment.entrypoint or "").split(":")[0],
        "file_token": str(deployment.id),
        "owners": [],
        "description": deployment.description or None,
        "schedule_interval": _schedule(deployment),
        "timetable_description": None,
        "tags": [{"name": tag} for tag in deployment.tags or []],
        "max_active_tasks": MAX_ACTIVE,
        "max_active_runs": _max_active_runs(deployment),
        "max_consecutive_failed_dag_runs": 0,
        "has_task_concurrency_limits": False,
        "has_import_errors": False,
        "next_dagrun": None,
        "next_dagrun_data_interval_start": None,
        "next_dagrun_data_interval_end": None,
        "next_dagrun_create_after": None,
    }


def _max_active_runs(deployment: Any) -> int:
    """The deployment's concurrency limit (its global concurrency limit's), else Airflow's default."""
    limit = getattr(deployment.global_concurrency_limit, "limit", None)
    return limit if isinstance(limit, int) and limit > 0 else MAX_ACTIVE


def _schedule(deployment: Any) -> dict[str, Any] | None:
    """A cron schedule as Airflow's CronExpression; anything else (or none) as null."""
    for item in deployment.schedules or []:
        cron = getattr(item.schedule, "cron", None)
        if cron:
            return {"__type": "CronExpression", "value": cron}
    return None


def dag_details_json(entry: DagEntry) -> dict[str, Any]:
    """DAGDetailSchema's fields: DAGSchema's, and those of the DAG object."""
    details = dag_json(entry)
    details.update(
        timezone="Timezone('UTC')",
        catchup=False,
        orientation="LR",
        concurrency=MAX_ACTIVE,
        dataset_expression=None,
        start_date=None,
        dag_run_timeout=None,
        doc_md=entry.deployment.description or None,
        params=params_json(entry),
        is_paused_upon_creation=None,
        end_date=None,
        template_searchpath=None,
        render_template_as_native_obj=False,
        last_parsed=_iso(entry.deployment.updated),
    )
    return details


def is_secret_parameter(schema: dict[str, Any]) -> bool:
    """A parameter that takes a Secret block reference (lexis_prefect.blocks.secret_reference_schema)."""
    return schema.get("block_type_slug") == "secret"


def params_json(entry: DagEntry) -> dict[str, Any]:
    """`Param.dump()` of each parameter: its default as `value`, its description, its JSON schema.

    A secret parameter (the access token) is shown as the string param the DAG declares, without a
    value: its default is the deployment's own Secret block, which a run started here never uses.
    """
    schema = entry.schema
    defaults = entry.deployment.parameters or {}
    params = {}
    for name, prop in (schema.get("properties") or {}).items():
        prop = {k: v for k, v in copy.deepcopy(prop).items() if k not in ("position", "title")}
        description = prop.pop("description", None)
        if is_secret_parameter(prop):
            default = prop.get("default")  # the DAG param's own default (""), never the deployment's block
            value, prop = default if isinstance(default, str) else None, {"type": "string"}
        else:
            value = defaults.get(name, prop.get("default"))
            prop = _inline(prop, schema.get("definitions") or schema.get("$defs") or {})
        params[name] = {"__class": PARAM_CLASS, "value": value, "description": description, "schema": prop}
    return params


def _inline(prop: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The property with the definitions it refers to, so that it validates on its own."""
    text = repr(prop)
    used = {m for m in re.findall(r"#/(?:definitions|\$defs)/([^'\"]+)", text)}
    if not used:
        return prop
    return {**prop, "definitions": definitions, "$defs": definitions}


@router.get("/dags")
async def get_dags(
    limit: Limit,
    offset: Offset,
    tags: Annotated[list[str] | None, Query()] = None,
    dag_id_pattern: str | None = None,
    only_active: bool = True,
    paused: bool | None = None,
    order_by: str = "dag_id",
    user: User = Caller,
    client: PrefectClient = Client,
) -> dict[str, Any]:
    entries = await catalogue(client)
    if dag_id_pattern:
        entries = [e for e in entries if dag_id_pattern.lower() in e.dag_id.lower()]
    if paused is not None:
        entries = [e for e in entries if bool(e.deployment.paused) == paused]
    if tags:
        entries = [e for e in entries if set(tags) & set(e.deployment.tags or [])]
    if order_by not in ("dag_id", "-dag_id"):
        raise Problem(400, f"Ordering with '{order_by.lstrip('-')}' is disallowed or the attribute does not exist on the model")
    if order_by.startswith("-"):
        entries.reverse()
    return {"dags": [dag_json(e) for e in page(entries, limit, offset)], "total_entries": len(entries)}


@router.get("/dags/{dag_id}")
async def get_dag(dag_id: str, user: User = Caller, client: PrefectClient = Client) -> dict[str, Any]:
    return dag_json(await find_dag(client, dag_id))


@router.get("/dags/{dag_id}/details")
async def get_dag_details(dag_id: str, user: User = Caller, client: PrefectClient = Client) -> dict[str, Any]:
    return dag_details_json(await find_dag(client, dag_id))


@router.patch("/dags/{dag_id}")
async def patch_dag(
    dag_id: str,
    body: Annotated[dict[str, Any], Body()],
    update_mask: Annotated[list[str] | None, Query()] = None,
    user: User = Caller,
    client: PrefectClient = Client,
) -> dict[str, Any]:
    """Only `is_paused` can be changed, as in Airflow: it pauses or resumes the deployment."""
    if update_mask is not None and update_mask != ["is_paused"]:
        raise Problem(400, "Only `is_paused` field can be updated through the REST API")
    paused = body.get("is_paused")
    if not isinstance(paused, bool):
        raise Problem(400, "{'is_paused': ['Not a valid boolean.']}")
    try:
        entry = await find_dag(client, dag_id)
    except Problem:
        raise Problem(404, None, title=f"Dag with id: '{dag_id}' not found") from None
    if paused:
        await client.pause_deployment(entry.deployment.id)
    else:
        await client.resume_deployment(entry.deployment.id)
    return dag_json(await find_dag(client, dag_id))
