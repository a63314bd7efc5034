"""The `lexis-prefect` command: a thin typer front-end over the library."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer

from lexis_prefect.exceptions import ConfigurationError, JobValidationError, LexisError
from lexis_prefect.models.job import SEED_JOB, SingleHPCJob

app = typer.Typer(
    name="lexis-prefect",
    help="Run LEXIS HPC workflows on Prefect 3.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def schema(indent: Annotated[int, typer.Option(help="Spaces of indentation; 0 for one line.")] = 2) -> None:
    """Print the JSON schema of SingleHPCJob (usable as an Airflow Param schema or a Prefect parameter schema)."""
    typer.echo(json.dumps(SingleHPCJob.model_json_schema(), indent=indent or None))


@app.command()
def validate(
    path: Annotated[str, typer.Argument(help="A JSON file holding one SingleHPCJob, or - for standard input.")],
) -> None:
    """Check a job description; on failure, name every bad field and exit 1."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise typer.BadParameter(str(exc), param_hint="PATH") from None
    try:
        job = SingleHPCJob.model_validate_json(text)
    except JobValidationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"ok: job {job.requirements.job_name!r}, {len(job.requirements.tasks)} task(s), "
               f"{len(job.data_inputs)} input(s), {len(job.data_outputs)} output(s)")


