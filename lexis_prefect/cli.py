"""The `lexis-prefect` command: a thin typer front-end over the library."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from lexis_prefect.exceptions import ConfigurationError, JobValidationError
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
    """Self-check: validate the seed's example job in a real Prefect flow run and report the configuration."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from lexis_prefect.blocks import resolve_credentials

    result = _self_check_flow()(job1=SEED_JOB)
    typer.echo(f"Prefect flow run completed: {result}")
    try:
        credentials = resolve_credentials()
    except ConfigurationError as exc:
        typer.echo(f"LEXIS: not configured ({exc}); flows will need the sandbox or a LexisCredentials block.")
    else:
        typer.echo(f"LEXIS: AAI at {credentials.endpoints.aai_url}, staging at {credentials.endpoints.staging_url}")


def _self_check_flow() -> Any:
    """Built on demand, so `schema` and `validate` do not pay for importing Prefect."""
    from prefect import flow, task
    from prefect.artifacts import create_markdown_artifact

    @task
    def summarise(job: SingleHPCJob) -> str:
        req = job.requirements
        return (
            f"job {req.job_name!r} for project {req.project_shortname!r}: policy {req.policy}, "
            f"{len(req.locations)} location(s), {len(req.tasks)} task(s), "
            f"{len(job.data_inputs)} input(s), {len(job.data_outputs)} output(s)"
        )

    @flow(name="lexis-prefect-self-check", description="Validates a SingleHPCJob as a Prefect flow parameter.")
    def self_check(job1: SingleHPCJob) -> str:
        summary = summarise(job1)
        create_markdown_artifact(f"# lexis-prefect self-check\n\n{summary}\n", key="lexis-self-check")
        return summary

    return self_check


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
