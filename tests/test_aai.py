"""AAIClient against respx: the exact token-endpoint forms, TokenSet timing, retries and secrecy."""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import SecretStr, ValidationError

from lexis_prefect.aai import AAIClient
from lexis_prefect.config import RetryPolicy
from lexis_prefect.exceptions import AuthenticationError, LexisAPIError, LexisTransportError
from lexis_prefect.models.aai import TokenSet, jwt_claims

REALM = "https://aai.test/auth/realms/LEXIS_AAI"
TOKEN_URL = f"{REALM}/protocol/openid-connect/token"
CLIENT_SECRET = "client-secret-value-123"
USER_TOKEN = "user-access-token-abc"
FAST = RetryPolicy(backoff_seconds=0)


def jwt(**claims: object) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


ACCESS = jwt(preferred_username="alice", exp=2_000_000_000)
REFRESH = "offline-refresh-token-xyz"


def token_response(**overrides: object) -> dict[str, object]:
    body = {
        "access_token": ACCESS,
        "expires_in": 300,
        "refresh_expires_in": 0,
        "refresh_token": REFRESH,
        "token_type": "Bearer",
        "id_token": "id-token-not-kept",
        "not-before-policy": 0,
        "session_state": "abc",
        "scope": "openid offline_access profile",
    }
    body.update(overrides)
    return body


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


@pytest.fixture
def aai():
    return AAIClient(REALM, "lexis-prefect", SecretStr(CLIENT_SECRET), retry=FAST)


@pytest.fixture
def token_route():
    with respx.mock(assert_all_called=False) as mock:
        yield mock.post(TOKEN_URL)


# -- wire format ---------------------------------------------------------------------------


async def test_exchange_token_sends_the_rfc8693_form_for_an_offline_token(aai, token_route):
    token_route.respond(200, json=token_response())
    tokens = await aai.exchange_token(SecretStr(USER_TOKEN))
    request = token_route.calls.last.request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(request) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "client_id": "lexis-prefect",
        "client_secret": CLIENT_SECRET,
        "subject_token": USER_TOKEN,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token",
        "scope": "offline_access",
    }
    assert tokens.is_offline and tokens.refresh_token.get_secret_value() == REFRESH


async def test_exchange_without_offline_access_asks_for_openid_scope(aai, token_route):
    token_route.respond(200, json=token_response(scope="openid", refresh_expires_in=1800))
    tokens = await aai.exchange_token(SecretStr(USER_TOKEN), offline_access=False)
    assert form(token_route.calls.last.request)["scope"] == "openid"
    assert not tokens.is_offline
    assert tokens.refresh_expires_at == tokens.issued_at + timedelta(seconds=1800)


async def test_refresh_sends_the_refresh_token_grant(aai, token_route):
    token_route.respond(200, json=token_response(refresh_token="rotated"))
    old = TokenSet.model_validate(token_response())
    new = await aai.refresh(old)
    assert form(token_route.calls.last.request) == {
        "grant_type": "refresh_token",
        "client_id": "lexis-prefect",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH,
    }
    assert new.refresh_token.get_secret_value() == "rotated"


async def test_refresh_without_a_refresh_token_is_refused_before_any_call(aai, token_route):
    with pytest.raises(ValueError, match="no refresh_token"):
        await aai.refresh(TokenSet(access_token=SecretStr("a"), expires_in=60))
    assert not token_route.called


async def test_password_grant_for_a_public_client_sends_no_secret(token_route):
    token_route.respond(200, json=token_response())
    async with AAIClient(REALM, "lexis-prefect", retry=FAST) as public:
        await public.password_grant("demo", SecretStr("demo-pass"), offline_access=True)
    assert form(token_route.calls.last.request) == {
        "grant_type": "password",
        "client_id": "lexis-prefect",
        "username": "demo",
        "password": "demo-pass",
        "scope": "openid offline_access",
    }


async def test_realm_url_without_the_legacy_auth_prefix_is_used_as_given(token_route):
    with respx.mock() as mock:
        route = mock.post("https://kc.test/realms/LEXIS_AAI/protocol/openid-connect/token").respond(
            200, json=token_response()
        )
        async with AAIClient("https://kc.test/realms/LEXIS_AAI/", "c", retry=FAST) as aai:
            await aai.refresh(SecretStr("r"))
    assert route.called


# -- TokenSet --------------------------------------------------------------------------------


def test_token_set_knows_when_it_expires():
    issued = datetime(2026, 1, 1, tzinfo=timezone.utc)
    tokens = TokenSet(access_token=SecretStr("a"), expires_in=300, issued_at=issued)
    assert tokens.expires_at == issued + timedelta(seconds=300)
    assert not tokens.expires_within(60, now=issued + timedelta(seconds=239))
    assert tokens.expires_within(60, now=issued + timedelta(seconds=240))
    assert tokens.expires_within(0, now=issued + timedelta(seconds=301))


