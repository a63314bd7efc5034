"""Async client of the LEXIS AAI (Keycloak OIDC token endpoint)."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from lexis_prefect._http import ServiceClient
from lexis_prefect.config import DEFAULT_TIMEOUT, RetryPolicy
from lexis_prefect.models.aai import PasswordGrant, RefreshGrant, TokenExchangeGrant, TokenGrant, TokenSet

__all__ = ["AAIClient"]


class AAIClient(ServiceClient):
    """Obtains and refreshes LEXIS tokens.

    Args:
        realm_url: the realm's issuer URL, e.g. `https://aai.lexis.tech/auth/realms/LEXIS_AAI`
            (Keycloak >= 17 drops the `/auth` prefix, so it is part of the URL, not assumed).
        client_id, client_secret: the OIDC client tokens are issued to; a public
            client has no secret.

    Token grants are retried like idempotent calls: each one only mints a new
    token, and a lost answer is best repaired by asking again.
    """

    service = "aai"

    def __init__(
        self,
        realm_url: str,
        client_id: str,
        client_secret: SecretStr | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(realm_url, timeout=timeout, retry=retry, transport=transport)
        self.client_id = client_id
        self._client_secret = client_secret

    async def password_grant(self, username: str, password: SecretStr, *, offline_access: bool = False) -> TokenSet:
        """Log in with a user name and password (the sandbox's demo user; older Py4Lexis)."""
        scope = "openid offline_access" if offline_access else "openid"
        return await self._grant(
            PasswordGrant(**self._client(), username=username, password=password, scope=scope)
        )

    async def exchange_token(self, access_token: SecretStr, *, offline_access: bool = True) -> TokenSet:
        """Exchange a user's access token for a refreshable token of this client (RFC 8693).

        With `offline_access` the refresh token is an offline token: it outlives the
        user's session, which is what a job running for days needs.
        """
        scope = "offline_access" if offline_access else "openid"
        return await self._grant(TokenExchangeGrant(**self._client(), subject_token=access_token, scope=scope))

    async def refresh(self, token: TokenSet | SecretStr) -> TokenSet:
        """A fresh access token from a refresh token (or a `TokenSet` that has one)."""
        refresh_token = token.refresh_token if isinstance(token, TokenSet) else token
        if refresh_token is None:
            raise ValueError("this TokenSet has no refresh_token to refresh with")
        return await self._grant(RefreshGrant(**self._client(), refresh_token=refresh_token))

    def _client(self) -> dict[str, object]:
        return {"client_id": self.client_id, "client_secret": self._client_secret}

    async def _grant(self, grant: TokenGrant) -> TokenSet:
        form = grant.form()
        secrets = [form[k] for k in ("client_secret", "password", "subject_token", "refresh_token") if k in form]
        response = await self._request(
            "POST", "protocol/openid-connect/token", idempotent=True, data=form, secrets=secrets
        )
        return self._parse(response, TokenSet)