@app.command()
def check() -> None:
    """Self-check: in a real Prefect flow run, validate the seed's job and resolve its names on a fresh sandbox."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from lexis_prefect.blocks import resolve_credentials
    from lexis_prefect.sandbox import SandboxProcess

    with SandboxProcess() as sandbox:
        typer.echo(f"LEXIS sandbox started at {sandbox.url}")
        result = asyncio.run(_self_check_flow()(job1=SEED_JOB, sandbox_url=sandbox.url))
    typer.echo(f"Prefect flow run completed: {result}")
    try:
        credentials = resolve_credentials()
    except ConfigurationError as exc:
        typer.echo(f"LEXIS: not configured ({exc}); flows will need the sandbox or a LexisCredentials block.")
    else:
        typer.echo(f"LEXIS: AAI at {credentials.endpoints.aai_url}, staging at {credentials.endpoints.staging_url}")


@app.command()
def doctor(
    job: Annotated[Optional[Path], typer.Option("--job", help="A JSON file holding one SingleHPCJob (default: the seed's job1).")] = None,  # noqa: UP007
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as a JSON list instead of a table.")] = False,
    test_job: Annotated[bool, typer.Option("--test-job", help="Also run one tiny job through the whole path, then remove it.")] = False,
) -> None:
    """Check each step a run of the job will take on the configured LEXIS (no side effects); exit 0 only if all pass."""
    from lexis_prefect.doctor import render_table, rows_json, run_doctor

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        text: Any = job.read_text() if job is not None else SEED_JOB
    except OSError as exc:
        _bad_input(str(exc))
    rows = asyncio.run(run_doctor(text, test_job=test_job))
    typer.echo(rows_json(rows) if as_json else render_table(rows))
    raise typer.Exit(0 if all(r.result == "ok" for r in rows) else 1)


@app.command()
def watch(
    interval: Annotated[float, typer.Option(help="Seconds between polls: a run is resumed within this of its job's end.")] = 10.0,
    credentials_block: Annotated[
        Optional[str],  # noqa: UP007
        typer.Option(help="LexisCredentials block for runs that saved none (default: LEXIS_CREDENTIALS_BLOCK, else LEXIS_*)."),
    ] = None,
    polls: Annotated[Optional[int], typer.Option(help="Stop after this many polls (default: run until killed).")] = None,  # noqa: UP007
) -> None:
    """Resume suspended runs when their HEAppE jobs end (one process beside the worker; stateless)."""
    import logging

    from lexis_prefect.watch import watch as run_watch

    if interval <= 0:
        _bad_input("--interval must be > 0")
    # Prefect configures logging when imported: the watcher's own lines go to stderr by their own handler.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("lexis_prefect.watch", "lexis_prefect.keeper"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger(name).propagate = False
    try:
        asyncio.run(run_watch(interval, credentials_block or os.environ.get("LEXIS_CREDENTIALS_BLOCK"), polls))
    except KeyboardInterrupt:
        pass


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    credentials_block: Annotated[
        Optional[str],  # noqa: UP007
        typer.Option("--credentials", help="LexisCredentials block: the AAI that checks tokens (default: LEXIS_CREDENTIALS_BLOCK, else LEXIS_*)."),
    ] = None,
    token_cache_seconds: Annotated[float, typer.Option(help="Seconds a token check is reused.")] = 60.0,
) -> None:
    """Serve Airflow 2.10's REST API v1 (/api/v1) over the Prefect server of PREFECT_API_URL, for Py4Lexis and the LEXIS portal."""
    from lexis_prefect.api import ApiConfig, serve

    if token_cache_seconds < 0:
        _bad_input("--token-cache-seconds must be >= 0")
    serve(host, port, ApiConfig(credentials_block=credentials_block, token_cache_seconds=token_cache_seconds))


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to listen on; keep it on loopback.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8765,
    token_lifetime: Annotated[int, typer.Option(help="Access token lifetime, seconds.")] = 300,
    session_lifetime: Annotated[int, typer.Option(help="HEAppE session code lifetime, seconds.")] = 1800,
    job_seconds: Annotated[int, typer.Option(help="How long TestTemplate jobs run, seconds.")] = 2,
    user: Annotated[list[str], typer.Option(help="USER:PASSWORD of a user (repeatable); default demo:demo.")] = [],  # noqa: B006
    client: Annotated[list[str], typer.Option(help="Client id, or ID:SECRET (repeatable); default lexis-prefect.")] = [],  # noqa: B006
    unavailable: Annotated[list[str], typer.Option(help="Location whose HEAppE answers 503 (repeatable).")] = [],  # noqa: B006
    fault_rate: Annotated[float, typer.Option(help="Share of calls answered 502/503/504.")] = 0.0,
    drop_rate: Annotated[float, typer.Option(help="Share of calls whose connection is cut.")] = 0.0,
    rate_limit_rate: Annotated[float, typer.Option(help="Share of calls answered 429 with Retry-After.")] = 0.0,
    latency: Annotated[float, typer.Option(help="Seconds added before every call.")] = 0.0,
    fault_path: Annotated[list[str], typer.Option(help="Glob of request paths faults apply to (repeatable).")] = [],  # noqa: B006
    fault_seed: Annotated[Optional[int], typer.Option(help="Random seed of the faults.")] = None,  # noqa: UP007
    state_dir: Annotated[Optional[Path], typer.Option(help="Keep jobs, tokens and datasets here across restarts.")] = None,  # noqa: UP007
    data_dir: Annotated[Optional[Path], typer.Option(help="Datasets and job directories (default: a temp dir).")] = None,  # noqa: UP007
    log_requests: Annotated[bool, typer.Option(help="Log method, path, status and latency of each call.")] = False,
    heappe_version: Annotated[
        str, typer.Option(help="HEAppE version emulated: 4.3, 5.0, 6.0 or 6.3 (V6.3.2).", envvar="LEXIS_SANDBOX_HEAPPE_VERSION")
    ] = "6.3",
    heappe_bearer: Annotated[
        bool, typer.Option(help="HEAppE's LEXIS bearer mode (6.x from 6.1): calls carry Authorization: Bearer <token>.")
    ] = False,
    ready_file: Annotated[Optional[Path], typer.Option(hidden=True)] = None,  # noqa: UP007
) -> None:
    """Run the LEXIS sandbox (AAI, DDI staging, HEAppE on one loopback port) in the foreground."""
    import logging

    from lexis_prefect.sandbox import FaultConfig, SandboxConfig, serve

    defaults = SandboxConfig()
    unknown = set(unavailable) - {loc.name for loc in defaults.locations}
    if unknown:
        raise typer.BadParameter(f"no location {sorted(unknown)}", param_hint="--unavailable")
    try:
        config = SandboxConfig(
            users=dict(_pair(u, "--user") for u in user) or defaults.users,
            clients=dict(_client(c) for c in client) or defaults.clients,
            token_lifetime_seconds=token_lifetime,
            session_lifetime_seconds=session_lifetime,
            job_seconds=job_seconds,
            locations=[loc.model_copy(update={"available": loc.name not in unavailable}) for loc in defaults.locations],
            faults=FaultConfig(
                error_rate=fault_rate,
                drop_rate=drop_rate,
                rate_limit_rate=rate_limit_rate,
                latency_seconds=latency,
                paths=fault_path,
                seed=fault_seed,
            ),
            state_dir=state_dir,
            data_dir=data_dir,
            log_requests=log_requests,
            heappe_version=heappe_version,
            heappe_bearer=heappe_bearer,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if log_requests:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        serve(config, host=host, port=port, ready_file=ready_file)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down cleanly
        typer.echo("LEXIS sandbox stopped")


def _pair(value: str, option: str) -> tuple[str, str]:
    name, sep, secret = value.partition(":")
    if not sep or not name:
        raise typer.BadParameter(f"expected NAME:SECRET, got {value!r}", param_hint=option)
    return name, secret


def _client(value: str) -> tuple[str, str | None]:
    return _pair(value, "--client") if ":" in value else (value, None)


def _self_check_flow() -> Any:
    """Built on demand, so `schema` and `validate` do not pay for importing Prefect."""
    from prefect import flow, task
    from prefect.artifacts import create_markdown_artifact
    from pydantic import SecretStr

    from lexis_prefect import AAIClient, DDIStagingClient, HEAppEClient

    @task
    async def resolve_on_sandbox(job: SingleHPCJob, sandbox_url: str) -> str:
        """Log in as the demo user and find the job's location, node type, project and template."""
        async with AAIClient(f"{sandbox_url}/auth/realms/LEXIS_AAI", "lexis-prefect") as aai:
            token = (await aai.password_grant("demo", SecretStr("demo"))).access_token
        req, first = job.requirements, job.requirements.tasks[0]
        async with HEAppEClient(sandbox_url, token) as heappe, DDIStagingClient(f"{sandbox_url}/staging", token) as ddi:
            systems = await ddi.info()
            cluster = next(c for c in await heappe.list_available_clusters() if c.name == req.locations[0].location_name)
        node_type = next(n for n in cluster.node_types if n.name == first.node_type_name)
        project = next(p for p in node_type.projects if p.name == req.project_shortname)
        template = next(t for t in project.command_templates if t.name == first.command_template_name)
        return (
            f"on the sandbox, cluster {cluster.name} (id {cluster.id}), node type {node_type.name} (id {node_type.id}), "
            f"project {project.name} (id {project.id}), template {template.name} (id {template.id}); "
            f"DDI systems {', '.join(systems)}"
        )

    @flow(name="lexis-prefect-self-check", description="Validates a SingleHPCJob and resolves it on the sandbox.")
    async def self_check(job1: SingleHPCJob, sandbox_url: str) -> str:
        req = job1.requirements
        summary = (
            f"job {req.job_name!r} for project {req.project_shortname!r}: policy {req.policy}, "
            f"{len(req.locations)} location(s), {len(req.tasks)} task(s), "
            f"{len(job1.data_inputs)} input(s), {len(job1.data_outputs)} output(s); "
            + await resolve_on_sandbox(job1, sandbox_url)
        )
        await create_markdown_artifact(f"# lexis-prefect self-check\n\n{summary}\n", key="lexis-self-check")
        return summary

    return self_check


blocks_app = typer.Typer(
    name="blocks",
    help="Save the LEXIS Blocks a deployment uses: the platform's credentials and the user's access token.",
    no_args_is_help=True,
)
app.add_typer(blocks_app)


@blocks_app.command("save-credentials")
def save_credentials(
    name: Annotated[str, typer.Argument(help="Block name; deployments find it through LEXIS_CREDENTIALS_BLOCK.")] = "lexis",
    sandbox_url: Annotated[
        Optional[str], typer.Option("--sandbox", help="Read the endpoints from a running LEXIS sandbox at this URL.")  # noqa: UP007
    ] = None,
) -> None:
    """Save a LexisCredentials block (with its LexisEndpoints) from the LEXIS_* variables, or from a sandbox."""
    import httpx

    from lexis_prefect.blocks import LexisCredentials

    environ: dict[str, str] = dict(os.environ)
    if sandbox_url:
        from lexis_prefect.sandbox.server import sandbox_environment

        try:
            environ.update(sandbox_environment(sandbox_url), LEXIS_USERNAME="demo", LEXIS_PASSWORD="demo")
        except httpx.HTTPError as exc:
            _bad_input(f"no LEXIS sandbox answers at {sandbox_url}: {exc}")
    try:
        credentials = LexisCredentials.from_env(environ)
    except ConfigurationError as exc:
        _bad_input(str(exc))
    credentials.save(name, overwrite=True)
    typer.echo(f"saved LexisCredentials block {name!r}: AAI at {credentials.endpoints.aai_url}")


@blocks_app.command("save-token")
def save_token(
    name: Annotated[str, typer.Argument(help="Secret block name.")] = "lexis-access-token",
    login: Annotated[
        bool, typer.Option("--login", help="Log in with the credentials' username/password instead of reading a token.")
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline/--access-token",
            help="Keep an offline token of our client (default: runs days later still work), or the access token as given.",
        ),
    ] = True,
    credentials_block: Annotated[
        Optional[str], typer.Option("--credentials", help="LexisCredentials block (else the LEXIS_* environment).")  # noqa: UP007
    ] = None,
) -> None:
    """Save the user's token in a Secret block, and print the reference a deployment run takes.

    The token comes from LEXIS_ACCESS_TOKEN, else standard input, else a hidden prompt; it is never
    printed. By default it is exchanged for an offline token first: an access token expires within
    minutes, long before a scheduled run (revoke the offline token in the LEXIS AAI when done).
    """
    from prefect.blocks.system import Secret

    from lexis_prefect.blocks import resolve_credentials, reveal_token

    try:
        credentials = resolve_credentials(credentials_block)
        given = None if login else reveal_token(os.environ.get("LEXIS_ACCESS_TOKEN") or _read_token())
        token = asyncio.run(_token_to_keep(credentials, given, offline))
    except LexisError as exc:  # not configured, or the AAI refused the token or the login
        _bad_input(str(exc))
    Secret(value=token).save(name, overwrite=True)
    kind = "an offline token" if offline else "the access token"
    reference = json.dumps({"$ref": {"block_document_slug": f"secret/{name}"}})
    typer.echo(f"saved {kind} in Secret block {name!r}; a deployment run takes:  --param 'access_token={reference}'")


