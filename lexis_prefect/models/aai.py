"""LEXIS AAI (Keycloak OIDC) payloads: token grants and the `TokenSet` they return."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "OIDCError",
    "PasswordGrant",
    "RefreshGrant",
    "TokenExchangeGrant",
    "TokenGrant",
    "TokenSet",
    "is_offline_token",
    "jwt_claims",
    "token_username",
]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Grant(BaseModel):
    """A form-encoded request to the token endpoint."""

    # hide_input_in_errors: a validation error must not echo a password or token.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    grant_type: ClassVar[str]
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None

    def form(self) -> dict[str, str]:
        """The form fields, secrets in clear: only ever handed to httpx."""
        fields = {"grant_type": self.grant_type}
        for name, value in self:
            if value is None:
                continue
            fields[name] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return fields


class PasswordGrant(_Grant):
    """Resource-owner password grant (used by older Py4Lexis and by the sandbox's demo user)."""

    grant_type: ClassVar[str] = "password"
    username: str = Field(min_length=1)
    password: SecretStr
    scope: str = "openid"


class RefreshGrant(_Grant):
    """Trade a refresh (or offline) token for a new access token; Keycloak rotates the refresh token too."""

    grant_type: ClassVar[str] = "refresh_token"
    refresh_token: SecretStr


class TokenExchangeGrant(_Grant):
    """RFC 8693 token exchange, as the LEXIS orchestrator does it: a user's access token in,
    a refreshable (with `scope=offline_access`, an offline) token for this client out."""

    grant_type: ClassVar[str] = TOKEN_EXCHANGE
    subject_token: SecretStr
    subject_token_type: str = ACCESS_TOKEN_TYPE
    requested_token_type: str = REFRESH_TOKEN_TYPE
    scope: str = "offline_access"


class TokenSet(BaseModel):
    """The token endpoint's answer, stamped with the time it was received.

    `refresh_expires_in == 0` is Keycloak's way of saying the refresh token does
    not expire on a timer (offline tokens). Unknown keys such as `id_token` are
    dropped rather than kept: kept, they would sit in clear text in `repr()`.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    access_token: SecretStr
    expires_in: int = Field(ge=0, description="Seconds the access token is valid from `issued_at`.")
    refresh_token: SecretStr | None = None
    refresh_expires_in: int = Field(default=0, ge=0, description="Seconds the refresh token is valid; 0 = no timer.")
    token_type: str = "Bearer"
    scope: str = ""
    issued_at: datetime = Field(default_factory=_utcnow)

    @property
    def expires_at(self) -> datetime:
        return self.issued_at + timedelta(seconds=self.expires_in)

    @property
    def refresh_expires_at(self) -> datetime | None:
        """When the refresh token expires; None if there is none or it has no timer."""
        if self.refresh_token is None or self.refresh_expires_in == 0:
            return None
        return self.issued_at + timedelta(seconds=self.refresh_expires_in)

    @property
    def is_offline(self) -> bool:
        return "offline_access" in self.scope.split()

    def expires_within(self, seconds: float, *, now: datetime | None = None) -> bool:
        """True if the access token is expired or will be within `seconds`."""
        return (now or _utcnow()) + timedelta(seconds=seconds) >= self.expires_at

    def can_refresh(self, *, now: datetime | None = None) -> bool:
        """True if the refresh token exists and has not expired."""
        if self.refresh_token is None:
            return False
        deadline = self.refresh_expires_at
        return deadline is None or (now or _utcnow()) < deadline

    @property
    def username(self) -> str | None:
        """`preferred_username` from the access token, which HEAppE's LEXIS login wants."""
        return token_username(self.access_token)


def jwt_claims(token: SecretStr) -> dict[str, Any]:
    """A JWT's claims, decoded *without* checking the signature.

    Good for display (`preferred_username`) and scheduling (`exp`); never for
    trust decisions. `{}` when the token is not a JWT.
    """
    parts = token.get_secret_value().split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def is_offline_token(token: SecretStr) -> bool:
    """Whether `token` is a Keycloak offline token (JWT claim `typ: Offline`), not an access token.

    [I] Keycloak marks its offline refresh tokens so; LEXIS's AAI is Keycloak. A deployment keeps
    one in a Secret block, because a user's access token expires long before a scheduled run.
    """
    return jwt_claims(token).get("typ") == "Offline"


def token_username(token: SecretStr) -> str | None:
    """The `preferred_username` claim of a JWT access token, if any."""
    name = jwt_claims(token).get("preferred_username")
    return name if isinstance(name, str) else None


class OIDCError(BaseModel):
    """Keycloak's error body: `{"error": "invalid_grant", "error_description": "..."}`."""

    model_config = ConfigDict(frozen=True, extra="allow")

    error: str
    error_description: str | None = None


TokenGrant = PasswordGrant | RefreshGrant | TokenExchangeGrant
