"""DDIDatasetClient (the dataset API's metadata search) against respx, and the stage-out marker models.

Wire JSON is pinned with literal dicts from lexis-api.md section 2 (`POST /search/metadata`,
body = metadata, answer = list of `{location: {internalID, access, project, zone}, metadata}`).
"""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from pydantic import SecretStr, ValidationError

from lexis_prefect.config import RetryPolicy
from lexis_prefect.ddi import DDIDatasetClient
from lexis_prefect.exceptions import AuthenticationError, LexisAPIError, LexisTransportError
from lexis_prefect.models.ddi import (
    STAGE_OUT_MARKER_TYPE,
    DatasetHit,
    DatasetLocation,
    DatasetMetadata,
    StageRequest,
    alternate_identifier_metadata,
    alternate_identifier_query,
)

BASE = "https://api.test/api/v0.2/dataset"
SEARCH = f"{BASE}/search/metadata"
TOKEN = "opaque-dataset-token-0123456789"
JWT_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJlLXBhcnQ"
MARKER = "run-7f3e/job-step/out-0"
HIT = {
    # `zone` is the iRODS zone name (ddi-service-apis 9e96c41 irodsapi/demo/dataset.py `gatherDataC`).
    "location": {"internalID": "ds-42", "access": "project", "project": "myproject", "zone": "IT4ILexisZone"},
    # pairs are [type, identifier] (dataset.py `CollChecks`: pair[0] is matched against AlternateIdentifierType)
    "metadata": {"title": "outputs", "AlternateIdentifier": [["lexis-prefect-stage-out", MARKER]]},
}


@pytest.fixture
def api():
    with respx.mock(assert_all_called=False) as router:
        yield router


def make_client(token: SecretStr = SecretStr(TOKEN), **kwargs) -> DDIDatasetClient:
    kwargs.setdefault("retry", RetryPolicy(backoff_seconds=0))
    return DDIDatasetClient(BASE, token, **kwargs)


def error(code: int, text: str) -> httpx.Response:
    return httpx.Response(code, json={"status": str(code), "errorString": text})


# ---------------------------------------------------------------- the marker


def test_marker_metadata_is_one_type_first_pair_and_the_query_is_two_anchored_escaped_regexes():
    assert STAGE_OUT_MARKER_TYPE == "lexis-prefect-stage-out"
    assert alternate_identifier_metadata(MARKER) == {"AlternateIdentifier": [["lexis-prefect-stage-out", MARKER]]}
    assert alternate_identifier_metadata("x", "DOI") == {"AlternateIdentifier": [["DOI", "x"]]}
    # The dataset API re.search()es string values (dataset.py `CollChecks`): exact match needs ^...$ and escaping.
    assert alternate_identifier_query(MARKER) == {
        "AlternateIdentifier": "^run\\-7f3e/job\\-step/out\\-0$",
        "AlternateIdentifierType": "^lexis\\-prefect\\-stage\\-out$",
    }
    assert alternate_identifier_query("a.b", "DOI") == {"AlternateIdentifier": "^a\\.b$", "AlternateIdentifierType": "^DOI$"}
    for made in (alternate_identifier_query, alternate_identifier_metadata):
        with pytest.raises(ValueError, match="empty"):
            made("")
        with pytest.raises(ValueError, match="empty"):
            made("x", "")


def test_marker_query_matches_the_marker_metadata_as_the_server_matches():
    import re

    [[kind, value]] = alternate_identifier_metadata(MARKER)["AlternateIdentifier"]
    query = alternate_identifier_query(MARKER)
    assert re.search(query["AlternateIdentifierType"], kind) and re.search(query["AlternateIdentifier"], value)
    assert not re.search(alternate_identifier_query("run-7f3e")["AlternateIdentifier"], value)  # no prefix match
    assert not re.search(alternate_identifier_query(MARKER.replace("/", "."))["AlternateIdentifier"], value)


def test_alternate_identifier_goes_into_the_stage_payload_under_its_datacite_name():
    metadata = DatasetMetadata(title="outputs", **alternate_identifier_metadata(MARKER))
    request = StageRequest(
        source_system="karolina_scratch",
        source_path="/scratch/heappe/7/8/results",
        target_system="it4i_iRODS",
        target_path="project/proj0a1b",
        metadata=metadata,
        heappe_url="https://heappe.test",
        job_id=7,
        task_id=8,
    )
    sent = request.payload()["metadata"]
    assert sent["AlternateIdentifier"] == [["lexis-prefect-stage-out", MARKER]]
    assert sent["title"] == "outputs"
    # and back: the wire JSON validates into the same metadata
    assert StageRequest.model_validate(json.loads(json.dumps(request.payload()))).payload() == request.payload()


def test_alternate_identifier_tuples_are_sent_as_json_lists():
    metadata = DatasetMetadata(title="t", AlternateIdentifier=[(STAGE_OUT_MARKER_TYPE, MARKER)])
    request = StageRequest(source_system="a", source_path="p", target_system="b", target_path="c", metadata=metadata)
    assert json.loads(json.dumps(request.payload()))["metadata"]["AlternateIdentifier"] == [
        [STAGE_OUT_MARKER_TYPE, MARKER]
    ]


