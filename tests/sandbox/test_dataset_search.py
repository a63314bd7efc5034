"""The sandbox's dataset API search (`POST /dataset/search/metadata`), driven by `DDIDatasetClient`.

What a stage-out's exactly-once check needs: a stage-out tagged with an `AlternateIdentifier`
marker is found by that marker, and by nothing else. Matching and visibility are the sandbox's
own choices [I] (see `DDIState.search`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from lexis_prefect import DDIDatasetClient, LexisAPIError
from lexis_prefect.blocks import LexisCredentials
from lexis_prefect.models import DatasetMetadata, JobState, StageRequest
from lexis_prefect.models.ddi import alternate_identifier_query, dataset_path, zone_path
from lexis_prefect.sandbox import DEMO_DATASET_ID, SandboxProcess
from tests.sandbox.conftest import FAST_POLL, FAST_RETRY, Kit, login

IRODS = "it4i_iRODS"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    """Two users, so that one's user-access datasets can be hidden from the other."""
    with SandboxProcess("--job-seconds", "1", "--user", "demo:demo", "--user", "other:other") as sb:
        sb.settings(queue_seconds=0.1, staging_seconds=0.1)
        yield sb


@pytest.fixture
async def datasets(sandbox: SandboxProcess) -> AsyncIterator[DDIDatasetClient]:
    """The demo user's search client, configured as a flow finds it: from the sandbox's LEXIS_* variables."""
    credentials = LexisCredentials.from_env(sandbox.environment())
    client = credentials.get_client("dataset", access_token=await login(sandbox))
    client.retry = FAST_RETRY
    async with client:
        yield client


def marker() -> str:
    return f"test-{uuid.uuid4()}"


async def copy_demo_dataset(kit: Kit, metadata: DatasetMetadata, target_path: str) -> str:
    """A DDI -> iRODS copy (no HPC job needed): creates a dataset; returns its id."""
    request = StageRequest(
        source_system="your-resource",
        source_path=dataset_path(DEMO_DATASET_ID, "myproject"),
        target_system=IRODS,
        target_path=target_path,
        metadata=metadata,
    )
    done = await kit.ddi.wait(await kit.ddi.stage(request), poll=FAST_POLL)
    return done.target_path.rsplit("/", 1)[-1]


def test_the_sandbox_says_where_its_dataset_api_is_and_its_environment_names_it(sandbox: SandboxProcess):
    assert sandbox.control("GET", "config")["dataset_path"] == "/dataset"
    assert sandbox.environment()["LEXIS_DATASET_URL"] == sandbox.dataset_url == f"{sandbox.url}/dataset"


async def test_a_stage_out_tagged_with_a_marker_is_found_by_it_and_not_by_another(
    kit: Kit, datasets: DDIDatasetClient
):
    job = await kit.create(name="marked-stage-out")
    await kit.heappe.submit_job(job.id)
    assert (await kit.wait_job(job.id)).state is JobState.Finished
    tag = marker()
    hpc = kit.hpc_side(job)
    request = StageRequest(
        source_system=hpc.pop("system"),
        source_path="results",
        target_system="your-resource",
        target_path=zone_path("project", "myproject"),
        metadata=DatasetMetadata(title="marked output", **alternate_identifier_query(tag)),
        **hpc,
    )
    out = await kit.ddi.wait(await kit.ddi.stage(request), poll=FAST_POLL)
    dataset_id = out.target_path.rsplit("/", 1)[-1]

    [hit] = await datasets.search(alternate_identifier_query(tag))

    assert hit.location.internal_id == dataset_id
    assert (hit.location.access, hit.location.project, hit.location.zone) == ("project", "myproject", "your-resource")
    assert hit.metadata["AlternateIdentifier"] == [[tag, "lexis-prefect-stage-out"]]
    assert hit.metadata["title"] == "marked output"
    assert await datasets.search(alternate_identifier_query(marker())) == []
    assert await datasets.search(alternate_identifier_query(tag, "DOI")) == []
    # every key of the query must match: the marker with another title finds nothing
    assert await datasets.search({**alternate_identifier_query(tag), "title": "another"}) == []
    assert len(await datasets.search({**alternate_identifier_query(tag), "title": "marked output"})) == 1


