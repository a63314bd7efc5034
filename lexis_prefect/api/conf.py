"""A DAG run's `conf`, checked as Airflow checks it against the DAG's params, then made parameters.

Airflow 2.10 validates each param with `jsonschema.validate(value, schema, FormatChecker())` and
refuses a run with 400 and the detail `Invalid input for param <name>: <jsonschema's message>`
(`airflow/models/param.py`, `Param.resolve` and `ParamsDict.validate`; `post_dag_run` turns the
`ParamValidationError` into `BadRequest(detail=str(ve))`). Here the schema is the deployment's
parameter schema, which for a DAG file is the DAG's params (the shim's `DAG._signature`).

The access token (a secret parameter) never travels on: `conf["access_token"]`, or the caller's
bearer token when conf has none, becomes a Secret block of its own (see `secrets.py`).
"""

from __future__ import annotations

from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

from lexis_prefect.api.dags import DagEntry, is_secret_parameter
from lexis_prefect.api.errors import Problem

__all__ = ["check_conf", "secret_parameters"]


def secret_parameters(entry: DagEntry) -> list[str]:
    return [name for name, prop in (entry.schema.get("properties") or {}).items() if is_secret_parameter(prop)]


def _invalid(name: str, message: str) -> Problem:
    return Problem(400, f"Invalid input for param {name}: {message}")


def check_conf(entry: DagEntry, conf: Any) -> dict[str, Any]:
    """The parameters of the run (secret ones left out), or a 400 naming the first bad param."""
    if not isinstance(conf, dict):
        raise Problem(400, "{'conf': ['Not a valid mapping type.']}")
    schema = entry.schema
    properties = schema.get("properties") or {}
    secrets = set(secret_parameters(entry))
    definitions = schema.get("definitions") or schema.get("$defs") or {}
    unknown = sorted(set(conf) - set(properties))
    if unknown:
        raise _invalid(unknown[0], f"not a param of DAG {entry.dag_id} (its params: {', '.join(sorted(properties))})")
    defaults = entry.deployment.parameters or {}
    parameters = {}
    for name, prop in properties.items():
        if name in secrets:
            if name in conf and not isinstance(conf[name], str):
                raise _invalid(name, "the access token must be a string")
            continue
        if name not in conf:
            if name not in defaults and "default" not in prop and name in (schema.get("required") or []):
                raise _invalid(name, "No value passed and Param has no default value")
            continue
        value = conf[name]
        full = {**{k: v for k, v in prop.items() if k != "position"}, "definitions": definitions, "$defs": definitions}
        error = jsonschema.exceptions.best_match(Draft202012Validator(full, format_checker=FormatChecker()).iter_errors(value))
        if error is not None:
            raise _invalid(name, str(error))
        parameters[name] = value
    return parameters