def _read_token() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.read().strip()
    return typer.prompt("LEXIS access token", hide_input=True)


async def _token_to_keep(credentials: Any, given: Any, offline: bool) -> Any:
    """The token to save: `given` or a password login's access token, or an offline token for it."""
    async with credentials.get_client("aai") as aai:
        if given is None:
            if not (credentials.username and credentials.password):
                raise ConfigurationError("--login needs a username and password in the credentials (LEXIS_USERNAME/LEXIS_PASSWORD)")
            tokens = await aai.password_grant(credentials.username, credentials.password, offline_access=offline)
            return tokens.refresh_token if offline else tokens.access_token
        return (await aai.exchange_token(given, offline_access=True)).refresh_token if offline else given


airflow_app = typer.Typer(
    name="airflow",
    help="Run Airflow 2 and Airflow 3 (airflow.sdk) DAG files unchanged on Prefect (the Airflow-compat shim).",
    no_args_is_help=True,
)
app.add_typer(airflow_app)


def _bad_input(message: str) -> NoReturn:
    """Exit 2, the CLI's code for input it cannot use, saying why on stderr."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _loaded(load: Any, *args: Any) -> Any:
    """``load(*args)`` of the shim's loader; a file that cannot be loaded exits 2 with the reason."""
    from lexis_prefect.airflow.loader import DagFileError

    try:
        return load(*args)
    except DagFileError as exc:
        _bad_input(str(exc))


