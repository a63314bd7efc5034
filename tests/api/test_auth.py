"""The token verifier's HTTP calls (respx): the userinfo GET, its cache, and how answers map to 401/503."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
import respx
from pydantic import SecretStr

from lexis_prefect.api.auth import TokenVerifier, bearer_token
from lexis_prefect.api.errors import Problem

REALM = "https://aai.example/auth/realms/LEXIS_AAI"
USERINFO = f"{REALM}/protocol/openid-connect/userinfo"


def jwt(**claims: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


async def realm() -> str:
    return REALM


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@respx.mock
async def test_a_token_is_checked_once_then_cached_until_the_ttl():
    route = respx.get(USERINFO).mock(return_value=httpx.Response(200, json={"sub": "u-1", "preferred_username": "ann"}))
    clock = Clock()
    verifier = TokenVerifier(realm, ttl=60, clock=clock)
    token = SecretStr(jwt(sub="u-1", exp=clock.now + 3600))
    first = await verifier.verify(token)
    second = await verifier.verify(token)
    assert (first.sub, first.username) == ("u-1", "ann") and second == first
    assert route.call_count == 1
    assert route.calls[0].request.headers["authorization"] == f"Bearer {token.get_secret_value()}"
    clock.now += 61
    await verifier.verify(token)
    assert route.call_count == 2


@respx.mock
async def test_the_cache_never_outlives_the_tokens_exp():
    respx.get(USERINFO).mock(return_value=httpx.Response(200, json={"sub": "u-1"}))
    clock = Clock()
    verifier = TokenVerifier(realm, ttl=600, clock=clock)
    token = SecretStr(jwt(sub="u-1", exp=clock.now + 5))
    await verifier.verify(token)
    clock.now += 6
    with pytest.raises(Problem) as refused:
        await verifier.verify(token)
    assert refused.value.status == 401 and "expired" in refused.value.detail


@respx.mock
@pytest.mark.parametrize("status", [400, 401, 403])
async def test_the_aai_refusing_the_token_is_401_without_the_token(status: int):
    respx.get(USERINFO).mock(return_value=httpx.Response(status, json={"error": "invalid_token"}))
    token = jwt(sub="u-1")
    with pytest.raises(Problem) as refused:
        await TokenVerifier(realm).verify(SecretStr(token))
    assert refused.value.status == 401
    assert token not in json.dumps(refused.value.body()) and token not in str(refused.value)


@respx.mock
async def test_an_aai_that_cannot_answer_is_503_and_not_cached():
    route = respx.get(USERINFO).mock(side_effect=[httpx.ConnectError("down"), httpx.Response(502),
                                                  httpx.Response(200, json={"sub": "u-1"})])
    verifier = TokenVerifier(realm)
    token = SecretStr(jwt(sub="u-1"))
    for _ in range(2):
        with pytest.raises(Problem) as failed:
            await verifier.verify(token)
        assert failed.value.status == 503
    assert (await verifier.verify(token)).sub == "u-1"
    assert route.call_count == 3


@respx.mock
async def test_an_answer_without_a_subject_is_not_a_user():
    respx.get(USERINFO).mock(return_value=httpx.Response(200, json={"preferred_username": "ann"}))
    with pytest.raises(Problem) as failed:
        await TokenVerifier(realm).verify(SecretStr("opaque-token"))
    assert failed.value.status == 503


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Token abc", "Basic abc"])
def test_only_a_bearer_header_carries_a_token(header: str | None):
    with pytest.raises(Problem) as refused:
        bearer_token(header)
    assert refused.value.status == 401


def test_the_bearer_scheme_is_case_insensitive():
    assert bearer_token("bearer abc").get_secret_value() == "abc"
