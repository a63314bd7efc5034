"""Running an example flow from the command line: on the sandbox by default, on LEXIS when configured.

Used by the scripts in `flows/` (`python flows/<name>.py`); it sits beside the
CLI, outside the core, because it may start the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from pydantic import SecretStr, TypeAdapter

from lexis_prefect.blocks import resolve_credentials
from lexis_prefect.exceptions import ConfigurationError, LexisError

__all__ = ["main", "sandbox_when_unconfigured"]

Run = Callable[[SecretStr], Awaitable[Any]]


def main(run: Run) -> int:
    """Run `run(access_token)` and print its result; returns the process exit status.

    With no LEXIS configuration it starts the sandbox, points `LEXIS_*` at it for
    this process and logs in as the sandbox's demo user. With configuration it
    takes the user's access token from `LEXIS_ACCESS_TOKEN`.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        resolve_credentials()
    except ConfigurationError:
        return _on_sandbox(run)
    token = os.environ.get("LEXIS_ACCESS_TOKEN")
    if not token:
        print("LEXIS is configured: put the user's access token in LEXIS_ACCESS_TOKEN", file=sys.stderr)
        return 2
    return _report(run, SecretStr(token), None)


@contextlib.contextmanager
def _on_a_sandbox() -> Iterator[Any]:
    """A fresh sandbox, ``LEXIS_*`` pointing at it until the block ends."""
    from lexis_prefect.sandbox import SandboxProcess

    saved = dict(os.environ)
    with SandboxProcess() as sandbox:
        os.environ.update(sandbox.environment())
        print(f"no LEXIS configuration: running against the LEXIS sandbox at {sandbox.url}")
        try:
            yield sandbox
        finally:
            os.environ.clear()
            os.environ.update(saved)


@contextlib.contextmanager
def sandbox_when_unconfigured(conf: dict[str, Any], token_param: str = "access_token") -> Iterator[None]:
    """Around a run of a LEXIS Airflow DAG (``dag.test()``): with no LEXIS configuration, run it on a
    fresh sandbox, ``LEXIS_*`` pointing at it for the run, and, unless ``conf`` holds a token, as the
    sandbox's demo user. With a configuration it changes nothing."""
    try:
        resolve_credentials()
    except ConfigurationError:
        pass
    else:
        yield
        return
    with _on_a_sandbox() as sandbox:
        if not conf.get(token_param):
            conf[token_param] = sandbox.demo_token().get_secret_value()
        yield


def _on_sandbox(run: Run) -> int:
    with _on_a_sandbox() as sandbox:
        return _report(run, sandbox.demo_token(), sandbox)


def _report(run: Run, token: SecretStr, sandbox: Any) -> int:
    try:
        result = asyncio.run(run(token))
    except LexisError as exc:
        print(f"the workflow failed: {exc}", file=sys.stderr)
        return 1
    print(TypeAdapter(Any).dump_json(result, indent=2).decode())
    for dataset_id in _dataset_ids(result):
        where = f": {', '.join(sorted(sandbox.dataset_files(dataset_id)))}" if sandbox else ""
        print(f"output dataset {dataset_id}{where}")
    return 0


def _dataset_ids(result: Any) -> list[str]:
    if isinstance(result, (list, tuple)):
        return [i for item in result for i in _dataset_ids(item)]
    if isinstance(result, dict):
        return [i for item in result.values() for i in _dataset_ids(item)]
    return list(getattr(result, "output_dataset_ids", []))
