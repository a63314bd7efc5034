"""One line per pydantic error, for error answers and messages on either side of the wire."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["summarize"]


def summarize(exc: ValidationError) -> str:
    """`loc: msg; loc: msg` without the offending input (it may hold a secret)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}" for e in exc.errors(include_input=False))
