"""Every error lexis-prefect raises, grouped by what the caller can do about it.

```
LexisError                      base of everything below
├── ConfigurationError          an endpoint or credential is missing or malformed
├── LexisTransportError         no HTTP response at all (connect error, timeout, dropped)
├── LexisAPIError               an HTTP response with an error status; `.status`, `.body`
│   ├── AuthenticationError     401/403, or a refused OIDC grant (invalid_grant/invalid_client)
│   └── NotFoundError           404 (HEAppE also answers 404 to input it rejects)
├── StagingFailedError          a DDI staging request ended in `Task Failed, reason: ...`
├── StagingTimeoutError         a staging request was still unfinished when the wait gave up
├── NoLocationError             no location of the job could take it (each reason listed)
└── HpcJobError                 the HPC job did not finish well; `.job_id`, `.state`, `.stderr_tail`
    ├── HpcJobFailedError       it ended Failed (non-zero exit, walltime)
    └── HpcJobCancelledError    it ended Canceled (or was deleted)

JobValidationError              a SingleHPCJob that does not validate; a
                                pydantic ValidationError whose lines read
                                `requirements.tasks[0].walltime_limit: ...`
```

Messages never contain a token, a password or a session code: the clients scrub
every secret they sent from response excerpts, and URLs are quoted without their
query string (HEAppE puts the session code there).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "HpcJobCancelledError",
    "HpcJobError",
    "HpcJobFailedError",
    "JobValidationError",
    "LexisAPIError",
    "LexisError",
    "LexisTransportError",
    "NoLocationError",
    "NotFoundError",
    "StagingFailedError",
    "StagingTimeoutError",
]


class LexisError(Exception):
    """Base class of every lexis-prefect error."""


class ConfigurationError(LexisError):
    """An endpoint or credential is missing or malformed; the message names where to set it."""


class LexisTransportError(LexisError):
    """The request got no HTTP response (connection refused or dropped, timeout).

    `sent` is False when the request provably never reached the server (the
    connection could not be opened), which makes even a non-idempotent call safe
    to repeat.
    """

    def __init__(self, message: str, *, service: str, method: str, path: str, sent: bool) -> None:
        super().__init__(message)
        self.service = service
        self.method = method
        self.path = path
        self.sent = sent


class LexisAPIError(LexisError):
    """The service answered with an error status.

    Attributes:
        service: `aai`, `ddi` or `heappe`.
        method, path: the request, without query string.
        status: the HTTP status code.
        body: an excerpt of the response body (at most 500 characters, secrets scrubbed).
        retry_after: seconds from a `Retry-After` header, if the server sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        service: str,
        method: str,
        path: str,
        status: int,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        self.retry_after = retry_after


class AuthenticationError(LexisAPIError):
    """Credentials were refused: expired or revoked token, wrong client, invalid session code."""


class NotFoundError(LexisAPIError):
    """The object does not exist. HEAppE also uses 404 for rejected input ("Validation Problem")."""


class StagingFailedError(LexisError):
    """A DDI staging request finished with `Task Failed, reason: <reason>`."""

    def __init__(self, request_id: str, reason: str) -> None:
        super().__init__(f"staging request {request_id} failed: {reason}")
        self.request_id = request_id
        self.reason = reason


class StagingTimeoutError(LexisError, TimeoutError):
    """Waiting for a DDI staging request took longer than the poll policy allows.

    The request itself may still complete: its id is kept so it can be awaited again.
    """

    def __init__(self, request_id: str, waited_seconds: float, last_status: str) -> None:
        super().__init__(
            f"staging request {request_id} unfinished after {waited_seconds:.0f} s (last status: {last_status})"
        )
        self.request_id = request_id
        self.last_status = last_status


class NoLocationError(LexisError):
    """None of the job's locations could take it; `reasons` maps each tried location to why."""

    def __init__(self, policy: str, reasons: dict[str, str]) -> None:
        tried = "; ".join(f"{location}: {reason}" for location, reason in reasons.items())
        super().__init__(f"no location could take the job (policy {policy}): {tried}")
        self.policy = policy
        self.reasons = reasons


class HpcJobError(LexisError):
    """The HPC job ended in a state other than Finished."""

    def __init__(self, job_id: int, location: str, state: str, reason: str | None, stderr_tail: str) -> None:
        detail = f": {reason}" if reason else ""
        tail = f"\n--- end of stderr ---\n{stderr_tail}" if stderr_tail else " (stderr was empty)"
        super().__init__(f"HPC job {job_id} at {location} ended {state}{detail}{tail}")
        self.job_id = job_id
        self.location = location
        self.state = state
        self.stderr_tail = stderr_tail


class HpcJobFailedError(HpcJobError):
    """The job ended Failed: its command exited non-zero, or it ran out of walltime."""


class HpcJobCancelledError(HpcJobError):
    """The job ended Canceled or Deleted before it finished."""


class JobValidationError(ValidationError):
    """A `SingleHPCJob` that does not validate.

    It is a pydantic `ValidationError` (so `except ValidationError` and
    `.errors()` work as usual) whose locations use index brackets and whose
    message puts one `path: problem` per line, e.g.
    `requirements.tasks[0].walltime_limit: Input should be greater than 0`.
    """

    def __str__(self) -> str:
        lines = [f"{self.error_count()} invalid field(s) in {self.title}:"]
        for error in self.errors(include_url=False):
            path = ".".join(str(part) for part in error["loc"]) or "(root)"
            lines.append(f"  {path}: {error['msg']}{_shown_input(error)}")
        return "\n".join(lines)

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> JobValidationError:
        """Re-label a pydantic error with bracketed indices (`tasks[0]` instead of `tasks.0`)."""
        details: list[Any] = [
            {"type": e["type"], "loc": _bracketed(e["loc"]), "input": e["input"], **_ctx(e)}
            for e in exc.errors(include_url=False)
        ]
        return cls.from_exception_data(exc.title, details)


def _bracketed(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int) and parts:
            parts[-1] = f"{parts[-1]}[{part}]"
        else:
            parts.append(str(part))
    return tuple(parts)


def _ctx(error: Any) -> dict[str, Any]:
    return {"ctx": error["ctx"]} if "ctx" in error else {}


def _shown_input(error: Any) -> str:
    if error["type"] in ("missing", "extra_forbidden", "value_error"):
        return ""
    shown = repr(error["input"])
    return f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