@airflow_app.command("test")
def airflow_test(
    dag_file: Annotated[str, typer.Argument(help="An Airflow DAG file (.py).")],
    dag_id: Annotated[Optional[str], typer.Option("--dag-id", help="The DAG to run when the file holds several.")] = None,
    conf: Annotated[Optional[str], typer.Option("--conf", help="The run's conf as a JSON object (Airflow's dag_run.conf).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line: dag_id, state, tasks.")] = False,
) -> None:
    """Run one DAG once on Prefect, like Airflow's `dags test`: exit 0 on success, 1 on failure, 2 on bad input."""
    from lexis_prefect.airflow.exceptions import ParamValidationError
    from lexis_prefect.airflow.loader import load_dag

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    run_conf = _conf(conf)
    dag = _loaded(load_dag, dag_file, dag_id)
    try:
        result = dag.test(run_conf=run_conf)
    except ParamValidationError as exc:
        where = f"\n  {exc.field}: {exc.reason}" if exc.field else ""
        _bad_input(f"invalid conf for DAG {dag.dag_id}:{where}\n{exc}")
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        width = max((len(t) for t in result.tasks), default=0)
        for task_id, state in result.tasks.items():
            typer.echo(f"{task_id:<{width}}  {state}")
        typer.echo(f"DAG {result.dag_id} run {result.run_id}: {result.state}")
    raise typer.Exit(0 if result.state == "success" else 1)


