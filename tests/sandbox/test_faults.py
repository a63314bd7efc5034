"""Fault injection (PUT /_sandbox/faults): what each fault looks like on the wire, and that the
library's clients, used the way a careful caller uses them, finish a whole run through faults."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import SecretStr

from lexis_prefect import (
    AAIClient,
    DDIStagingClient,
    HEAppEClient,
    LexisAPIError,
    LexisError,
    LexisTransportError,
    PollPolicy,
    RetryPolicy,
)
from lexis_prefect.models import DatasetMetadata, JobSpecification, StageRequest, TaskSpecification
from lexis_prefect.models.ddi import dataset_path, zone_path
from lexis_prefect.models.heappe import CommandTemplateParameterValue, JobState, SubmittedJobInfo
from lexis_prefect.sandbox import DEMO_DATASET_ID, SandboxProcess

T = TypeVar("T")
OIDC = "/auth/realms/LEXIS_AAI/protocol/openid-connect"
RETRY = RetryPolicy(backoff_seconds=0.05)  # the default policy, only faster
POLL = PollPolicy(interval_seconds=0.1, max_interval_seconds=0.3)
INJECTED_STATUSES = (502, 503, 504)


@pytest.fixture(scope="module")
def sb():
    with SandboxProcess("--job-seconds", "1") as sandbox:
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        yield sandbox


@pytest.fixture(autouse=True)
def no_faults_left(sb):
    """Each test starts without faults, and leaves a sandbox that answers once they are cleared."""
    sb.set_faults()
    yield
    sb.set_faults()
    assert httpx.get(f"{sb.url}/staging/", timeout=10).status_code == 200


# ---------------------------------------------------------------- raw helpers


def access_token(sb: SandboxProcess) -> str:
    form = {"grant_type": "password", "client_id": "lexis-prefect", "username": "demo", "password": "demo"}
    response = httpx.post(f"{sb.url}{OIDC}/token", data=form, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def session(sb: SandboxProcess) -> str:
    credentials = {"UserName": "demo", "OpenIdAccessToken": access_token(sb)}
    response = heappe(sb, "POST", "UserAndLimitationManagement/AuthenticateLexisToken", json={"Credentials": credentials})
    assert response.status_code == 200, response.text
    return response.json()


def heappe(sb: SandboxProcess, method: str, action: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{sb.url}/heappe/{action}", timeout=10, **kwargs)


def staging_info(sb: SandboxProcess, token: str) -> httpx.Response:
    return httpx.get(f"{sb.staging_url}/info", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def injected(sb: SandboxProcess) -> int:
    return sb.control("GET", "faults")["injected"]


# ---------------------------------------------------------------- single faults, raw


def test_staging_fault_is_a_5xx_with_the_staging_error_body(sb):
    token = access_token(sb)
    sb.set_faults(error_rate=1.0, paths=["/staging/*"])
    for _ in range(5):
        response = staging_info(sb, token)
        assert response.status_code in INJECTED_STATUSES
        body = response.json()
        assert set(body) == {"status", "errorString"}, body
        assert body["status"] == str(response.status_code)


def test_faults_never_touch_the_control_api(sb):
    sb.set_faults(error_rate=1.0)  # every emulated path
    for path in ("health", "faults", "jobs", "datasets", "config"):
        assert httpx.get(f"{sb.url}/_sandbox/{path}", timeout=10).status_code == 200
    assert sb.control("GET", "faults")["error_rate"] == 1.0


def test_staging_faults_leave_heappe_and_aai_alone(sb):
    sb.set_faults(error_rate=1.0, paths=["/staging/*"])
    code = session(sb)  # AAI token + HEAppE authentication
    response = heappe(sb, "GET", "ClusterInformation/ListAvailableClusters", params={"sessionCode": code})
    assert response.status_code == 200
    assert response.json()[0]["Name"] == "Karolina"


def test_injected_count_grows_with_each_fault(sb):
    token = access_token(sb)
    before = injected(sb)
    sb.set_faults(error_rate=1.0, paths=["/staging/info"])
    for _ in range(3):
        assert staging_info(sb, token).status_code in INJECTED_STATUSES
    assert injected(sb) == before + 3


def test_rate_limit_is_429_with_retry_after(sb):
    token = access_token(sb)
    sb.set_faults(rate_limit_rate=1.0, retry_after_seconds=7, paths=["/staging/*"])
    response = staging_info(sb, token)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["status"] == "429"


def test_drop_cuts_the_connection_mid_answer(sb):
    token = access_token(sb)
    sb.set_faults(drop_rate=1.0, paths=["/staging/*"])
    with pytest.raises(httpx.RemoteProtocolError):
        staging_info(sb, token)
    sb.set_faults()
    assert staging_info(sb, token).status_code == 200


def test_latency_delays_every_call(sb):
    token = access_token(sb)
    sb.set_faults(latency_seconds=0.3)
    started = time.monotonic()
    response = staging_info(sb, token)
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200  # late, but answered


# ---------------------------------------------------------------- a whole run through faults


def transient(exc: LexisError) -> bool:
    """No answer, or a 'try again later' one: the call may or may not have been done."""
    return isinstance(exc, LexisTransportError) or (isinstance(exc, LexisAPIError) and exc.status >= 500)


async def until_answered(call: Callable[[], Awaitable[T]]) -> T:
    """A read whose loss costs only a repeat (a missed poll); anything but a transient failure is raised."""
    while True:
        try:
            return await call()
        except LexisError as exc:
            if not transient(exc):
                raise


async def create_once(heappe: HEAppEClient, spec: JobSpecification) -> SubmittedJobInfo:
    """CreateJob is not repeated by the client: after a lost answer, look the job up by its unique name first."""
    while True:
        try:
            return await heappe.create_job(spec)
        except LexisError as exc:
            if not transient(exc):
                raise
        found = [job for job in await heappe.list_jobs() if job.name == spec.name]
        if found:
            return found[0]


async def submit_once(heappe: HEAppEClient, job_id: int) -> None:
    """SubmitJob is not repeated by the client: after a lost answer, submit again only if still Configuring."""
    while True:
        try:
            await heappe.submit_job(job_id)
            return
        except LexisError as exc:
            if not transient(exc):
                raise
        if (await until_answered(lambda: heappe.job_info(job_id))).state != JobState.Configuring:
            return


async def stage(ddi: DDIStagingClient, request: StageRequest) -> str:
    """Submit a copy (again after a lost answer: a second identical copy is harmless) and wait for it."""
    while True:
        try:
            request_id = await ddi.stage(request)
            break
        except LexisError as exc:
            if not transient(exc):
                raise
    status = await until_answered(lambda: ddi.wait(request_id, poll=POLL))
    assert status.status == "Transfer completed"
    return status.target_path or ""


async def wait_for_end(heappe: HEAppEClient, job_id: int) -> SubmittedJobInfo:
    while not (info := await until_answered(lambda: heappe.job_info(job_id))).is_terminal:
        await asyncio.sleep(0.2)
    return info


async def test_full_run_completes_through_errors_and_drops(sb):
    name = f"through-faults-{uuid.uuid4().hex[:8]}"
    before = injected(sb)
    # All emulated paths. Calls are sequential, so up to the first poll the fault sequence is fixed by the
    # seed: with 12, the first CreateJob's answer is lost after the job was made (the look-up path runs).
    sb.set_faults(error_rate=0.2, drop_rate=0.05, seed=12)
    async with asyncio.timeout(45):
        async with AAIClient(sb.aai_url(), "lexis-prefect", retry=RETRY) as aai:
            token = (await aai.password_grant("demo", SecretStr("demo"))).access_token
        async with (
            HEAppEClient(sb.heappe_url(), token, retry=RETRY) as heappe,
            DDIStagingClient(sb.staging_url, token, retry=RETRY) as ddi,
        ):
            [cluster] = await heappe.list_available_clusters()
            node_type = cluster.node_types[0]
            project = node_type.projects[0]
            template = next(t for t in project.command_templates if t.name == "TestTemplate")
            task = TaskSpecification(
                name="task",
                max_cores=1,
                walltime_limit=60,
                cluster_node_type_id=node_type.id,
                command_template_id=template.id,
                template_parameter_values=[
                    CommandTemplateParameterValue(command_parameter_identifier="input_param", parameter_value="faults")
                ],
            )
            spec = JobSpecification(
                name=name, project_id=project.id, cluster_id=cluster.id, file_transfer_method_id=cluster.id, tasks=[task]
            )
            job = await create_once(heappe, spec)
            task_id = job.tasks[0].id
            hpc = {"heappe_url": sb.heappe_url(), "job_id": job.id, "task_id": task_id}
            # HPC paths are absolute on the cluster, below HEAppE's SharedBasepath (the job directory).
            directory = await until_answered(lambda: heappe.job_directory(job.id))
            await stage(
                ddi,
                StageRequest(
                    source_system="your-resource",
                    source_path=dataset_path(DEMO_DATASET_ID, "myproject"),
                    target_system="karolina_scratch",
                    target_path=directory.task_path(task_id, "inputs"),
                    **hpc,
                ),
            )
            await submit_once(heappe, job.id)
            assert (await wait_for_end(heappe, job.id)).state == JobState.Finished
            output = await stage(
                ddi,
                StageRequest(
                    source_system="karolina_scratch",
                    source_path=directory.task_path(task_id, "results"),
                    target_system="your-resource",
                    target_path=zone_path("project", "myproject"),
                    metadata=DatasetMetadata(title="through faults"),
                    **hpc,
                ),
            )
            sb.set_faults()
            staged_in = await heappe.download_file(job.id, f"{task_id}/inputs/input.txt")
    assert staged_in == b"LEXIS sandbox demo input\n"
    assert sb.dataset_files(output.rsplit("/", 1)[-1]) == {"result.txt": "result for faults\n"}
    assert [(j["name"], j["state"]) for j in sb.jobs() if j["name"] == name] == [(name, JobState.Finished)]
    assert injected(sb) > before


# ---------------------------------------------------------------- faults and state


def test_faulted_create_job_leaves_only_complete_jobs(sb):
    code = session(sb)
    [cluster] = heappe(sb, "GET", "ClusterInformation/ListAvailableClusters", params={"sessionCode": code}).json()
    node_type = cluster["NodeTypes"][0]
    name = f"faulted-create-{uuid.uuid4().hex[:8]}"
    task = {
        "Name": "task",
        "MaxCores": 1,
        "WalltimeLimit": 60,
        "ClusterNodeTypeId": node_type["Id"],
        "CommandTemplateId": node_type["Projects"][0]["CommandTemplates"][0]["Id"],
        "TemplateParameterValues": [{"CommandParameterIdentifier": "input_param", "ParameterValue": "x"}],
        "ProgressFile": "progress.txt",  # required by HEAppE's JobManagementValidator
        "LogFile": "log.txt",
    }
    spec = {
        "Name": name,
        "ProjectId": node_type["Projects"][0]["Id"],
        "ClusterId": cluster["Id"],
        "FileTransferMethodId": cluster["Id"],
        "Tasks": [task],
    }
    sb.set_faults(error_rate=1.0, paths=["/heappe/JobManagement/CreateJob"], seed=3)
    statuses = [
        heappe(sb, "POST", "JobManagement/CreateJob", json={"SessionCode": code, "JobSpecification": spec}).status_code
        for _ in range(6)
    ]
    sb.set_faults()
    assert all(status in INJECTED_STATUSES for status in statuses), statuses
    recorded = [job for job in sb.jobs() if job["name"] == name]
    assert 0 < len(recorded) < 6  # faults strike before or after the work; this seed does both
    for job in recorded:
        info = heappe(sb, "GET", "JobManagement/CurrentInfoForJob", params={"sessionCode": code, "submittedJobInfoId": job["id"]})
        assert info.status_code == 200, info.text
        assert (info.json()["Name"], info.json()["State"]) == (name, JobState.Configuring)
        assert [t["Id"] for t in info.json()["Tasks"]] == [t["id"] for t in job["tasks"]] != []
    listed = heappe(sb, "GET", "JobManagement/ListJobsForCurrentUser", params={"sessionCode": code}).json()
    assert sorted(j["Id"] for j in listed if j["Name"] == name) == sorted(j["id"] for j in recorded)
    # A job created behind a fault is a whole job: it runs.
    first = recorded[0]["id"]
    assert heappe(sb, "PUT", "JobManagement/SubmitJob", json={"SessionCode": code, "CreatedJobInfoId": first}).status_code == 200
    deadline = time.monotonic() + 10
    while (job := next(j for j in sb.jobs() if j["id"] == first))["state"] != JobState.Finished:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
