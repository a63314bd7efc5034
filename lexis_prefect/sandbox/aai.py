"""Sandbox AAI: a Keycloak-shaped OIDC token endpoint issuing HS256 JWTs with short, configurable lives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from lexis_prefect.models.aai import ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE, TOKEN_EXCHANGE
from lexis_prefect.sandbox.config import SandboxConfig

__all__ = ["AAIState", "aai_router"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class OIDCProblem(Exception):
    """An OAuth error answer: `{"error": ..., "error_description": ...}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "error_description": self.description}, status_code=self.status)


class AAIState:
    """Signing key and refresh-token sessions; everything else is in the tokens themselves."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.key = secrets.token_bytes(32)
        # jti of a refresh token -> its session: user, client, offline, expiry (None = never)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.dirty = False

    # -- persistence ------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"key": self.key.hex(), "sessions": self.sessions}

    def load(self, data: dict[str, Any]) -> None:
        self.key = bytes.fromhex(data["key"])
        self.sessions = data["sessions"]

    # -- tokens -----------------------------------------------------------------------------

    def _sign(self, claims: dict[str, Any]) -> str:
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self.key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(signature)}"

    def _claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this sandbox signed and that has not expired; else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = hmac.new(self.key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                return None
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            return None
        exp = claims.get("exp")
        if exp is not None and exp <= time.time():
            return None
        return claims

    def verify_access(self, token: str) -> dict[str, Any] | None:
        """Claims of a valid, unexpired access token of a live session; None for anything else."""
        claims = self._claims(token)
        if not claims or claims.get("typ") != "Bearer":
            return None
        # Keycloak's userinfo and introspection also check the token's session ("sid"): after a
        # logout its access tokens are inactive. Tokens without "sid" predate that claim here.
        return claims if claims.get("sid", "") in self.sessions or "sid" not in claims else None

    def issue(self, user: str, client: str, scope: str) -> dict[str, Any]:
        """A token response for `user`, as Keycloak words it; offline if the scope asks for it."""
        now = int(time.time())
        offline = "offline_access" in scope.split()
        refresh_lifetime = None if offline else self.config.refresh_lifetime_seconds
        jti = str(uuid.uuid4())
        self.sessions[jti] = {
            "user": user,
            "client": client,
            "scope": scope,
            "expires_at": None if refresh_lifetime is None else now + refresh_lifetime,
        }
        self.dirty = True
        return self._answer(jti, now)

    def _answer(self, jti: str, now: int) -> dict[str, Any]:
        session = self.sessions[jti]
        base = {"iss": self.issuer, "sub": session["user"], "azp": session["client"], "iat": now}
        access = self._sign(
            {
                **base,
                "typ": "Bearer",
                "jti": str(uuid.uuid4()),
                "sid": jti,
                "exp": now + self.config.token_lifetime_seconds,
                "preferred_username": session["user"],
                "scope": session["scope"],
            }
        )
        offline = session["expires_at"] is None
        refresh_claims = {**base, "typ": "Offline" if offline else "Refresh", "sid": jti, "jti": str(uuid.uuid4())}
        if not offline:
            refresh_claims["exp"] = session["expires_at"]
        return {
            "access_token": access,
            "expires_in": self.config.token_lifetime_seconds,
            "refresh_token": self._sign(refresh_claims),
            "refresh_expires_in": 0 if offline else max(0, session["expires_at"] - now),
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": jti,
            "scope": session["scope"],
        }

    def _refresh_session(self, token: str, client: str) -> str:
        """The session id of a live refresh (or offline) token of `client`; an OAuth error otherwise."""
        claims = self._claims(token)
        if not claims or claims.get("typ") not in ("Refresh", "Offline"):
            raise OIDCProblem(400, "invalid_grant", "Invalid refresh token")
        session = self.sessions.get(claims.get("sid", ""))
        if session is None:
            raise OIDCProblem(400, "invalid_grant", "Session not active")
        if session["client"] != client:
            raise OIDCProblem(400, "invalid_grant", "Invalid refresh token. Token client and authorized client don't match")
        return claims["sid"]

    def refresh(self, token: str, client: str) -> dict[str, Any]:
        return self._answer(self._refresh_session(token, client), int(time.time()))

    def logout(self, form: dict[str, str], client: str) -> None:
        """Keycloak's back-channel logout (LogoutEndpoint, POST with a refresh token): ends its session."""
        if not form.get("refresh_token"):
            raise OIDCProblem(400, "invalid_request", "No refresh token")
        del self.sessions[self._refresh_session(form["refresh_token"], client)]
        self.dirty = True

    @property
    def issuer(self) -> str:
        return f"/auth/realms/{self.config.realm}"

    # -- grants -----------------------------------------------------------------------------

    def authenticate_client(self, form: dict[str, str], request: Request) -> str:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                raise OIDCProblem(401, "invalid_client", "Invalid client credentials") from None
        if client_id not in self.config.clients:
            raise OIDCProblem(401, "invalid_client", "Invalid client or Invalid client credentials")
        expected = self.config.clients[client_id]
        if expected is not None and not hmac.compare_digest(expected, secret or ""):
            raise OIDCProblem(401, "unauthorized_client", "Invalid client or Invalid client credentials")
        return client_id

    def grant(self, form: dict[str, str], request: Request) -> dict[str, Any]:
        client = self.authenticate_client(form, request)
        grant_type = form.get("grant_type")
        if grant_type == "password":
            user, password = form.get("username", ""), form.get("password", "")
            expected = self.config.users.get(user)
            if expected is None or not hmac.compare_digest(expected, password):
                raise OIDCProblem(401, "invalid_grant", "Invalid user credentials")
            return self.issue(user, client, form.get("scope") or "openid")
        if grant_type == "refresh_token":
            return self.refresh(form.get("refresh_token", ""), client)
        if grant_type == TOKEN_EXCHANGE:
            return self._exchange(form, client)
        raise OIDCProblem(400, "unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")

    def _exchange(self, form: dict[str, str], client: str) -> dict[str, Any]:
        if form.get("subject_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise OIDCProblem(400, "invalid_request", "subject_token_type must be an access token")
        if form.get("requested_token_type", REFRESH_TOKEN_TYPE) != REFRESH_TOKEN_TYPE:
            raise OIDCProblem(400, "invalid_request", "requested_token_type must be a refresh token")
        claims = self.verify_access(form.get("subject_token", ""))
        if claims is None:
            raise OIDCProblem(400, "invalid_token", "subject_token is invalid or expired")
        return self.issue(claims["preferred_username"], client, form.get("scope") or "openid")


async def _form(request: Request) -> dict[str, str]:
    # Parsed by hand: FastAPI's Form() needs python-multipart, which Prefect does not bring.
    fields = parse_qs((await request.body()).decode(errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def aai_router(state: AAIState) -> APIRouter:
    router = APIRouter(prefix=f"/auth/realms/{state.config.realm}")
    oidc = "/protocol/openid-connect"

    @router.get("/.well-known/openid-configuration")
    async def discovery(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/") + router.prefix
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}{oidc}/auth",
            "token_endpoint": f"{base}{oidc}/token",
            "introspection_endpoint": f"{base}{oidc}/token/introspect",
            "userinfo_endpoint": f"{base}{oidc}/userinfo",
            "end_session_endpoint": f"{base}{oidc}/logout",
            "grant_types_supported": ["password", "refresh_token", TOKEN_EXCHANGE],
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        }

    @router.post(f"{oidc}/token")
    async def token(request: Request) -> JSONResponse:
        try:
            return JSONResponse(state.grant(await _form(request), request))
        except OIDCProblem as problem:
            return problem.response()

    @router.post(f"{oidc}/token/introspect")
    async def introspect(request: Request) -> JSONResponse:
        form = await _form(request)
        try:
            client = state.authenticate_client(form, request)
            if state.config.clients[client] is None:
                # Keycloak refuses introspection to public clients: 403 {"error": "invalid_request",
                # "error_description": "Client not allowed."} (keycloak/keycloak TokenIntrospectionEndpoint;
                # testsuite TokenIntrospectionTest.testPublicClientCredentialsNotAllowed).
                raise OIDCProblem(403, "invalid_request", "Client not allowed.")
        except OIDCProblem as problem:
            return problem.response()
        claims = state.verify_access(form.get("token", ""))
        return JSONResponse({"active": False} if claims is None else {"active": True, **claims})

    @router.post(f"{oidc}/logout")
    async def logout(request: Request) -> Response:
        # python-keycloak's logout(): client credentials + refresh_token, form-encoded; Keycloak
        # answers 204 No Content, or an OAuth error (400 invalid_grant for a dead refresh token).
        form = await _form(request)
        try:
            state.logout(form, state.authenticate_client(form, request))
        except OIDCProblem as problem:
            return problem.response()
        return Response(status_code=204)

    @router.get(f"{oidc}/userinfo")
    async def userinfo(request: Request) -> JSONResponse:
        header = request.headers.get("authorization", "")
        claims = state.verify_access(header[7:]) if header.lower().startswith("bearer ") else None
        if claims is None:
            return JSONResponse({"error": "invalid_token", "error_description": "Token verification failed"}, 401)
        return JSONResponse({"sub": claims["sub"], "preferred_username": claims["preferred_username"]})

    return router
