"""DDIStagingClient against a respx-mocked staging API (wire shapes from lexis-api.md section 2).

Wire JSON is pinned with literal dicts written from the API notes, never with the
models' own `payload()`, so a wrong field name in a model cannot pass unnoticed.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import respx
from pydantic import SecretStr, ValidationError

from lexis_prefect.config import PollPolicy, RetryPolicy
from lexis_prefect.ddi import DDIStagingClient
from lexis_prefect.exceptions import (
    AuthenticationError,
    LexisAPIError,
    LexisTransportError,
    NotFoundError,
    StagingFailedError,
    StagingTimeoutError,
)
from lexis_prefect.models.ddi import DatasetMetadata, StageRequest, StagingState, StagingStatus

BASE = "https://ddi.test/staging"
TOKEN = "opaque-ddi-token-0123456789"
# Shaped like a Keycloak access token (three base64url parts).
JWT_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJlLXBhcnQ"
RID = "5f1c7a3e-2b8d-4c6e-9a0f-1234567890ab"
FAST_POLL = PollPolicy(interval_seconds=0.001, max_interval_seconds=0.001)

QUEUED = "Task still in the queue, or task does not exist"
IN_PROGRESS = "In progress"
TRANSFER_COMPLETED = "Transfer completed"


# ---------------------------------------------------------------- helpers


@pytest.fixture
def api():
    with respx.mock(assert_all_called=False) as router:
        yield router


def make_client(token=SecretStr(TOKEN), **kwargs) -> DDIStagingClient:
    kwargs.setdefault("retry", RetryPolicy(backoff_seconds=0))
    return DDIStagingClient(BASE, token, **kwargs)


@pytest.fixture
async def client():
    async with make_client() as c:
        yield c


def ok(status: str, **extra) -> httpx.Response:
    return httpx.Response(200, json={"status": status, **extra})


def created(request_id: str = RID) -> httpx.Response:
    return httpx.Response(201, json={"request_id": request_id})


def error(code: int, text: str, **kwargs) -> httpx.Response:
    return httpx.Response(code, json={"status": str(code), "errorString": text}, **kwargs)


def sent_json(route: respx.Route, index: int = 0) -> object:
    return json.loads(route.calls[index].request.content)


def status_route(api: respx.Router, operation: str = "stage", request_id: str = RID) -> respx.Route:
    return api.get(f"{BASE}/{operation}/{request_id}")


def ddi_to_hpc(**overrides) -> StageRequest:
    fields = {
        "source_system": "it4i_iRODS",
        "source_path": "project/proj0a1b/ds-42/input",
        "target_system": "barbora_lustre",
        # An HPC path is absolute on the cluster (ddi-service-apis 9e96c41 staging_api.py `nfs_to_local_hpc`).
        "target_path": "/scratch/project/dd-24-1/heappe/4242/7/inputs",
        "heappe_url": "https://heappe.test",
        "job_id": 4242,
        "task_id": 7,
    }
    return StageRequest(**{**fields, **overrides})


# ---------------------------------------------------------------- wire: paths, headers, bodies


async def test_stage_ddi_to_hpc_posts_exact_json_with_bearer_and_json_headers(api, client):
    route = api.post(f"{BASE}/stage").mock(return_value=created())

    request_id = await client.stage(ddi_to_hpc())

    assert request_id == RID
    assert route.call_count == 1
    sent = route.calls[0].request
    assert sent.method == "POST"
    assert sent.url.path == "/staging/stage"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent_json(route) == {
        "source_system": "it4i_iRODS",
        "source_path": "project/proj0a1b/ds-42/input",
        "target_system": "barbora_lustre",
        "target_path": "/scratch/project/dd-24-1/heappe/4242/7/inputs",
        "encryption": "no",
        "compression": "no",
        "heappe_url": "https://heappe.test",
        "job_id": 4242,
        "task_id": 7,
    }


async def test_stage_hpc_to_irods_sends_datacite_metadata_target_path_and_every_hpc_field(api, client):
    # validate_input.py requires target_path, and task_id/job_id/heappe_url for an HPC side.
    route = api.post(f"{BASE}/stage").mock(return_value=created())
    request = StageRequest(
        source_system="barbora_lustre",
        source_path="/scratch/project/dd-24-1/heappe/4242/7/results",
        target_system="it4i_iRODS",
        target_path="project/proj0a1b",
        encryption="yes",
        compression="yes",
        heappe_url="https://heappe.test",
        job_id=4242,
        task_id=7,
        metadata=DatasetMetadata(
            title="Flood simulation output",
            creator=["Alice Example"],
            contributor=["Bob Example"],
            publisher=["LEXIS"],
            owner=["Alice Example"],
            publication_year="2024",
            resource_type="Dataset",
        ),
    )

    await client.stage(request)

    assert sent_json(route) == {
        "source_system": "barbora_lustre",
        "source_path": "/scratch/project/dd-24-1/heappe/4242/7/results",
        "target_system": "it4i_iRODS",
        "target_path": "project/proj0a1b",
        "encryption": "yes",
        "compression": "yes",
        "heappe_url": "https://heappe.test",
        "job_id": 4242,
        "task_id": 7,
        "metadata": {
            "title": "Flood simulation output",
            "creator": ["Alice Example"],
            "contributor": ["Bob Example"],
            "publisher": ["LEXIS"],
            "owner": ["Alice Example"],
            "publicationYear": "2024",
            "resourceType": "Dataset",
        },
    }


@pytest.mark.parametrize("target_path", [None, ""])
def test_stage_request_requires_a_target_path(target_path):
    # validate_input.py `validate_staging_input_body`: a missing target_path is a 400.
    with pytest.raises(ValidationError, match="target_path"):
        StageRequest(source_system="it4i_iRODS", source_path="a", target_system="lrz_iRODS", target_path=target_path)


async def test_stage_always_sends_target_path_and_both_flags(api, client):
    route = api.post(f"{BASE}/stage").mock(return_value=created())

    await client.stage(StageRequest(source_system="it4i_iRODS", source_path="a", target_system="lrz_iRODS", target_path="b"))

    assert sent_json(route) == {
        "source_system": "it4i_iRODS",
        "source_path": "a",
        "target_system": "lrz_iRODS",
        "target_path": "b",
        "encryption": "no",
        "compression": "no",
    }


async def test_status_gets_stage_request_path_with_bearer(api, client):
    route = status_route(api).mock(return_value=ok(QUEUED))

    await client.status(RID)

    sent = route.calls[0].request
    assert (sent.method, sent.url.path) == ("GET", f"/staging/stage/{RID}")
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Accept"] == "application/json"
    assert sent.content == b""


async def test_delete_sends_delete_with_target_system_and_path_and_returns_request_id(api, client):
    # views.py `delete_copy` serves DELETE only; a POST ends in a 500 on the published server.
    route = api.delete(f"{BASE}/delete").mock(return_value=created("del-1"))

    request_id = await client.delete("it4i_iRODS", "project/proj0a1b/ds-42")

    assert request_id == "del-1"
    sent = route.calls[0].request
    assert (sent.method, sent.url.path) == ("DELETE", "/staging/delete")
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent_json(route) == {"target_system": "it4i_iRODS", "target_path": "project/proj0a1b/ds-42"}


async def test_delete_answered_405_is_sent_again_as_post(api, client):
    # The Yorc DDI plugin POSTs /delete: a server refusing DELETE with 405 did nothing, POST follows.
    deleted = api.delete(f"{BASE}/delete").mock(return_value=error(405, "Method Not Allowed"))
    posted = api.post(f"{BASE}/delete").mock(return_value=created("del-2"))

    assert await client.delete("it4i_iRODS", "project/proj0a1b/ds-42") == "del-2"
    assert (deleted.call_count, posted.call_count) == (1, 1)
    assert sent_json(posted) == {"target_system": "it4i_iRODS", "target_path": "project/proj0a1b/ds-42"}


async def test_delete_answered_400_is_not_sent_again_as_post(api, client):
    api.delete(f"{BASE}/delete").mock(return_value=error(400, "Malformed request. Required parameters not provided"))
    posted = api.post(f"{BASE}/delete").mock(return_value=created("del-2"))

    with pytest.raises(LexisAPIError, match="Required parameters"):
        await client.delete("it4i_iRODS", "project/proj0a1b/ds-42")
    assert posted.call_count == 0


async def test_delete_status_gets_delete_path_and_reads_data_deleted_as_completed(api, client):
    route = status_route(api, "delete", "del-1").mock(return_value=ok("Data deleted"))

    status = await client.status("del-1", "delete")

    assert route.calls[0].request.url.path == "/staging/delete/del-1"
    assert status.state is StagingState.COMPLETED


async def test_info_gets_info_path_and_returns_system_names(api, client):
    route = api.get(f"{BASE}/info").mock(return_value=httpx.Response(200, json=["it4i_iRODS", "barbora_lustre"]))

    systems = await client.info()

    assert systems == ["it4i_iRODS", "barbora_lustre"]
    sent = route.calls[0].request
    assert (sent.method, sent.url.path) == ("GET", "/staging/info")
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_submit_answer_without_request_id_is_an_api_error(api, client):
    api.post(f"{BASE}/stage").mock(return_value=httpx.Response(201, json={"id": RID}))

    with pytest.raises(LexisAPIError, match="request_id"):
        await client.stage(ddi_to_hpc())


# ---------------------------------------------------------------- StageRequest validation


def test_stage_request_rejects_encryption_other_than_yes_or_no():
    with pytest.raises(ValidationError, match="encryption"):
        ddi_to_hpc(encryption="true")


def test_stage_request_rejects_compression_other_than_yes_or_no():
    with pytest.raises(ValidationError, match="compression"):
        ddi_to_hpc(compression=True)


@pytest.mark.parametrize("missing", ["heappe_url", "job_id", "task_id"])
def test_stage_request_rejects_an_hpc_side_without_all_of_heappe_url_job_id_task_id(missing):
    # validate_input.py: "Input is not valid. HEAppE job and task id are required".
    with pytest.raises(ValidationError, match="heappe_url, job_id and task_id go together"):
        ddi_to_hpc(**{missing: None})


# ---------------------------------------------------------------- status strings (lexis-api.md 2.4)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (QUEUED, StagingState.PENDING),
        ("In progress", StagingState.RUNNING),
        ("Transfer completed", StagingState.COMPLETED),
        ("Replication completed", StagingState.COMPLETED),
        ("Data deleted", StagingState.COMPLETED),
        ("Done", StagingState.COMPLETED),
        ("Task Failed, reason: x", StagingState.FAILED),
        ("in progress", StagingState.UNKNOWN),
        ("Task still in the queue", StagingState.UNKNOWN),
        ("Completed", StagingState.UNKNOWN),
        ("", StagingState.UNKNOWN),
    ],
)
def test_status_string_maps_to_state(status, state):
    assert StagingStatus(status=status).state is state


def test_failed_status_exposes_text_after_prefix_as_reason():
    status = StagingStatus(status="Task Failed, reason: x")
    assert status.failure_reason == "x"


def test_non_failed_status_has_no_failure_reason():
    assert StagingStatus(status=TRANSFER_COMPLETED).failure_reason is None


async def test_completed_status_parses_target_path_and_pid(api, client):
    status_route(api).mock(
        return_value=ok(TRANSFER_COMPLETED, target_path="project/proj0a1b/ds-99", PID="21.T12995/abc-def")
    )

    status = await client.status(RID)

    assert status.state is StagingState.COMPLETED
    assert status.target_path == "project/proj0a1b/ds-99"
    assert status.pid == "21.T12995/abc-def"


# ---------------------------------------------------------------- wait()


async def test_wait_polls_until_transfer_completed_and_returns_final_status(api, client):
    route = status_route(api).mock(
        side_effect=[ok(QUEUED), ok(IN_PROGRESS), ok(TRANSFER_COMPLETED, target_path="project/p/ds-1")]
    )

    final = await client.wait(RID, poll=FAST_POLL)

    assert route.call_count == 3
    assert final.status == TRANSFER_COMPLETED
    assert final.target_path == "project/p/ds-1"


async def test_wait_on_delete_polls_delete_path(api, client):
    route = status_route(api, "delete", "del-1").mock(side_effect=[ok(IN_PROGRESS), ok("Data deleted")])

    final = await client.wait("del-1", "delete", poll=FAST_POLL)

    assert final.status == "Data deleted"
    assert [c.request.url.path for c in route.calls] == ["/staging/delete/del-1"] * 2


async def test_wait_raises_staging_failed_with_reason(api, client):
    status_route(api).mock(side_effect=[ok(IN_PROGRESS), ok("Task Failed, reason: No space left on device")])

    with pytest.raises(StagingFailedError) as info:
        await client.wait(RID, poll=FAST_POLL)

    assert info.value.reason == "No space left on device"
    assert info.value.request_id == RID
    assert "No space left on device" in str(info.value)


async def test_wait_raises_staging_timeout_when_timeout_passes(api, client):
    route = status_route(api).mock(return_value=ok(IN_PROGRESS))
    poll = FAST_POLL.model_copy(update={"timeout_seconds": 0.05})

    with pytest.raises(StagingTimeoutError) as info:
        await client.wait(RID, poll=poll)

    assert info.value.request_id == RID
    assert info.value.last_status == IN_PROGRESS
    assert route.call_count >= 2


async def test_wait_raises_api_error_on_undocumented_status(api, client):
    route = status_route(api).mock(side_effect=[ok(QUEUED), ok("Exploded")])

    with pytest.raises(LexisAPIError, match="'Exploded'") as info:
        await client.wait(RID, poll=FAST_POLL)

    assert route.call_count == 2
    assert info.value.status == 200


async def test_wait_survives_a_502_between_polls(api, client):
    route = status_route(api).mock(
        side_effect=[ok(QUEUED), error(502, "Bad Gateway"), ok(IN_PROGRESS), ok(TRANSFER_COMPLETED)]
    )

    final = await client.wait(RID, poll=FAST_POLL)

    assert final.status == TRANSFER_COMPLETED
    assert route.call_count == 4


async def test_wait_retries_a_500_status_read(api, client):
    # lexis-api.md 2.4: GET /stage/{id} is known to answer 500 now and then; reads retry it.
    assert 500 in client.retry.statuses
    route = status_route(api).mock(
        side_effect=[ok(QUEUED), error(500, "Internal Server Error"), ok(IN_PROGRESS), ok(TRANSFER_COMPLETED)]
    )

    final = await client.wait(RID, poll=FAST_POLL)

    assert final.status == TRANSFER_COMPLETED
    assert route.call_count == 4


async def test_stage_submit_is_not_retried_on_500(api, client):
    route = api.post(f"{BASE}/stage").mock(return_value=error(500, "Internal Server Error"))

    with pytest.raises(LexisAPIError) as info:
        await client.stage(ddi_to_hpc())

    assert info.value.status == 500
    assert route.call_count == 1


# ---------------------------------------------------------------- retry policy


def test_default_retry_statuses_are_429_500_502_503_504():
    assert RetryPolicy().statuses == frozenset({429, 500, 502, 503, 504})


async def test_status_get_is_retried_on_503_then_succeeds(api, client):
    route = status_route(api).mock(side_effect=[error(503, "busy"), ok(IN_PROGRESS)])

    status = await client.status(RID)

    assert status.state is StagingState.RUNNING
    assert route.call_count == 2


async def test_status_get_is_retried_on_connect_error_then_succeeds(api, client):
    route = status_route(api).mock(side_effect=[httpx.ConnectError("refused"), ok(IN_PROGRESS)])

    status = await client.status(RID)

    assert status.status == IN_PROGRESS
    assert route.call_count == 2


async def test_status_get_gives_up_after_policy_attempts(api, client):
    route = status_route(api).mock(return_value=error(503, "busy"))

    with pytest.raises(LexisAPIError) as info:
        await client.status(RID)

    assert info.value.status == 503
    assert route.call_count == RetryPolicy().attempts == 4


async def test_stage_post_is_not_retried_on_503(api, client):
    route = api.post(f"{BASE}/stage").mock(side_effect=[error(503, "busy"), created()])

    with pytest.raises(LexisAPIError) as info:
        await client.stage(ddi_to_hpc())

    assert info.value.status == 503
    assert route.call_count == 1


async def test_stage_post_is_not_retried_on_read_timeout(api, client):
    route = api.post(f"{BASE}/stage").mock(side_effect=[httpx.ReadTimeout("slow"), created()])

    with pytest.raises(LexisTransportError) as info:
        await client.stage(ddi_to_hpc())

    assert info.value.sent is True
    assert (info.value.method, info.value.path) == ("POST", "/staging/stage")
    assert route.call_count == 1


async def test_stage_post_is_retried_on_connect_error(api, client):
    route = api.post(f"{BASE}/stage").mock(side_effect=[httpx.ConnectError("refused"), created()])

    assert await client.stage(ddi_to_hpc()) == RID
    assert route.call_count == 2
    assert sent_json(route, 1)["job_id"] == 4242


async def test_stage_post_connect_error_that_persists_is_a_transport_error_not_sent(api, client):
    route = api.post(f"{BASE}/stage").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(LexisTransportError) as info:
        await client.stage(ddi_to_hpc())

    assert info.value.sent is False
    assert route.call_count == 4


async def test_stage_post_is_retried_on_429_with_retry_after_zero(api, client):
    route = api.post(f"{BASE}/stage").mock(
        side_effect=[error(429, "slow down", headers={"Retry-After": "0"}), created()]
    )

    assert await client.stage(ddi_to_hpc()) == RID
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("code", "error_class"),
    [(400, LexisAPIError), (401, AuthenticationError), (404, NotFoundError)],
)
async def test_client_errors_are_not_retried_and_map_to_error_class(api, client, code, error_class):
    route = status_route(api).mock(return_value=error(code, "nope"))

    with pytest.raises(LexisAPIError) as info:
        await client.status(RID)

    assert type(info.value) is error_class
    assert info.value.status == code
    assert route.call_count == 1


async def test_400_message_contains_error_string(api, client):
    text = "Malformed request. encryption must be yes or no"
    route = api.post(f"{BASE}/stage").mock(return_value=error(400, text))

    with pytest.raises(LexisAPIError) as info:
        await client.stage(ddi_to_hpc())

    assert text in str(info.value)
    assert (info.value.service, info.value.method, info.value.path) == ("ddi", "POST", "/staging/stage")
    assert route.call_count == 1


# ---------------------------------------------------------------- token source


class TokenKeeper:
    """An async token source handing out the given tokens in turn (the last one repeats)."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0

    async def __call__(self) -> SecretStr:
        token = self.tokens[min(self.calls, len(self.tokens) - 1)]
        self.calls += 1
        return SecretStr(token)


