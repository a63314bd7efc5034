"""The sandbox's dataset API search (`POST /dataset/search/metadata`), driven by `DDIDatasetClient`.

What a stage-out's exactly-once check needs: a stage-out tagged with an `AlternateIdentifier`
marker is found by that marker, and by nothing else. Matching is the published dataset API's
(ddi-service-apis 9e96c41 irodsapi/demo/dataset.py `CollChecks`: string regexes, `re.search`);
visibility without project membership is the sandbox's choice [I] (see `sandbox.datasets.search`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from lexis_prefect import DDIDatasetClient, LexisAPIError
from lexis_prefect.blocks import LexisCredentials
from lexis_prefect.models import DatasetMetadata, JobState, StageRequest
from lexis_prefect.models.ddi import alternate_identifier_metadata, alternate_identifier_query, dataset_path, zone_path
from lexis_prefect.sandbox import DEMO_DATASET_ID, SandboxProcess
from tests.sandbox.conftest import FAST_POLL, FAST_RETRY, Kit, login

IRODS = "it4i_iRODS"
ZONE = "IT4ILexisZone"  # the sandbox's zone of it4i_iRODS (location it4i)


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
    assert done.target_path.startswith(f"/{ZONE}/{target_path}/"), done.target_path  # absolute, a new collection
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
        source_path=await kit.job_path(job, "results"),
        target_system="your-resource",
        target_path=zone_path("project", "myproject"),
        metadata=DatasetMetadata(title="marked output", **alternate_identifier_metadata(tag)),
        **hpc,
    )
    out = await kit.ddi.wait(await kit.ddi.stage(request), poll=FAST_POLL)
    dataset_id = out.target_path.rsplit("/", 1)[-1]

    [hit] = await datasets.search(alternate_identifier_query(tag))

    assert hit.location.internal_id == dataset_id
    # `zone` is the iRODS zone name (dataset.py `gatherDataC`), the one the staging answer starts with
    assert (hit.location.access, hit.location.project, hit.location.zone) == ("project", "myproject", "YOURLOCATIONLexisZone")
    assert out.target_path == f"/{hit.location.zone}/{zone_path('project', 'myproject')}/{dataset_id}"
    assert hit.metadata["AlternateIdentifier"] == [["lexis-prefect-stage-out", tag]]
    assert hit.metadata["title"] == "marked output"
    assert await datasets.search(alternate_identifier_query(marker())) == []
    assert await datasets.search(alternate_identifier_query(tag, "DOI")) == []
    # every key of the query must match: the marker with another title finds nothing
    assert await datasets.search({**alternate_identifier_query(tag), "title": "another"}) == []
    assert len(await datasets.search({**alternate_identifier_query(tag), "title": "marked output"})) == 1
    # values are regexes searched case-insensitively (dataset.py `CollChecks`: re.search(..., re.IGNORECASE))
    assert len(await datasets.search({**alternate_identifier_query(tag), "title": "MARKED"})) == 1
    assert len(await datasets.search({**alternate_identifier_query(tag), "title": "^marked out.ut$"})) == 1
    # the identifier and its type are matched case-sensitively
    assert await datasets.search(alternate_identifier_query(tag.upper())) == []


async def test_two_stage_outs_with_two_markers_are_found_apart(kit: Kit, datasets: DDIDatasetClient):
    first, second = marker(), marker()
    project = zone_path("project", "myproject")
    first_id = await copy_demo_dataset(kit, DatasetMetadata(title="same", **alternate_identifier_metadata(first)), project)
    second_id = await copy_demo_dataset(kit, DatasetMetadata(title="same", **alternate_identifier_metadata(second)), project)

    assert [h.location.internal_id for h in await datasets.search(alternate_identifier_query(first))] == [first_id]
    assert [h.location.internal_id for h in await datasets.search(alternate_identifier_query(second))] == [second_id]


async def test_a_collection_outside_the_dataset_layout_is_not_listed(kit: Kit, datasets: DDIDatasetClient):
    # findColsAll lists only direct children of project/<hash>, public/<hash>, user/<hash>/<user>.
    tag = marker()
    request = StageRequest(
        source_system="your-resource",
        source_path=dataset_path(DEMO_DATASET_ID, "myproject"),
        target_system=IRODS,
        target_path=f"scratch/area/{uuid.uuid4()}",
        metadata=DatasetMetadata(title="elsewhere", **alternate_identifier_metadata(tag)),
    )
    done = await kit.ddi.wait(await kit.ddi.stage(request), poll=FAST_POLL)
    assert done.target_path == f"/{ZONE}/{request.target_path}"  # not 4 parts: written into as given
    assert await datasets.search(alternate_identifier_query(tag)) == []


async def test_a_marker_among_other_alternate_identifiers_is_matched_by_its_pair(kit: Kit, datasets: DDIDatasetClient):
    """dataset.py `CollChecks` tries each stored pair: the marker need not be the only one."""
    tag = marker()
    both = [["lexis-prefect-stage-out", tag], ["DOI", "10.1234/x"]]
    project = zone_path("project", "myproject")
    dataset_id = await copy_demo_dataset(kit, DatasetMetadata(title="two ids", AlternateIdentifier=both), project)

    assert [h.location.internal_id for h in await datasets.search(alternate_identifier_query(tag))] == [dataset_id]
    # identifier and type are matched within ONE pair: the marker's identifier with the DOI type is no hit
    assert await datasets.search(alternate_identifier_query(tag, "DOI")) == []
    assert [h.location.internal_id for h in await datasets.search(alternate_identifier_query("10.1234/x", "DOI"))] == [dataset_id]


async def test_a_users_own_dataset_is_hidden_from_another_user_but_project_ones_are_not(
    kit: Kit, datasets: DDIDatasetClient, sandbox: SandboxProcess
):
    own, shared = marker(), marker()
    # user/proj<md5>/<user> has 5 parts once the zone is prepended: the server writes INTO it, so a
    # dataset there is a collection named by the client (irods_transfer.py); a new one is created.
    own_collection = f"{zone_path('user', 'myproject', 'demo')}/{uuid.uuid4()}"
    request = StageRequest(
        source_system="your-resource",
        source_path=dataset_path(DEMO_DATASET_ID, "myproject"),
        target_system=IRODS,
        target_path=own_collection,
        metadata=DatasetMetadata(title="mine", **alternate_identifier_metadata(own)),
    )
    done = await kit.ddi.wait(await kit.ddi.stage(request), poll=FAST_POLL)
    assert done.target_path == f"/{ZONE}/{own_collection}"
    shared_id = await copy_demo_dataset(
        kit, DatasetMetadata(title="ours", **alternate_identifier_metadata(shared)), zone_path("project", "myproject")
    )

    [hit] = await datasets.search(alternate_identifier_query(own))
    assert hit.location.internal_id == own_collection.rsplit("/", 1)[-1]
    assert (hit.location.access, hit.location.project, hit.location.zone) == ("user", "myproject", ZONE)

    other_url = LexisCredentials.from_env(sandbox.environment()).endpoints.dataset_api_url()
    async with DDIDatasetClient(other_url, await login(sandbox, "other", "other"), retry=FAST_RETRY) as other:
        assert await other.search(alternate_identifier_query(own)) == []
        # the sandbox has no project membership: every user sees every project's datasets [I]
        assert [h.location.internal_id for h in await other.search(alternate_identifier_query(shared))] == [shared_id]


def test_search_needs_a_bearer_token_and_a_json_object_of_strings(sandbox: SandboxProcess):
    # Errors in the dataset API's own shape, `{"errorString": ...}` (irodsapi/demo/utils.py).
    url = f"{sandbox.dataset_url}/search/metadata"
    token = sandbox.demo_token().get_secret_value()
    bearer = {"Authorization": f"Bearer {token}"}

    unauthenticated = httpx.post(url, json={"title": "x"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == {"errorString": "Invalid Authorization"}  # utils.py `DecodeToken`
    rejected = httpx.post(url, json={}, headers={"Authorization": "Bearer nonsense"})
    assert (rejected.status_code, rejected.json()) == (401, {"errorString": "Inactive token"})
    not_json = httpx.post(url, content=b"{not json", headers={**bearer, "Content-Type": "application/json"})
    assert (not_json.status_code, not_json.json()) == (400, {"errorString": "Malformed request. Invalid JSON"})
    # CollChecks runs re.search on each value: anything but a string raises, an uncaught 500
    for body in (b"[1, 2]", b'"title"', b"null", b'{"title": ["x"]}', b'{"AlternateIdentifier": [["a", "b"]]}', b'{"title": "("}'):
        bad = httpx.post(url, content=body, headers={**bearer, "Content-Type": "application/json"})
        assert bad.status_code == 500, body
    # no hits is 200 [] (dataset.py `SearchMeta`), not 404
    nothing = httpx.post(url, json={"title": f"^{uuid.uuid4()}$"}, headers=bearer)
    assert (nothing.status_code, nothing.json()) == (200, [])
    wrong_method = httpx.get(url, headers=bearer)
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"errorString": "Method Not Allowed"})


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
