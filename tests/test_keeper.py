"""TokenKeeper against respx: refresh ahead of expiry, on demand, through a passing AAI outage."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import httpx
import pytest
import respx
from pydantic import SecretStr

from lexis_prefect.blocks import LexisCredentials, LexisEndpoints
from lexis_prefect.config import RetryPolicy
from lexis_prefect.exceptions import AuthenticationError
from lexis_prefect.keeper import TokenKeeper
from lexis_prefect.models.aai import TokenSet

REALM = "https://aai.test/auth/realms/LEXIS_AAI"
TOKEN_URL = f"{REALM}/protocol/openid-connect/token"


def credentials() -> LexisCredentials:
    endpoints = LexisEndpoints(aai_url=REALM, staging_url="https://ddi.test/staging")
    return LexisCredentials(endpoints=endpoints, client_id="lexis-prefect")


def tokens(access: str, lifetime: int, issued_ago: float = 0) -> TokenSet:
    return TokenSet(
        access_token=SecretStr(access),
        expires_in=lifetime,
        refresh_token=SecretStr("offline"),
        issued_at=datetime.now(timezone.utc) - timedelta(seconds=issued_ago),
    )


def answer(access: str, lifetime: int = 3) -> httpx.Response:
    return httpx.Response(200, json={"access_token": access, "expires_in": lifetime, "refresh_token": "offline"})


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    # The keeper builds its AAI client from the block; make that client's retries instant.
    original = LexisCredentials.get_client

    def get_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        client.retry = RetryPolicy(backoff_seconds=0)
        return client

    monkeypatch.setattr(LexisCredentials, "get_client", get_client)


async def test_fresh_token_is_returned_without_a_call():
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(TOKEN_URL)
        keeper = TokenKeeper("k", credentials(), tokens("fresh", 300))
        assert (await keeper.access_token()).get_secret_value() == "fresh"
    assert not route.called


async def test_token_near_expiry_is_refreshed_on_demand_once():
    with respx.mock() as mock:
        route = mock.post(TOKEN_URL).mock(return_value=answer("renewed", 300))
        keeper = TokenKeeper("k", credentials(), tokens("old", 30, issued_ago=25))
        values = await asyncio.gather(*(keeper.access_token() for _ in range(5)))
    assert {v.get_secret_value() for v in values} == {"renewed"}
    assert route.call_count == 1 and keeper.refreshes == 1


async def test_keep_refreshes_ahead_of_expiry_and_rides_out_an_outage():
    with respx.mock() as mock:
        # Each refresh attempt of the client is 4 calls: the first refresh meets a full outage.
        route = mock.post(TOKEN_URL).mock(side_effect=[httpx.Response(503)] * 4 + [answer(f"t{i}") for i in range(20)])
        keeper = TokenKeeper("k", credentials(), tokens("t", 3))
        keeping = asyncio.create_task(keeper.keep(poll_seconds=0.05))
        await asyncio.sleep(4.5)
        keeper.stopped.set()
        count = await keeping
    assert count >= 2, count  # lifetime 3 s, refreshed when 1 s is left: twice or more in 4.5 s
    assert route.call_count == 4 + count
    assert not keeper._tokens.expires_within(0)


async def test_keep_stops_when_the_refresh_token_is_refused():
    with respx.mock() as mock:
        mock.post(TOKEN_URL).respond(400, json={"error": "invalid_grant", "error_description": "Session not active"})
        keeper = TokenKeeper("k", credentials(), tokens("t", 3, issued_ago=3))
        with pytest.raises(AuthenticationError, match="Session not active"):
            await asyncio.wait_for(keeper.keep(poll_seconds=0.05), timeout=5)


def jwt(claims: dict) -> str:
    import base64
    import json

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


@pytest.mark.parametrize(
    ("typ", "grant"),
    [("Bearer", "urn:ietf:params:oauth:grant-type:token-exchange"), ("Offline", "refresh_token")],
    ids=["access token: exchanged", "offline token (a deployment's Secret block): refreshed"],
)
async def test_refresh_token_exchanges_an_access_token_and_refreshes_an_offline_one(prefect_harness, monkeypatch, typ, grant):
    from lexis_prefect import keeper as keeping

    monkeypatch.setattr(keeping, "resolve_credentials", lambda block=None: credentials())
    given = jwt({"typ": typ, "preferred_username": "demo"})
    with respx.mock() as mock:
        mock.route(host="127.0.0.1").pass_through()  # the Prefect test server (the run's saved token)
        route = mock.post(TOKEN_URL).mock(return_value=answer("run-token", 300))
        keeper_id = await keeping.refresh_token.fn(SecretStr(given), keeper_id=f"offline-test-{typ}")
    form = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert form["grant_type"] == grant
    assert given in (form.get("subject_token"), form.get("refresh_token"))
    assert (await keeping.keeper(keeper_id).access_token()).get_secret_value() == "run-token"
    await keeping.stop_keeper.fn(keeper_id)


@pytest.mark.parametrize("key", ["MyRun 2026/11", "sweep_α", "a" * 40])
def test_storage_key_makes_any_run_key_a_valid_block_and_variable_name(key):
    from prefect.client.schemas.actions import BlockDocumentCreate, VariableCreate

    from lexis_prefect.keeper import storage_key

    name = storage_key(key)
    assert name != storage_key(key.upper() + "x")
    VariableCreate(name=f"lexis-job-{name}-0123456789ab", value={})  # both validate the name as the server does
    BlockDocumentCreate(name=f"lexis-offline-token-{name}", data={}, block_schema_id=uuid4(), block_type_id=uuid4())
    assert re.fullmatch(r"[a-z0-9-]+", name), name


def test_storage_key_keeps_a_flow_run_id():
    from lexis_prefect.keeper import storage_key

    assert storage_key("8d0d7229-96f3-4dbe-8126-eed620ec89c2") == "8d0d7229-96f3-4dbe-8126-eed620ec89c2"