def recording(responses: list[httpx.Response], seen: list[str]):
    """A side effect recording each request's Authorization header at the time it was sent."""
    answers = iter(responses)

    def effect(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return next(answers)

    return effect


async def test_async_callable_token_is_sent_as_bearer(api):
    route = status_route(api).mock(return_value=ok(IN_PROGRESS))

    async with make_client(TokenKeeper("tok-A")) as client:
        await client.status(RID)

    assert route.calls[0].request.headers["Authorization"] == "Bearer tok-A"


async def test_401_with_refreshed_token_resends_once_with_new_bearer(api):
    seen: list[str] = []
    route = api.post(f"{BASE}/stage").mock(
        side_effect=recording([error(401, "inactive token"), created()], seen)
    )
    keeper = TokenKeeper("tok-old", "tok-new")

    async with make_client(keeper) as client:
        assert await client.stage(ddi_to_hpc()) == RID

    assert seen == ["Bearer tok-old", "Bearer tok-new"]
    assert route.call_count == 2
    assert sent_json(route, 1)["source_system"] == "it4i_iRODS"


async def test_401_with_unchanged_token_is_authentication_error_after_one_request(api):
    route = status_route(api).mock(return_value=error(401, "inactive token"))
    keeper = TokenKeeper("tok-same")

    async with make_client(keeper) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.status(RID)

    assert info.value.status == 401
    assert route.call_count == 1
    assert keeper.calls == 2


async def test_401_again_after_refresh_is_authentication_error_after_two_requests(api):
    seen: list[str] = []
    route = status_route(api).mock(side_effect=recording([error(401, "bad"), error(401, "bad")], seen))

    async with make_client(TokenKeeper("tok-old", "tok-new")) as client:
        with pytest.raises(AuthenticationError):
            await client.status(RID)

    assert seen == ["Bearer tok-old", "Bearer tok-new"]
    assert route.call_count == 2


async def test_401_with_plain_secret_token_is_not_resent(api, client):
    route = api.post(f"{BASE}/stage").mock(return_value=error(401, "No Authorization header or wrong format"))

    with pytest.raises(AuthenticationError, match="No Authorization header or wrong format"):
        await client.stage(ddi_to_hpc())

    assert route.call_count == 1


# ---------------------------------------------------------------- secrets

TOKENS = [pytest.param(JWT_TOKEN, id="jwt"), pytest.param(TOKEN, id="opaque")]


def test_repr_shows_base_url_but_not_token():
    client = make_client()
    assert repr(client) == "DDIStagingClient(base_url='https://ddi.test/staging/')"
    assert TOKEN not in repr(client)


@pytest.mark.parametrize("token", TOKENS)
async def test_token_echoed_in_error_body_is_not_in_exception(api, token):
    api.post(f"{BASE}/stage").mock(return_value=error(400, f"Malformed request. token {token} rejected"))

    async with make_client(SecretStr(token)) as client:
        with pytest.raises(LexisAPIError) as info:
            await client.stage(ddi_to_hpc())

    assert "Malformed request. token" in str(info.value)
    assert token not in str(info.value)
    assert token not in info.value.body


@pytest.mark.parametrize("token", TOKENS)
async def test_token_echoed_in_401_body_is_not_in_exception(api, token):
    api.get(f"{BASE}/info").mock(return_value=error(401, f"inactive token {token}"))

    async with make_client(SecretStr(token)) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.info()

    assert token not in str(info.value)
    assert token not in repr(info.value)
    assert token not in info.value.body


@pytest.mark.parametrize("token", TOKENS)
async def test_token_never_in_log_records_across_retries_and_errors(api, caplog, token):
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="lexis_prefect")
    status_route(api).mock(
        side_effect=[error(503, f"busy, token {token}"), ok(IN_PROGRESS), ok(TRANSFER_COMPLETED)]
    )

    async with make_client(SecretStr(token)) as client:
        await client.wait(RID, poll=FAST_POLL)

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "attempt 1/4 failed" in logged  # the retry was logged, with the server's text
    assert "HTTP Request: GET" in logged
    assert token not in logged


async def test_transport_error_message_quotes_method_and_path_but_not_token(api):
    api.get(f"{BASE}/info").mock(side_effect=httpx.ReadTimeout("timed out"))

    async with make_client(retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(LexisTransportError) as info:
            await client.info()

    assert str(info.value) == "ddi GET /staging/info: no response (ReadTimeout: timed out)"
    assert TOKEN not in str(info.value)


# ---------------------------------------------------------------- timeouts


def test_default_timeout_is_30s_read_10s_connect():
    client = make_client()
    timeout = client._http.timeout
    assert timeout.read == 30.0
    assert timeout.connect == 10.0
    assert timeout.write == 30.0
    assert timeout.pool == 30.0


def test_custom_timeout_is_passed_to_httpx():
    client = make_client(timeout=httpx.Timeout(5.0, connect=2.0))
    assert (client._http.timeout.read, client._http.timeout.connect) == (5.0, 2.0)


def test_non_http_base_url_is_rejected():
    with pytest.raises(ValueError, match="base_url must be an http"):
        DDIStagingClient("ddi.test/staging", SecretStr(TOKEN))
