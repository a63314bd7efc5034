"""What the sandbox's two DDI APIs (staging, dataset search) share on the wire.

Their error answers (`DDIProblem`, and Django's bare 500 page), the bearer-token check as each API
words its refusals, the JSON body, and the `handler` that turns a view's `(status, body)` or its
error into a response.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse

from lexis_prefect.sandbox.aai import AAIState

__all__ = ["DDIProblem", "DJANGO_500", "ServerError", "bearer_user", "handler", "json_body"]

#: Django's answer when a view returns None (DEBUG off): DDI views.py `delete_copy` on anything but DELETE.
DJANGO_500 = "<h1>Server Error (500)</h1>"


class DDIProblem(Exception):
    """An error answer: staging API `{"status": "<code>", "errorString": "..."}` (DDI staging/staging/errors.py),
    or the dataset API's `{"errorString": "..."}` (DDI irodsapi/demo/utils.py)."""

    def __init__(self, status: int, error: str, *, with_status: bool = True) -> None:
        super().__init__(error)
        self.status, self.error, self.with_status = status, error, with_status

    def response(self) -> JSONResponse:
        body = {"status": str(self.status), "errorString": self.error} if self.with_status else {"errorString": self.error}
        return JSONResponse(body, status_code=self.status)


class ServerError(Exception):
    """An uncaught exception in the real Django view: a bare 500 page."""


def bearer_user(aai: AAIState, request: Request, *, stage: bool = False, dataset: bool = False) -> str:
    """The bearer token's user, refused as each API refuses it.

    Staging `/stage` (DDI views.py `stage`): `request.headers.get('Authorization').split(" ")[1]`
    inside `except Exception` -> a 400 naming the Python error; `/delete`: 401 "No Authorization
    header or wrong format". Dataset API (DDI irodsapi/demo/utils.py `DecodeToken`): 401
    `{"errorString": "Invalid Authorization"}`. A rejected token: 401 "Inactive token"
    (staging/staging/utils.py `getDDIAttributes`).
    """
    header = request.headers.get("authorization")
    parts = header.split(" ") if header is not None else None
    if parts is None or len(parts) < 2:
        if dataset:
            raise DDIProblem(401, "Invalid Authorization", with_status=False)
        if stage:
            reason = "'NoneType' object has no attribute 'split'" if parts is None else "list index out of range"
            raise DDIProblem(400, f"Malformed request. {reason}")
        raise DDIProblem(401, "No Authorization header or wrong format")
    claims = aai.verify_access(parts[1].strip())
    if claims is None:
        raise DDIProblem(401, "Inactive token", with_status=not dataset)
    return claims["preferred_username"]


def handler(fn: Any) -> Any:
    """A decorator: `DDIProblem`s in the API's shape, `ServerError` as Django's 500 page."""

    async def wrapped(request: Request) -> Any:
        try:
            status, body = await fn(request, **request.path_params)
            return JSONResponse(body, status_code=status)
        except DDIProblem as problem:
            return problem.response()
        except ServerError:
            return HTMLResponse(DJANGO_500, status_code=500)

    wrapped.__name__ = fn.__name__
    return wrapped


async def json_body(request: Request, *, dataset: bool = False) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        # DDI errors.py / irodsapi utils.py `MalformedRequest("Invalid JSON")`.
        raise DDIProblem(400, "Malformed request. Invalid JSON", with_status=not dataset) from None

