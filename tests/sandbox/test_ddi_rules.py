"""The sandbox DDI refuses what the published staging API refuses, the way it refuses it.

One test per rule of the DDI table in docs/lexis-contract.md. Source: lexis-project/ddi-service-apis @ 9e96c41
(below "DDI"): staging/staging/{views,validate_input,verifyMetadata,staging_api,irods_transfer,cp_ssh}.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lexis_prefect import DDIStagingClient, StagingFailedError
from lexis_prefect.models import DatasetMetadata, JobState, StageRequest
from lexis_prefect.models.ddi import FAILED_PREFIX, IN_PROGRESS, QUEUED, dataset_path, zone_path
from lexis_prefect.sandbox import DEMO_DATASET_ID, SandboxProcess
from tests.sandbox.conftest import FAST_POLL, Kit, login
from tests.sandbox.test_bad_input import stage_body as body  # a valid DDI -> iRODS stage body

STORAGE, IRODS, SCRATCH = "your-resource", "it4i_iRODS", "karolina_scratch"
ZONE = "IT4ILexisZone"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess("--job-seconds", "1", "--user", "demo:demo", "--user", "other:other") as sb:
        sb.settings(queue_seconds=0.1, staging_seconds=0.1)
        yield sb


@pytest.fixture(scope="module")
def http(sandbox: SandboxProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def bearer(sandbox: SandboxProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.demo_token().get_secret_value()}"}


def refused(response: httpx.Response, error: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"status": "400", "errorString": error}


def outcome(http: httpx.Client, request_id: str, operation: str = "stage", timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = http.get(f"/staging/{operation}/{request_id}").json()  # DDI views.py: no token read
        if answer["status"] not in (QUEUED, IN_PROGRESS) or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def submitted(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.json()["request_id"]


# ---------------------------------------------------------------- POST /stage: validate_input.py


@pytest.mark.parametrize("key", ["source_system", "target_system", "source_path", "target_path", "encryption", "compression"])
def test_every_stage_key_is_required(http, bearer, key):
    request = body()
    del request[key]
    refused(http.post("/staging/stage", headers=bearer, json=request), "Malformed request. 'Input is not valid. Please check source and target information'")


@pytest.mark.parametrize("flag", ["encryption", "compression"])
@pytest.mark.parametrize("value", ["Yes", "true", True, None, ""])
def test_flags_are_exactly_yes_or_no(http, bearer, flag, value):
    refused(
        http.post("/staging/stage", headers=bearer, json=body(**{flag: value})),
        f"Malformed request. 'Input is not valid. Check {flag} values. Allowed values are yes or no'",
    )


def test_unknown_system_is_refused_like_a_missing_key(http, bearer):
    refused(
        http.post("/staging/stage", headers=bearer, json=body(target_system="atlantis_iRODS")),
        "Malformed request. 'Input is not valid. Please check source and target information'",
    )


@pytest.mark.parametrize("key", ["task_id", "job_id", "heappe_url"])
def test_an_hpc_side_needs_task_id_job_id_and_heappe_url(http, bearer, sandbox, key):
    hpc = {"task_id": 1, "job_id": 1, "heappe_url": sandbox.heappe_url()}
    del hpc[key]
    request = body(target_system=SCRATCH, target_path="/tmp/x", **hpc)
    refused(http.post("/staging/stage", headers=bearer, json=request), "Malformed request. 'Input is not valid. HEAppE job and task id are required'")


def test_an_irods_target_needs_metadata(http, bearer):
    request = body()
    del request["metadata"]
    refused(http.post("/staging/stage", headers=bearer, json=request), "Malformed request. 'Input is not valid. Metadata are required'")


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"AlternateIdentifier": [["only-one"]]}, "Metadata AlternateIdentifier should be an array of pairs of strings"),
        ({"AlternateIdentifier": [["type", 7]]}, "Metadata AlternateIdentifier should be an array of pairs of strings"),
        ({"AlternateIdentifier": ["type", "id"]}, "Metadata AlternateIdentifier should be an array of pairs of strings"),
        ({"AlternateIdentifier": "type:id"}, "Metadata AlternateIdentifier is not an array"),
        ({"title": ["a list"]}, "Metadata title is not a string"),
        ({"creator": "one string"}, "Metadata creator is not an array"),
    ],
)
def test_metadata_is_verified_as_verify_metadata_does(http, bearer, metadata, error):
    response = http.post("/staging/stage", headers=bearer, json=body(metadata=metadata))
    refused(response, f"Malformed request. Metadata is not valid: {error}")


def test_extra_keys_are_ignored(http, bearer):
    request_id = submitted(http.post("/staging/stage", headers=bearer, json=body(colour="blue", metadata={"title": "t", "x": 1})))
    assert outcome(http, request_id)["status"] == "Transfer completed"


def test_body_that_is_not_an_object_is_a_400(http, bearer):
    response = http.post("/staging/stage", headers=bearer, json=[1, 2])
    refused(response, "Malformed request. list indices must be integers or slices, not str")


def test_stage_answers_405_to_other_methods(http, bearer):
    response = http.get("/staging/stage", headers=bearer)
    assert (response.status_code, response.json()) == (405, {"status": "405", "errorString": "Method Not Allowed"})


# ---------------------------------------------------------------- iRODS targets: irods_transfer.py


def test_a_stage_into_the_project_collection_makes_a_new_dataset_and_answers_its_absolute_path(http, bearer, sandbox):
    answer = outcome(http, submitted(http.post("/staging/stage", headers=bearer, json=body())))
    assert answer["status"] == "Transfer completed"
    prefix = f"/{ZONE}/{zone_path('project', 'myproject')}/"
    assert answer["target_path"].startswith(prefix)
    dataset_id = answer["target_path"].removeprefix(prefix)
    assert uuid.UUID(dataset_id).version == 1  # uuid.uuid1()
    assert sandbox.dataset_files(dataset_id) == {"input.txt": "LEXIS sandbox demo input\n", "data/sample.csv": "x,y\n1,2\n3,4\n"}


def test_a_single_file_source_is_answered_with_its_name(http, bearer):
    source = dataset_path(DEMO_DATASET_ID, "myproject", "input.txt")
    answer = outcome(http, submitted(http.post("/staging/stage", headers=bearer, json=body(source_path=source))))
    assert answer["target_path"].startswith(f"/{ZONE}/{zone_path('project', 'myproject')}/")
    assert answer["target_path"].endswith("/input.txt")


def test_a_missing_irods_source_fails_the_request(http, bearer):
    answer = outcome(http, submitted(http.post("/staging/stage", headers=bearer, json=body(source_path=dataset_path(str(uuid.uuid4()), "myproject")))))
    assert answer == {"status": f"{FAILED_PREFIX}Source path doesn't exist"}


# ---------------------------------------------------------------- HPC sides: staging_api.py, cp_ssh.py


async def finished_job(kit: Kit):
    job = await kit.create(name="rules")
    await kit.heappe.submit_job(job.id)
    assert (await kit.wait_job(job.id)).state is JobState.Finished
    return job


def stage_in_request(kit: Kit, job: Any, target_path: str, **overrides: Any) -> StageRequest:
    hpc = {**kit.hpc_side(job), **overrides}
    return StageRequest(
        source_system=STORAGE,
        source_path=dataset_path(DEMO_DATASET_ID, "myproject"),
        target_system=hpc.pop("system"),
        target_path=target_path,
        **hpc,
    )


async def test_stage_in_answers_host_colon_slash_path(kit: Kit):
    job = await kit.create(name="rules-in")
    directory = await kit.heappe.job_directory(job.id)
    target = directory.task_path(job.tasks[0].id, "inputs")
    done = await kit.ddi.wait(await kit.stage_in(job), poll=FAST_POLL)
    assert done.target_path == f"{directory.server_hostname}:/{target}"  # `heappe_target + ":/" + target_path`
    assert directory.path.startswith("/") and directory.server_hostname == "login.karolina.sandbox"


@pytest.mark.parametrize("path", ["inputs", "/etc", "/tmp", "../inputs"])
async def test_an_hpc_path_outside_the_users_job_directories_fails_the_request(kit: Kit, path):
    job = await kit.create(name="rules-outside")
    request = stage_in_request(kit, job, path)
    with pytest.raises(StagingFailedError) as info:
        await kit.ddi.wait(await kit.ddi.stage(request), poll=FAST_POLL)
    assert "not in a HEAppE job directory of demo" in str(info.value)


async def test_an_hpc_path_in_another_users_job_fails_the_request(kit: Kit, sandbox: SandboxProcess):
    job = await kit.create(name="rules-mine")
    theirs = (await kit.heappe.job_directory(job.id)).task_path(job.tasks[0].id, "inputs")
    async with DDIStagingClient(sandbox.staging_url, await login(sandbox, "other", "other")) as other:
        request = stage_in_request(kit, job, theirs)
        with pytest.raises(StagingFailedError, match="HEAppE job ID is invalid"):
            await other.wait(await other.stage(request), poll=FAST_POLL)


async def test_a_wrong_heappe_url_fails_the_request(kit: Kit):
    job = await kit.create(name="rules-url")
    # the sandbox compares the URL's path only
    request = stage_in_request(kit, job, await kit.job_path(job, "inputs"), heappe_url=f"{kit.sandbox.url}/no-heappe-here")
    with pytest.raises(StagingFailedError, match="HEAppE Authentication failed"):
        await kit.ddi.wait(await kit.ddi.stage(request), poll=FAST_POLL)


async def test_a_stage_out_without_metadata_fails_inside_the_task(kit: Kit, http, bearer):
    # validate_input.py checks metadata only when no side is HPC; nfs_to_irods then reads it: KeyError.
    job = await finished_job(kit)
    hpc = kit.hpc_side(job)
    request = {
        "source_system": hpc.pop("system"),
        "source_path": await kit.job_path(job, "results"),
        "target_system": STORAGE,
        "target_path": zone_path("project", "myproject"),
        "encryption": "no",
        "compression": "no",
        **hpc,
    }
    answer = outcome(http, submitted(http.post("/staging/stage", headers=bearer, json=request)))
    assert answer == {"status": f"{FAILED_PREFIX}'metadata'"}


async def test_a_failed_stage_out_leaves_its_tagged_dataset_behind(kit: Kit, sandbox: SandboxProcess):
    # irods_transfer.py creates the uuid1 collection (and its metadata) before copying into it.
    job = await finished_job(kit)
    hpc = kit.hpc_side(job)
    title = f"leftover-{uuid.uuid4()}"
    request = StageRequest(
        source_system=hpc.pop("system"),
        source_path=await kit.job_path(job, "no-such-dir"),
        target_system=STORAGE,
        target_path=zone_path("project", "myproject"),
        metadata=DatasetMetadata(title=title),
        **hpc,
    )
    with pytest.raises(StagingFailedError, match="Source path doesn't exist"):
        await kit.ddi.wait(await kit.ddi.stage(request), poll=FAST_POLL)
    [left] = [d for d in sandbox.control("GET", "datasets") if d["metadata"].get("title") == title]
    assert sandbox.dataset_files(left["id"]) == {}


# ---------------------------------------------------------------- /delete: views.py, staging_api.py


def test_delete_by_post_is_the_500_of_a_view_that_returned_none(http, bearer):
    response = http.post("/staging/delete", headers=bearer, json={"target_system": IRODS, "target_path": "project/x/y"})
    assert response.status_code == 500


@pytest.mark.parametrize("request_body", [{"target_system": IRODS}, {"target_path": "project/x/y"}, {"target_system": "atlantis", "target_path": "a/b/c"}])
def test_delete_needs_target_system_and_target_path(http, bearer, request_body):
    response = http.request("DELETE", "/staging/delete", headers=bearer, json=request_body)
    refused(response, "Malformed request. Required parameters not provided")


@pytest.mark.parametrize("path", ["project", zone_path("project", "myproject"), ""])
def test_delete_of_four_parts_or_fewer_is_refused(http, bearer, path):
    request_id = submitted(http.request("DELETE", "/staging/delete", headers=bearer, json={"target_system": IRODS, "target_path": path}))
    assert outcome(http, request_id, "delete") == {"status": f"{FAILED_PREFIX}You have no rights to delete this directory"}


def test_delete_of_a_dataset_by_its_relative_path(http, bearer, sandbox):
    answer = outcome(http, submitted(http.post("/staging/stage", headers=bearer, json=body())))
    dataset_id = answer["target_path"].rsplit("/", 1)[-1]
    relative = f"{zone_path('project', 'myproject')}/{dataset_id}"
    request_id = submitted(http.request("DELETE", "/staging/delete", headers=bearer, json={"target_system": IRODS, "target_path": relative}))
    assert outcome(http, request_id, "delete") == {"status": "Data deleted"}
    assert dataset_id not in {d["id"] for d in sandbox.control("GET", "datasets")}


def test_status_reads_need_no_token(http, bearer):
    request_id = submitted(http.post("/staging/stage", headers=bearer, json=body()))
    assert outcome(http, request_id)["status"] == "Transfer completed"  # `outcome` sends no token