def test_hit_reads_internal_id_by_its_wire_name_and_keeps_unknown_keys():
    hit = DatasetHit.model_validate({**HIT, "location": {**HIT["location"], "path": "project/proj0a1b/ds-42"}})
    assert hit.location.internal_id == "ds-42"
    assert hit.location.zone == "IT4ILexisZone" and hit.location.project == "myproject"
    assert hit.location.model_extra == {"path": "project/proj0a1b/ds-42"}
    assert hit.location.model_dump(by_alias=True)["internalID"] == "ds-42"
    with pytest.raises(ValidationError):
        hit.location.zone = "elsewhere"  # frozen
    with pytest.raises(ValidationError, match="internalID"):
        DatasetLocation.model_validate({"access": "project", "zone": "z"})


# ---------------------------------------------------------------- search on the wire


async def test_search_posts_the_metadata_with_bearer_and_parses_the_hits(api):
    route = api.post(SEARCH).mock(return_value=httpx.Response(200, json=[HIT]))

    async with make_client() as client:
        hits = await client.search(alternate_identifier_query(MARKER))

    request = route.calls.last.request
    assert json.loads(request.content) == alternate_identifier_query(MARKER)
    assert all(isinstance(v, str) for v in json.loads(request.content).values())
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert hits == [DatasetHit.model_validate(HIT)]
    assert hits[0].metadata["AlternateIdentifier"] == [["lexis-prefect-stage-out", MARKER]]


async def test_search_with_no_match_is_an_empty_list(api):
    api.post(SEARCH).mock(return_value=httpx.Response(200, json=[]))
    async with make_client() as client:
        assert await client.search({"title": "nothing"}) == []


async def test_search_answered_404_is_no_hits(api):
    # The Yorc DDI plugin reads a "not found" search error as no result (yorc-ddi-plugin job/monitoring_jobs.go).
    api.post(SEARCH).mock(return_value=httpx.Response(404, json={"errorString": "Not found"}))
    async with make_client() as client:
        assert await client.search(alternate_identifier_query(MARKER)) == []


async def test_search_answered_500_is_an_error_not_no_hits(api):
    route = api.post(SEARCH).mock(return_value=httpx.Response(500, text="<h1>Server Error (500)</h1>"))
    async with make_client(retry=RetryPolicy(attempts=2, backoff_seconds=0)) as client:
        with pytest.raises(LexisAPIError) as info:
            await client.search(alternate_identifier_query(MARKER))
    assert info.value.status == 500
    assert route.call_count == 2  # a read: retried, then raised


async def test_search_refuses_a_non_string_value_before_sending(api):
    # The server re.search()es every value: a list would be a 500 (dataset.py `CollChecks`).
    route = api.post(SEARCH).mock(return_value=httpx.Response(200, json=[]))
    async with make_client() as client:
        with pytest.raises(ValueError, match="regular expressions"):
            await client.search({"AlternateIdentifier": [["lexis-prefect-stage-out", MARKER]]})  # type: ignore[dict-item]
    assert route.call_count == 0


async def test_search_answer_that_is_not_a_list_of_hits_is_an_api_error(api):
    api.post(SEARCH).mock(return_value=httpx.Response(200, json={"internalID": "ds-42"}))
    async with make_client() as client:
        with pytest.raises(LexisAPIError, match="unexpected response"):
            await client.search({"title": "x"})


async def test_search_is_a_read_so_a_502_is_retried(api):
    route = api.post(SEARCH).mock(side_effect=[error(502, "Bad Gateway"), httpx.Response(200, json=[HIT])])
    async with make_client() as client:
        [hit] = await client.search(alternate_identifier_query(MARKER))
    assert hit.location.internal_id == "ds-42"
    assert route.call_count == 2


async def test_search_is_retried_after_a_read_timeout_too(api):
    route = api.post(SEARCH).mock(side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=[])])
    async with make_client() as client:
        assert await client.search({"title": "x"}) == []
    assert route.call_count == 2


async def test_search_gives_up_after_the_policy_attempts(api):
    route = api.post(SEARCH).mock(side_effect=httpx.ReadError("cut"))
    async with make_client(retry=RetryPolicy(attempts=3, backoff_seconds=0)) as client:
        with pytest.raises(LexisTransportError):
            await client.search({"title": "x"})
    assert route.call_count == 3


@pytest.mark.parametrize("token", [TOKEN, JWT_TOKEN])
async def test_401_is_an_authentication_error_without_the_token(api, token):
    route = api.post(SEARCH).mock(return_value=error(401, f"inactive token {token}"))

    async with make_client(SecretStr(token)) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.search({"title": "x"})

    assert route.call_count == 1  # a plain token is not sent again, and a 401 is not retried
    assert "/dataset/search/metadata -> 401" in str(info.value)
    assert token not in str(info.value)
    assert token not in repr(info.value)
    assert token not in info.value.body


async def test_repr_shows_base_url_but_not_token():
    async with make_client() as client:
        assert repr(client) == f"DDIDatasetClient(base_url='{BASE}/')"
        assert TOKEN not in repr(client)
