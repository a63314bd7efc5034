"""The pieces the three clients share: scrubbing, policies, error texts."""

from __future__ import annotations

import itertools
import logging

import httpx
import pytest
import respx
from pydantic import SecretStr

from lexis_prefect._http import scrub
from lexis_prefect.config import PollPolicy, RetryPolicy
from lexis_prefect.ddi import DDIStagingClient


def test_scrub_masks_known_secrets_jwts_and_secret_query_values():
    jwt = "eyJhbGciOi.eyJzdWIiOiJ4In0.c2ln"
    text = f"token {jwt} sessionCode=abc-123&x=1 and my-secret here, access_token=zzz"
    assert scrub(text, ["my-secret"]) == "token *** sessionCode=***&x=1 and *** here, access_token=***"


def test_scrub_ignores_empty_secrets():
    assert scrub("unchanged", ["", ""]) == "unchanged"


def test_retry_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(backoff_seconds=0.5, max_backoff_seconds=3)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3, 3]


def test_poll_intervals_grow_by_the_factor_up_to_the_cap():
    policy = PollPolicy(interval_seconds=1, backoff_factor=2, max_interval_seconds=5)
    assert list(itertools.islice(policy.intervals(), 5)) == [1, 2, 4, 5, 5]


def test_policies_reject_nonsense():
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="backoff_factor"):
        PollPolicy(backoff_factor=0.5)


def test_client_refuses_a_base_url_that_is_not_http():
    with pytest.raises(ValueError, match="ddi base_url must be an http"):
        DDIStagingClient("staging.example", SecretStr("t"))


async def test_httpx_request_log_masks_the_session_code_in_urls(caplog):
    caplog.set_level(logging.INFO, logger="httpx")
    with respx.mock() as mock:
        mock.get("https://h.test/x").respond(200)
        async with httpx.AsyncClient() as client:
            await client.get("https://h.test/x", params={"sessionCode": "0a1b2c3d-secret", "id": 7})
    assert "0a1b2c3d-secret" not in caplog.text
    assert "sessionCode=***&id=7" in caplog.text
