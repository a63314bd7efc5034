"""Fault injection and the request log, as ASGI middleware around the emulated APIs.

Faults hit before or after the request is handled, at random: "after" means the
work was done and only the answer is lost (a job created, a 503 returned), which
is exactly what a client's idempotence must survive. State is never corrupted:
a fault either prevents a request or hides its answer.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import random
import time
from typing import Any

from lexis_prefect.sandbox.config import FaultConfig
from lexis_prefect.sandbox.errors import service_error

__all__ = ["FaultInjector", "FaultPlan", "RequestLog"]

logger = logging.getLogger("lexis_prefect.sandbox")

Scope = dict[str, Any]


class FaultPlan:
    """Which faults to inject, and how many were; the control API reconfigures it at run time."""

    def __init__(self, faults: FaultConfig) -> None:
        self.injected = 0
        self.configure(faults)

    def configure(self, faults: FaultConfig) -> None:
        self.faults = faults
        self.random = random.Random(faults.seed)

    def applies(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_sandbox"):
            return False
        return not self.faults.paths or any(fnmatch.fnmatch(path, pattern) for pattern in self.faults.paths)

    def pick(self) -> str | None:
        roll = self.random.random()
        for kind, rate in (
            ("drop", self.faults.drop_rate),
            ("error", self.faults.error_rate),
            ("rate_limit", self.faults.rate_limit_rate),
        ):
            if roll < rate:
                return kind
            roll -= rate
        return None


class FaultInjector:
    """ASGI middleware: 5xx answers, cut connections, 429s and latency, per the `FaultPlan`."""

    def __init__(self, app: Any, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        plan = self.plan
        if not plan.applies(scope):
            await self.app(scope, receive, send)
            return
        if plan.faults.latency_seconds:
            await asyncio.sleep(plan.faults.latency_seconds)
        kind = plan.pick()
        if kind is None:
            await self.app(scope, receive, send)
            return
        plan.injected += 1
        # A 429 is refused before any work, as rate limiters do; the others strike
        # before or after the work, at random.
        if kind != "rate_limit" and plan.random.random() < 0.5:
            await self.app(scope, receive, _swallow)
        logger.info("sandbox fault: %s on %s %s", kind, scope["method"], scope["path"])
        if kind == "drop":
            await _cut(send)
        elif kind == "error":
            await _answer(send, plan.random.choice((502, 503, 504)), scope["path"])
        else:
            await _answer(send, 429, scope["path"], retry_after=plan.faults.retry_after_seconds)


async def _swallow(message: Any) -> None:
    """An ASGI `send` that drops the real answer (the fault replaces it)."""


async def _cut(send: Any) -> None:
    # Promise a body, then end the response without it: uvicorn closes the
    # connection and the client sees the peer go away mid-answer.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _answer(send: Any, status: int, path: str, retry_after: int | None = None) -> None:
    message = "Service Unavailable (injected by the sandbox)" if status != 429 else "Too Many Requests (injected by the sandbox)"
    body = json.dumps(service_error(status, path, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLog:
    """Logs method, path (never the query string: HEAppE puts session codes there), status, latency."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def recording_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            logger.info("%s %s %s %.1f ms", scope["method"], scope["path"], status or "-", elapsed)
