"""What the three LEXIS clients share: one httpx client each, retries, error mapping, scrubbing.

The clients differ only in their endpoints and payloads; how a call is sent,
when it is repeated and how a bad answer becomes a `LexisError` is decided here
once, so the three cannot drift apart.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

import httpx
from pydantic import SecretStr, TypeAdapter, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from lexis_prefect.config import DEFAULT_TIMEOUT, RetryPolicy
from lexis_prefect.models.validation import summarize
from lexis_prefect.exceptions import (
    AuthenticationError,
    LexisAPIError,
    LexisTransportError,
    NotFoundError,
)

logger = logging.getLogger("lexis_prefect.http")

Service = Literal["aai", "ddi", "heappe"]

#: A bearer token, or an async callable giving the current one (e.g. a token keeper).
TokenSource = SecretStr | Callable[[], Awaitable[SecretStr]]

_BODY_EXCERPT = 500
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_QUERY_SECRET = re.compile(r"((?:sessionCode|access_token|refresh_token|code)=)[^&\s\"']+", re.IGNORECASE)
_OIDC_AUTH_ERRORS = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_token"}


async def current_token(source: TokenSource) -> SecretStr:
    """The token a `TokenSource` holds now."""
    return source if isinstance(source, SecretStr) else await source()


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret, JWT and secret-bearing query value replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _QUERY_SECRET.sub(r"\1***", _JWT.sub("***", text))


class _ScrubQueryFilter(logging.Filter):
    """httpx logs each request's full URL at INFO; HEAppE puts the session code in the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(str(record.msg))
        if record.args:
            record.args = tuple(scrub(a) if isinstance(a, str) else _scrub_url(a) for a in record.args)
        return True


def _scrub_url(value: Any) -> Any:
    return scrub(str(value)) if isinstance(value, httpx.URL) else value


if not any(isinstance(f, _ScrubQueryFilter) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_ScrubQueryFilter())


class BearerAuth(httpx.Auth):
    """Sends `Authorization: Bearer <token>` from a `TokenSource`.

    On a 401 it asks the source once more; if the source now has a different
    token (a keeper refreshed it meanwhile), the request is sent again. A 401
    means the request was not processed, so this is safe even for a create.
    """

    def __init__(self, source: TokenSource) -> None:
        self._source = source
        # The last few tokens sent, so that error texts can be scrubbed of them
        # even when they are opaque strings rather than JWTs.
        self.recent: deque[str] = deque(maxlen=4)

    async def _bearer(self, request: httpx.Request) -> str:
        token = (await current_token(self._source)).get_secret_value()
        if token not in self.recent:
            self.recent.append(token)
        request.headers["Authorization"] = f"Bearer {token}"
        return token

    async def async_auth_flow(self, request: httpx.Request):  # type: ignore[override]
        token = await self._bearer(request)
        response = yield request
        if response.status_code == 401 and not isinstance(self._source, SecretStr):
            if await self._bearer(request) != token:
                yield request

    def sync_auth_flow(self, request: httpx.Request):  # pragma: no cover - the library is async only
        raise RuntimeError("lexis-prefect clients are async; use httpx.AsyncClient")


@functools.cache
def _tls_context() -> Any:
    """httpx's default TLS context, built once: building it costs ~25 ms of CPU on the event loop,
    and every task opens its own client (bench/fanout.py: over half the flow process's CPU at N=100)."""
    return httpx.create_ssl_context()


