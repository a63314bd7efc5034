"""Who is calling: the LEXIS AAI bearer token of each request, checked at the AAI's userinfo endpoint.

Why userinfo and not a local signature check: Keycloak answers userinfo for every token it would
honour (signature, expiry, and a session that still lives: a logged-out token is refused, which a
signature check alone cannot see), whatever the realm's key type; python-keycloak's
`KeycloakOpenID.userinfo(token)` is the same GET with `Authorization: Bearer`. The sandbox AAI
serves it too (HS256 tokens, whose key is not published). The answer is cached per token (by its
SHA-256, never the token itself) for `ttl` seconds and never past the token's `exp`, so a burst of
calls costs one AAI round trip.

401 for a missing, malformed, invalid or expired token (a refused one with LEXIS's
`"errorString": "Inactive token"` too, on which Py4Lexis refreshes and retries); 503 when the AAI
cannot be asked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from pydantic import SecretStr

from lexis_prefect.api.errors import Problem

__all__ = ["TokenVerifier", "User", "bearer_token"]

USERINFO_PATH = "protocol/openid-connect/userinfo"
#: Entries kept at most; expired ones are dropped first.
CACHE_SIZE = 10_000


@dataclass(frozen=True)
class User:
    """An authenticated caller. `sub` is the AAI subject: what runs are owned by."""

    sub: str
    username: str | None
    token: SecretStr = field(repr=False)


def bearer_token(authorization: str | None) -> SecretStr:
    """The token of an `Authorization: Bearer <token>` header; 401 without one."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("A LEXIS AAI bearer token is required (Authorization: Bearer <token>)", sent=False)
    return SecretStr(token.strip())


#: LEXIS's services answer a rejected token with `{"errorString": "Inactive token"}` (docs/lexis-contract.md,
#: S12 and D2), and Py4Lexis's `LexisSession.handle_request_status` refreshes its token and retries the
#: call on exactly that: the 401 of a token that was sent but refused carries it as an extension member.
INACTIVE = {"errorString": "Inactive token"}


def unauthenticated(detail: str, *, sent: bool = True) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": "Bearer"}, ext=INACTIVE if sent else None)


def _expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, read without checking anything: only to bound how long it is cached."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) else None
    except (IndexError, ValueError, AttributeError):
        return None


class TokenVerifier:
    """Checks tokens at `<realm URL>/protocol/openid-connect/userinfo`.

    Args:
        realm_url: a coroutine function giving the AAI realm URL (the credentials are read lazily:
            the API may start before they are saved).
        ttl: seconds an answer is reused.
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        realm_url: Callable[[], Awaitable[str]],
        *,
        ttl: float = 60.0,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._realm_url, self._ttl, self._timeout, self._transport = realm_url, ttl, timeout, transport
        self._clock = clock
        self._cache: dict[str, tuple[User, float]] = {}
        self.calls = 0  # AAI round trips made (the cache's tests read it)

    async def verify(self, token: SecretStr) -> User:
        text = token.get_secret_value()
        key = hashlib.sha256(text.encode()).hexdigest()
        now = self._clock()
        cached = self._cache.get(key)
        if cached and cached[1] > now:
            return cached[0]
        exp = _expiry(text)
        if exp is not None and exp <= now:
            raise unauthenticated("The bearer token has expired")
        user = await self._userinfo(token)
        until = now + self._ttl if exp is None else min(now + self._ttl, exp)
        self._remember(key, user, until, now)
        return user

    async def _userinfo(self, token: SecretStr) -> User:
        url = f"{(await self._realm_url()).rstrip('/')}/{USERINFO_PATH}"
        self.calls += 1
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
                response = await client.get(url, headers={"Authorization": f"Bearer {token.get_secret_value()}"})
        except httpx.HTTPError as exc:
            raise Problem(503, f"The LEXIS AAI could not be reached to check the token ({type(exc).__name__})") from None
        if response.status_code in (400, 401, 403):
            raise unauthenticated("The bearer token is invalid or expired (refused by the LEXIS AAI)")
        if response.status_code != 200:
            raise Problem(503, f"The LEXIS AAI answered {response.status_code} to the token check")
        try:
            info = response.json()
            sub = info["sub"]
        except (ValueError, KeyError, TypeError):
            raise Problem(503, "The LEXIS AAI's userinfo answer has no subject") from None
        if not isinstance(sub, str) or not sub:
            raise Problem(503, "The LEXIS AAI's userinfo answer has no subject")
        return User(sub=sub, username=info.get("preferred_username"), token=token)

    def _remember(self, key: str, user: User, until: float, now: float) -> None:
        if len(self._cache) >= CACHE_SIZE:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            while len(self._cache) >= CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (user, until)
