"""Airflow's error bodies: RFC 7807 problems, as Airflow 2.10's REST API answers them.

Source: apache-airflow 2.10.5, `airflow/api_connexion/exceptions.py` (the `type` links and titles)
and connexion's `problem()` (the four members `type`, `title`, `detail`, `status`; media type
`application/problem+json`). A body here never holds a token: details are built from ids, names
and validation messages only, and unexpected errors answer a fixed text (the cause goes to the log,
without request headers).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["Problem", "install_error_handlers"]

#: Airflow's `get_docs_url("stable-rest-api-ref.html")` for the version whose API is served.
DOCS = "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html"
LINKS = {
    400: f"{DOCS}#section/Errors/BadRequest",
    401: f"{DOCS}#section/Errors/Unauthenticated",
    403: f"{DOCS}#section/Errors/PermissionDenied",
    404: f"{DOCS}#section/Errors/NotFound",
    405: f"{DOCS}#section/Errors/MethodNotAllowed",
    409: f"{DOCS}#section/Errors/AlreadyExists",
    500: f"{DOCS}#section/Errors/Unknown",
}
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

log = logging.getLogger("lexis_prefect.api")


class Problem(Exception):
    """An error answer: raise it from a route; the handler turns it into Airflow's body."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        ext: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title or TITLES.get(status, ""))
        self.status, self.detail, self.headers, self.ext = status, detail, headers, ext or {}
        self.title = title or TITLES.get(status, "Error")

    def body(self) -> dict[str, Any]:
        """connexion's problem(): the four members, then any extension members (`ext`)."""
        body = {"detail": self.detail, "status": self.status, "title": self.title, "type": LINKS.get(self.status, "about:blank")}
        return {**body, **self.ext}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers, media_type="application/problem+json")


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app answers, in Airflow's shape."""

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # connexion answers a request that breaks the OpenAPI spec (a bad query parameter, a body
        # that is not an object) with 400 and the validator's message; `type` stays about:blank.
        messages = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
            messages.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        body = {"detail": "; ".join(messages), "status": 400, "title": "Bad Request", "type": "about:blank"}
        return JSONResponse(body, status_code=400, media_type="application/problem+json")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown paths and methods, worded as werkzeug words them in Airflow's answers.
        details = {
            404: "The requested URL was not found on the server. If you entered the URL manually please check your "
            "spelling and try again.",
            405: "The method is not allowed for the requested URL.",
        }
        status = exc.status_code
        body = {
            "detail": details.get(status, str(exc.detail)),
            "status": status,
            "title": TITLES.get(status, "Error"),
            "type": "about:blank",
        }
        return JSONResponse(body, status_code=status, media_type="application/problem+json")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The type only: an exception's text may quote what it was given.
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return Problem(500, "An unexpected error occurred; see the API server's log.").response()