class ServiceClient:
    """Base of `AAIClient`, `DDIStagingClient` and `HEAppEClient`: one `httpx.AsyncClient` each.

    Use as `async with Client(...) as client:`, or call `aclose()` yourself.
    """

    service: Service

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{self.service} base_url must be an http(s) URL, got {base_url!r}")
        self.retry = retry or RetryPolicy()
        self._auth = auth
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            timeout=timeout,
            verify=_tls_context(),
            transport=transport,
            auth=auth,
            headers={"Accept": "application/json"},
        )

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _secrets(self) -> list[str]:
        """Secret strings this client may have sent; scrubbed from every error text."""
        return list(self._auth.recent) if isinstance(self._auth, BearerAuth) else []

    async def _request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json: Any = None,
        data: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        secrets: Iterable[str] = (),
    ) -> httpx.Response:
        """Send one call, retried per `self.retry`; returns a 2xx response or raises a `LexisError`.

        `secrets` are values in this request (besides the client's own) that must
        never appear in an error message. `json` may be an async callable, to build
        the body anew for each attempt (one that carries a token that may expire meanwhile).
        """
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: self._should_retry(exc, idempotent)),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                body = await json() if callable(json) else json
                response = await self._send(method, path, list(secrets), json=body, data=data, params=params)
        return response

    async def _send(self, method: str, path: str, secrets: list[str], **kwargs: Any) -> httpx.Response:
        shown = self._http.base_url.join(path.lstrip("/")).path
        try:
            response = await self._http.request(method, path.lstrip("/"), **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise self._transport_error(method, shown, exc, [*self._secrets(), *secrets], sent=False) from None
        except httpx.TransportError as exc:
            raise self._transport_error(method, shown, exc, [*self._secrets(), *secrets], sent=True) from None
        if response.is_success:
            return response
        await response.aread()
        # The client's secrets are read only now: the bearer token is known once sent.
        raise self._status_error(response, [*self._secrets(), *secrets])

    def _parse(self, response: httpx.Response, type_: Any) -> Any:
        """The response body as `type_` (a model or e.g. `list[Model]`), parsed once, here."""
        try:
            return _adapter(type_).validate_json(response.content)
        except ValidationError as exc:
            raise LexisAPIError(
                f"{self.service} {response.request.method} {response.request.url.path}: "
                f"unexpected response ({summarize(exc)[:300]})",
                service=self.service,
                method=response.request.method,
                path=response.request.url.path,
                status=response.status_code,
            ) from None

    def _transport_error(
        self, method: str, path: str, exc: Exception, hidden: list[str], *, sent: bool
    ) -> LexisTransportError:
        reason = scrub(f"{type(exc).__name__}: {exc}", hidden)
        return LexisTransportError(
            f"{self.service} {method} {path}: no response ({reason})",
            service=self.service,
            method=method,
            path=path,
            sent=sent,
        )

    def _status_error(self, response: httpx.Response, hidden: list[str]) -> LexisAPIError:
        # Scrub before cutting, so a secret straddling the cut cannot survive half-masked.
        body = scrub(response.text, hidden)[:_BODY_EXCERPT]
        payload = _json_or_none(response)
        detail = scrub(_detail(payload), hidden)[:300] if payload is not None else body[:300]
        method, path = response.request.method, response.request.url.path
        status = response.status_code
        error_class: type[LexisAPIError] = LexisAPIError
        if status in (401, 403) or (isinstance(payload, dict) and payload.get("error") in _OIDC_AUTH_ERRORS):
            error_class = AuthenticationError
        elif status == 404:
            error_class = NotFoundError
        return error_class(
            f"{self.service} {method} {path} -> {status} {response.reason_phrase}: {detail}".rstrip(": "),
            service=self.service,
            method=method,
            path=path,
            status=status,
            body=body,
            retry_after=_retry_after(response),
        )

    def _should_retry(self, exc: BaseException, idempotent: bool) -> bool:
        if isinstance(exc, LexisTransportError):
            return idempotent or not exc.sent
        if isinstance(exc, LexisAPIError) and exc.status in self.retry.statuses:
            if exc.retry_after is not None and exc.retry_after > self.retry.max_retry_after_seconds:
                return False
            return idempotent or exc.status == 429
        return False

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, LexisAPIError) and exc.retry_after is not None:
            return exc.retry_after
        return self.retry.backoff(state.attempt_number)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.warning(
            "%s: attempt %d/%d failed (%s); retrying in %.1f s",
            self.service,
            state.attempt_number,
            self.retry.attempts,
            exc,
            state.upcoming_sleep,
        )


@functools.lru_cache(maxsize=64)
def _adapter(type_: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(payload: Any) -> str:
    """The human part of an error body: DDI `errorString`, HEAppE ProblemDetails, OIDC `error`.

    Never cut here: the caller scrubs secrets first, then cuts.
    """
    if isinstance(payload, str):
        return payload
    if not isinstance(payload, dict):
        return str(payload)
    if "errorString" in payload:
        return str(payload["errorString"])
    if "title" in payload or "detail" in payload:
        return " - ".join(str(payload[k]) for k in ("title", "detail") if payload.get(k))
    if "error" in payload:
        return " - ".join(str(payload[k]) for k in ("error", "error_description") if payload.get(k))
    return str(payload)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


__all__ = ["BearerAuth", "ServiceClient", "TokenSource", "current_token", "scrub"]
