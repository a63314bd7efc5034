"""The doctor's report: one `Check` row per step, and the report as a table or as JSON."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lexis_prefect.exceptions import LexisError

__all__ = ["Check", "Result", "describe", "failed", "ok", "render_table", "rows_json", "skipped"]

Result = Literal["ok", "failed", "skipped"]


class Check(BaseModel):
    """One row of the report: which step, how it went, what was seen, and what to change if it failed."""

    model_config = ConfigDict(frozen=True)

    check: str
    result: Result
    detail: str = ""
    fix: str = ""


def ok(check: str, detail: str = "") -> Check:
    return Check(check=check, result="ok", detail=detail)


def failed(check: str, detail: str, fix: str) -> Check:
    return Check(check=check, result="failed", detail=detail, fix=fix)


def skipped(check: str, why: str) -> Check:
    """A check that cannot run because one it depends on failed: saying which spares a wrong hunt."""
    return Check(check=check, result="skipped", detail=f"skipped: {why}")


def describe(exc: BaseException) -> str:
    """An error as one line for a row; the clients have scrubbed secrets from it already."""
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, LexisError) else f"{type(exc).__name__}: {text}"


def render_table(rows: list[Check]) -> str:
    """The rows as a plain-text table: check, result, then what was seen, and on failure how to fix it."""
    width = max((len(r.check) for r in rows), default=5)
    lines = [f"{'check':<{width}}  {'result':<7}  detail / how to fix"]
    for r in rows:
        lines.append(f"{r.check:<{width}}  {r.result:<7}  {' | '.join(r.detail.splitlines())}")
        if r.fix:
            lines.append(f"{'':<{width}}  {'':<7}  fix: {r.fix}")
    return "\n".join(lines)


def rows_json(rows: list[Check]) -> str:
    return json.dumps([r.model_dump() for r in rows], indent=2)

