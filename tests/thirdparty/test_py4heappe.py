"""py4heappe, HEAppE's own OpenAPI-generated client, drives a sandbox job from authentication to deletion.

py4heappe 4.0.x targets HEAppE 6.5.x, the version the sandbox emulates (`WalltimeLimit` on the job,
lexis-api.md 4b); its v6 wrapper is used unchanged, as a LEXIS user would use it.
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

if sys.version_info < (3, 11):  # py4heappe requires Python >= 3.11; pyproject installs it from there on
    pytest.skip("py4heappe needs Python 3.11 or newer", allow_module_level=True)

from py4heappe.heappe_v6 import core as heappe
from py4heappe.heappe_v6.core.models import (
    AuthenticateLexisTokenModel,
    CommandTemplateParameterValueExt,
    CreateJobByProjectModel,
    DeleteJobModel,
    DownloadFileFromClusterModel,
    DownloadPartsOfJobFilesFromClusterModel,
    JobSpecificationExt,
    LexisCredentialsExt,
    SubmitJobModel,
    SynchronizableFilesExt,
    TaskFileOffsetExt,
    TaskSpecificationExt,
)

from lexis_prefect.sandbox import SandboxProcess

JOB_FINISHED, JOB_DELETED = 16, 256
STDOUT = SynchronizableFilesExt.NUMBER_3  # SynchronizableFiles.StandardOutputFile


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess("--job-seconds", "1") as sb:
        yield sb


@pytest.fixture
def api(sandbox: SandboxProcess) -> Iterator[heappe.ApiClient]:
    with heappe.ApiClient(heappe.Configuration(host=sandbox.heappe_url())) as client:
        yield client


def authenticate(api: heappe.ApiClient, sandbox: SandboxProcess, user: str = "demo") -> str:
    token = sandbox.demo_token(user, user).get_secret_value()
    credentials = LexisCredentialsExt(username=user, open_id_access_token=token)
    users = heappe.UserAndLimitationManagementApi(api)
    return users.heappe_user_and_limitation_management_authenticate_lexis_token_post(
        AuthenticateLexisTokenModel(credentials=credentials)
    )


def test_a_whole_job_through_py4heappe(api: heappe.ApiClient, sandbox: SandboxProcess):
    session = authenticate(api, sandbox)
    jobs, files = heappe.JobManagementApi(api), heappe.FileTransferApi(api)

    [cluster] = heappe.ClusterInformationApi(api).heappe_cluster_information_list_available_clusters_get(
        session_code=session
    )
    node_type = cluster.node_types[0]
    project = node_type.projects[0]
    template = next(t for t in project.command_templates if t.name == "TestTemplate")
    [parameter] = template.template_parameters
    task = TaskSpecificationExt(
        name="task",
        min_cores=1,
        max_cores=node_type.cores_per_node,
        walltime_limit=600,
        cluster_node_type_id=node_type.id,
        command_template_id=template.id,
        standard_output_file="stdout.txt",
        standard_error_file="stderr.txt",
        progress_file="progress.txt",
        log_file="log.txt",
        template_parameter_values=[
            CommandTemplateParameterValueExt(command_parameter_identifier=parameter.identifier, parameter_value="py4heappe")
        ],
    )
    spec = JobSpecificationExt(
        name="py4heappe job-1_a.b",
        project_id=project.id,
        cluster_id=cluster.id,
        file_transfer_method_id=cluster.file_transfer_method_ids[0],
        tasks=[task],
    )
    created = jobs.heappe_job_management_create_job_post(CreateJobByProjectModel(session_code=session, job_specification=spec))
    assert created.state == 1 and created.name == spec.name and len(created.tasks) == 1

    submitted = jobs.heappe_job_management_submit_job_put(SubmitJobModel(session_code=session, created_job_info_id=created.id))
    assert submitted.id == created.id and submitted.state == 2

    deadline = time.monotonic() + 30
    while (info := jobs.heappe_job_management_current_info_for_job_get(session_code=session, submitted_job_info_id=created.id)).state != JOB_FINISHED:
        assert info.state in (2, 4, 8) and time.monotonic() < deadline, info
        time.sleep(0.2)
    task_id = info.tasks[0].id
    assert info.tasks[0].state == JOB_FINISHED and info.end_time is not None

    [part] = files.heappe_file_transfer_download_parts_of_job_files_from_cluster_post(
        DownloadPartsOfJobFilesFromClusterModel(
            session_code=session,
            submitted_job_info_id=created.id,
            task_file_offsets=[TaskFileOffsetExt(submitted_task_info_id=task_id, file_type=STDOUT, offset=0)],
        )
    )
    assert "TestTemplate started with input_param=py4heappe" in part.content and "TestTemplate finished" in part.content
    assert part.file_type == STDOUT and part.submitted_task_info_id == task_id and part.relative_path.endswith("stdout.txt")

    changed = files.heappe_file_transfer_list_changed_files_for_job_get(session_code=session, submitted_job_info_id=created.id)
    names = {f.file_name for f in changed}
    result = next(name for name in names if name.endswith("results/result.txt"))
    assert all(f.last_modified_date is not None for f in changed)

    content = files.heappe_file_transfer_download_file_from_cluster_post(
        DownloadFileFromClusterModel(session_code=session, submitted_job_info_id=created.id, relative_file_path=result)
    )
    assert base64.b64decode(content) == b"result for py4heappe\n"

    answer = jobs.heappe_job_management_delete_job_delete(
        DeleteJobModel(session_code=session, submitted_job_info_id=created.id, archive_logs=False)
    )
    assert answer == "Job was deleted"
    info = jobs.heappe_job_management_current_info_for_job_get(session_code=session, submitted_job_info_id=created.id)
    assert info.state == JOB_DELETED


def test_an_invalid_session_code_is_an_api_exception_401(api: heappe.ApiClient):
    with pytest.raises(heappe.ApiException) as raised:
        heappe.ClusterInformationApi(api).heappe_cluster_information_list_available_clusters_get(
            session_code="00000000-0000-0000-0000-000000000000"
        )
    assert raised.value.status == 401


@pytest.mark.parametrize("key", ["SessionCode", "sessionCode", "sessioncode", "SESSIONCODE"])
def test_query_keys_bind_case_insensitively(api: heappe.ApiClient, sandbox: SandboxProcess, key: str):
    # Plain HTTP, no mock: ASP.NET Core binds query keys case-insensitively, HEAppE's OpenAPI spells them
    # PascalCase, lexis-api.md and older clients camelCase; both must reach the same session.
    session = authenticate(api, sandbox)
    url = f"{sandbox.heappe_url()}/heappe/ClusterInformation/ListAvailableClusters"
    response = httpx.get(url, params={key: session}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()[0]["Name"] == "Karolina"


def test_json_keys_bind_case_insensitively_and_unknown_ones_are_skipped(api: heappe.ApiClient, sandbox: SandboxProcess):
    # HEAppE's JSON options: PropertyNameCaseInsensitive, and System.Text.Json skips unmapped members.
    session = authenticate(api, sandbox)
    base = f"{sandbox.heappe_url()}/heappe"
    [cluster] = httpx.get(f"{base}/ClusterInformation/ListAvailableClusters", params={"SessionCode": session}, timeout=30).json()
    node_type = cluster["NodeTypes"][0]
    project = node_type["Projects"][0]
    template = next(t for t in project["CommandTemplates"] if t["Name"] == "TestTemplate")
    task = {
        "name": "task", "maxCores": 1, "walltimeLimit": 60, "clusterNodeTypeId": node_type["Id"],
        "commandTemplateId": template["Id"], "GpuCores": 0, "memoryPerCpu": 1000,
        "standardOutputFile": "stdout.txt", "STANDARDERRORFILE": "stderr.txt", "progressfile": "progress.txt", "logFile": "log.txt",
        "templateParameterValues": [{"commandParameterIdentifier": "input_param", "PARAMETERVALUE": "x"}],
    }
    spec = {"name": "camel", "projectId": project["Id"], "clusterId": cluster["Id"], "fileTransferMethodId": cluster["Id"],
            "reservation": "none", "tasks": [task]}
    created = httpx.post(f"{base}/JobManagement/CreateJob", json={"sessionCode": session, "jobSpecification": spec}, timeout=30)
    assert created.status_code == 200, created.text
    job_id = created.json()["Id"]
    deleted = httpx.request("DELETE", f"{base}/JobManagement/DeleteJob",
                            json={"sessioncode": session, "submittedJobInfoId": job_id, "ArchiveLogs": False}, timeout=30)
    assert deleted.status_code == 200 and deleted.json() == "Job was deleted", deleted.text
    info = httpx.get(f"{base}/JobManagement/CurrentInfoForJob", params={"SESSIONCODE": session, "submittedjobinfoid": job_id}, timeout=30)
    assert info.status_code == 200 and info.json()["State"] == JOB_DELETED, info.text
