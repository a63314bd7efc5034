"""What every route needs: the LEXIS credentials (read lazily), the token verifier, a Prefect client."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Depends, Request
from prefect.client.orchestration import PrefectClient, get_client

from lexis_prefect.api.auth import TokenVerifier, User, bearer_token

__all__ = ["ApiConfig", "ApiContext", "current_user", "prefect_client"]

#: The Prefect API answers at most this many objects a call; longer lists are read page by page.
PAGE = 200


@dataclass
class ApiConfig:
    """How the API face is set up.

    credentials_block: the LexisCredentials block (None: `LEXIS_CREDENTIALS_BLOCK`, else the
        `LEXIS_*` environment, as `resolve_credentials` does).
    token_cache_seconds: how long a token check is reused.
    aai_transport: an httpx transport for every AAI call (tests: the sandbox app in process).
    credentials: given credentials instead of a block (tests).
    """

    credentials_block: str | None = None
    token_cache_seconds: float = 60.0
    aai_transport: httpx.AsyncBaseTransport | None = None
    credentials: Any = None


@dataclass
class ApiContext:
    config: ApiConfig
    verifier: TokenVerifier = field(init=False)
    _credentials: Any = field(default=None, init=False)
    _read_at: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.verifier = TokenVerifier(
            self.aai_url, ttl=self.config.token_cache_seconds, transport=self.config.aai_transport
        )

    async def credentials(self) -> Any:
        """The LexisCredentials, read again at most once a minute (a re-saved block is picked up)."""
        if self.config.credentials is not None:
            return self.config.credentials
        if self._credentials is None or time.monotonic() - self._read_at > 60:

            from lexis_prefect.blocks import LexisCredentials

            name = self.config.credentials_block or os.environ.get("LEXIS_CREDENTIALS_BLOCK")
            self._credentials = await LexisCredentials.load(name) if name else LexisCredentials.from_env()
            self._read_at = time.monotonic()
        return self._credentials

    async def aai_url(self) -> str:
        return (await self.credentials()).endpoints.aai_url


def context_of(request: Request) -> ApiContext:
    return request.app.state.lexis


async def current_user(request: Request) -> User:
    """The caller, from its bearer token (401 without a valid one)."""
    token = bearer_token(request.headers.get("authorization"))
    return await context_of(request).verifier.verify(token)


async def prefect_client() -> AsyncIterator[PrefectClient]:
    async with get_client() as client:
        yield client


Caller = Depends(current_user)
Client = Depends(prefect_client)


async def read_all(fetch: Callable[[int, int], Awaitable[list[Any]]]) -> list[Any]:
    """Every object of a paged Prefect read: `fetch(limit, offset)` until a short page."""
    found: list[Any] = []
    while True:
        page = await fetch(PAGE, len(found))
        found += page
        if len(page) < PAGE:
            return found