def test_refresh_expiry_zero_means_no_timer_and_missing_token_means_no_refresh():
    issued = datetime(2026, 1, 1, tzinfo=timezone.utc)
    offline = TokenSet(access_token=SecretStr("a"), expires_in=1, refresh_token=SecretStr("r"), issued_at=issued)
    online = offline.model_copy(update={"refresh_expires_in": 60})
    bare = TokenSet(access_token=SecretStr("a"), expires_in=1)
    assert offline.refresh_expires_at is None and offline.can_refresh(now=issued + timedelta(days=30))
    assert online.can_refresh(now=issued + timedelta(seconds=59))
    assert not online.can_refresh(now=issued + timedelta(seconds=60))
    assert not bare.can_refresh()


def test_token_set_drops_unknown_keys_and_reads_the_username():
    tokens = TokenSet.model_validate(token_response())
    assert "id-token-not-kept" not in repr(tokens) + str(tokens.model_dump())
    assert tokens.username == "alice"
    assert jwt_claims(SecretStr("not-a-jwt")) == {}


def test_token_set_validation_error_does_not_echo_the_token():
    with pytest.raises(ValidationError) as caught:
        TokenSet.model_validate({"access_token": ACCESS, "expires_in": "soon"})
    assert ACCESS not in str(caught.value)


# -- errors and retries ----------------------------------------------------------------------


async def test_invalid_grant_is_an_authentication_error(aai, token_route):
    token_route.respond(400, json={"error": "invalid_grant", "error_description": "Token is not active"})
    with pytest.raises(AuthenticationError, match="invalid_grant - Token is not active") as caught:
        await aai.refresh(SecretStr(REFRESH))
    assert caught.value.status == 400 and token_route.call_count == 1


async def test_invalid_client_401_is_an_authentication_error_not_retried(aai, token_route):
    token_route.respond(401, json={"error": "invalid_client", "error_description": "Invalid client credentials"})
    with pytest.raises(AuthenticationError):
        await aai.exchange_token(SecretStr(USER_TOKEN))
    assert token_route.call_count == 1


async def test_other_400_is_an_api_error(aai, token_route):
    token_route.respond(400, json={"error": "unsupported_grant_type"})
    with pytest.raises(LexisAPIError) as caught:
        await aai.exchange_token(SecretStr(USER_TOKEN))
    assert type(caught.value) is LexisAPIError and caught.value.status == 400


async def test_503_and_connect_errors_are_retried(aai, token_route):
    token_route.side_effect = [
        httpx.Response(503),
        httpx.ConnectError("refused"),
        httpx.Response(200, json=token_response()),
    ]
    tokens = await aai.refresh(SecretStr(REFRESH))
    assert token_route.call_count == 3 and tokens.expires_in == 300


async def test_retries_stop_after_the_policy_attempts(token_route):
    token_route.respond(503)
    async with AAIClient(REALM, "c", retry=RetryPolicy(attempts=2, backoff_seconds=0)) as aai:
        with pytest.raises(LexisAPIError) as caught:
            await aai.refresh(SecretStr(REFRESH))
    assert caught.value.status == 503 and token_route.call_count == 2


async def test_persistent_timeouts_become_a_transport_error(aai, token_route):
    token_route.side_effect = httpx.ReadTimeout("slow")
    with pytest.raises(LexisTransportError, match="no response") as caught:
        await aai.refresh(SecretStr(REFRESH))
    assert caught.value.sent and token_route.call_count == FAST.attempts


async def test_a_malformed_token_response_is_an_api_error_without_the_token(aai, token_route):
    token_route.respond(200, json={"access_token": ACCESS})
    with pytest.raises(LexisAPIError, match="unexpected response.*expires_in") as caught:
        await aai.refresh(SecretStr(REFRESH))
    assert ACCESS not in str(caught.value)


# -- secrecy -----------------------------------------------------------------------------------


async def test_no_secret_in_errors_reprs_or_logs(aai, token_route, caplog):
    caplog.set_level(logging.DEBUG)
    # A server that echoes what it was sent (it can only echo that) and a JWT-looking access token.
    echoed = f"bad request: subject_token={USER_TOKEN} client_secret={CLIENT_SECRET} seen={ACCESS}"
    token_route.side_effect = [httpx.Response(503, text=echoed), httpx.Response(400, json={"error_description": echoed, "error": "x"})]
    with pytest.raises(LexisAPIError) as caught:
        await aai.exchange_token(SecretStr(USER_TOKEN))
    token_route.side_effect = None
    token_route.respond(200, json=token_response())
    tokens = await aai.refresh(SecretStr(REFRESH))
    shown = " ".join(
        [str(caught.value), caught.value.body, repr(caught.value), repr(aai), repr(tokens), str(tokens)]
        + [record.getMessage() for record in caplog.records]
    )
    for secret in (USER_TOKEN, CLIENT_SECRET, REFRESH, ACCESS):
        assert secret not in shown
    assert "retrying" in caplog.text  # the retry was logged, scrubbed