async def test_two_stage_outs_with_two_markers_are_found_apart(kit: Kit, datasets: DDIDatasetClient):
    first, second = marker(), marker()
    first_id = await copy_demo_dataset(kit, DatasetMetadata(title="same", **alternate_identifier_query(first)), "")
    second_id = await copy_demo_dataset(kit, DatasetMetadata(title="same", **alternate_identifier_query(second)), "")

    assert [h.location.internal_id for h in await datasets.search(alternate_identifier_query(first))] == [first_id]
    assert [h.location.internal_id for h in await datasets.search(alternate_identifier_query(second))] == [second_id]
    # outside the project/user layout: no known project [I]
    [hit] = await datasets.search(alternate_identifier_query(second))
    assert (hit.location.access, hit.location.project, hit.location.zone) == ("project", None, IRODS)


async def test_a_marker_among_other_alternate_identifiers_is_not_matched_alone(kit: Kit, datasets: DDIDatasetClient):
    """The sandbox compares a key's whole value [I]: the marker must be a stage-out's only identifier."""
    tag = marker()
    both = [[tag, "lexis-prefect-stage-out"], ["10.1234/x", "DOI"]]
    dataset_id = await copy_demo_dataset(kit, DatasetMetadata(title="two ids", AlternateIdentifier=both), "")

    assert await datasets.search(alternate_identifier_query(tag)) == []
    [hit] = await datasets.search({"AlternateIdentifier": both})
    assert hit.location.internal_id == dataset_id


async def test_a_users_own_dataset_is_hidden_from_another_user_but_project_ones_are_not(
    kit: Kit, datasets: DDIDatasetClient, sandbox: SandboxProcess
):
    own, shared = marker(), marker()
    own_id = await copy_demo_dataset(
        kit, DatasetMetadata(title="mine", **alternate_identifier_query(own)), zone_path("user", "", "demo")
    )
    shared_id = await copy_demo_dataset(
        kit, DatasetMetadata(title="ours", **alternate_identifier_query(shared)), zone_path("project", "myproject")
    )

    [hit] = await datasets.search(alternate_identifier_query(own))
    assert hit.location.internal_id == own_id
    assert (hit.location.access, hit.location.project) == ("user", None)

    other_url = LexisCredentials.from_env(sandbox.environment()).endpoints.dataset_api_url()
    async with DDIDatasetClient(other_url, await login(sandbox, "other", "other"), retry=FAST_RETRY) as other:
        assert await other.search(alternate_identifier_query(own)) == []
        # the sandbox has no project membership: every user sees every project's datasets [I]
        assert [h.location.internal_id for h in await other.search(alternate_identifier_query(shared))] == [shared_id]


def test_search_needs_a_bearer_token_and_a_json_object(sandbox: SandboxProcess):
    url = f"{sandbox.dataset_url}/search/metadata"
    token = sandbox.demo_token().get_secret_value()
    bearer = {"Authorization": f"Bearer {token}"}

    unauthenticated = httpx.post(url, json={"title": "x"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == {"status": "401", "errorString": "No Authorization header or wrong format"}
    assert httpx.post(url, json={}, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    for body in (b"[1, 2]", b'"title"', b"null", b"{not json"):
        bad = httpx.post(url, content=body, headers={**bearer, "Content-Type": "application/json"})
        assert bad.status_code == 400, body
        assert bad.json()["status"] == "400" and bad.json()["errorString"].startswith("Malformed request."), body
    wrong_method = httpx.get(url, headers=bearer)
    assert wrong_method.status_code == 405 and wrong_method.json()["status"] == "405"


async def test_faults_reach_the_dataset_api_in_its_error_shape(sandbox: SandboxProcess, datasets: DDIDatasetClient):
    sandbox.set_faults(error_rate=1.0, paths=["/dataset/*"], seed=1)
    try:
        with pytest.raises(LexisAPIError) as info:
            await datasets.search(alternate_identifier_query(marker()))
    finally:
        sandbox.set_faults()
    assert info.value.status in (502, 503, 504)
    assert "injected by the sandbox" in str(info.value)  # the errorString of a DDI-shaped body
    assert await datasets.search(alternate_identifier_query(marker())) == []