@airflow_app.command("deploy")
def airflow_deploy(
    dag_file: Annotated[str, typer.Argument(help="An Airflow DAG file (.py) under the current folder.")],
    name: Annotated[str, typer.Option("--name", help="The deployment's name.")],
    pool: Annotated[Optional[str], typer.Option("--pool", help="The work pool its runs go to.")] = None,
    dag_id: Annotated[Optional[str], typer.Option("--dag-id", help="The DAG to deploy when the file holds several.")] = None,
    no_schedule: Annotated[bool, typer.Option("--no-schedule", help="Deploy without the DAG's schedule and dataset triggers.")] = False,
) -> None:
    """Create or update the DAG's deployment with the DAG's own schedule, or its trigger on dataset events."""
    from lexis_prefect.airflow.loader import load_dag
    from lexis_prefect.airflow.scheduling.deploy import dag_deployment
    from lexis_prefect.airflow.scheduling.triggers import UnsupportedSchedule

    dag = _loaded(load_dag, dag_file, dag_id)
    try:
        deployment = dag_deployment(dag, name, work_pool_name=pool, with_schedule=not no_schedule)
    except UnsupportedSchedule as exc:
        _bad_input(f"{exc}\n(use --no-schedule)")
    deployment_id = deployment.apply()
    what = [repr(s.schedule) for s in deployment.schedules or []] + [t.name for t in deployment.triggers]
    typer.echo(f"deployment {dag.name}/{name} ({deployment_id}): {'; '.join(what) or 'no schedule'}")


@airflow_app.command("list")
def airflow_list(
    dag_file: Annotated[str, typer.Argument(help="An Airflow DAG file (.py).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """List the DAGs of a file: ids, params, tasks (with trigger rules) and edges."""
    from lexis_prefect.airflow.loader import load_dags

    dags = _loaded(load_dags, dag_file)
    listing = {dag_id: _describe_dag(dag) for dag_id, dag in dags.items()}
    if as_json:
        typer.echo(json.dumps(listing))
        return
    for dag_id, info in listing.items():
        typer.echo(f"DAG {dag_id}  params: {', '.join(info['params']) or '-'}")
        for task in info["tasks"]:
            typer.echo(f"  {task['task_id']}  ({task['operator']}, {task['trigger_rule']})")
        for up, down in info["edges"]:
            typer.echo(f"  {up} >> {down}")


def _describe_dag(dag: Any) -> dict[str, Any]:
    tasks = dag.topological_sort()
    return {
        "params": list(dag.params),
        "tasks": [
            {"task_id": t.task_id, "operator": t.task_type, "trigger_rule": str(t.trigger_rule.value)}
            for t in tasks
        ],
        "edges": [[t.task_id, d] for t in tasks for d in sorted(t.downstream_task_ids)],
    }


def _conf(text: Optional[str]) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _bad_input(f"--conf is not valid JSON: {exc}")
    if not isinstance(value, dict):
        _bad_input(f"--conf must be a JSON object, got {type(value).__name__}")
    return value


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
