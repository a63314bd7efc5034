"""HEAppEClient against a respx-mocked HEAppE (wire shapes from lexis-api.md sections 3 and 4b).

Wire JSON is pinned with literal dicts written from the API notes, never with the
models' own `payload()`, so a wrong field name in a model cannot pass unnoticed.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging

import httpx
import pytest
import respx
from pydantic import SecretStr

from lexis_prefect.config import RetryPolicy
from lexis_prefect.exceptions import (
    AuthenticationError,
    ConfigurationError,
    LexisAPIError,
    LexisTransportError,
    NotFoundError,
)
from lexis_prefect.heappe import HEAppEClient
from lexis_prefect.models.heappe import (
    ChangedFile,
    CommandTemplateParameterValue,
    EnvironmentVariable,
    FileType,
    JobSpecification,
    JobState,
    TaskFileOffset,
    TaskParallelizationParameter,
    TaskSpecification,
    TaskState,
)

BASE = "https://heappe.test"
CODE = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
CODE2 = "9f8e7d6c-5b4a-3f2e-1d0c-b9a8f7e6d5c4"
OPAQUE_TOKEN = "opaque-lexis-token-0123456789"
FAST = RetryPolicy(backoff_seconds=0)

AUTH = "UserAndLimitationManagement/AuthenticateLexisToken"
CREATE = "JobManagement/CreateJob"
SUBMIT = "JobManagement/SubmitJob"
INFO = "JobManagement/CurrentInfoForJob"
LIST_JOBS = "JobManagement/ListJobsForCurrentUser"
CANCEL = "JobManagement/CancelJob"
DELETE = "JobManagement/DeleteJob"
PARTS = "FileTransfer/DownloadPartsOfJobFilesFromCluster"
CHANGED = "FileTransfer/ListChangedFilesForJob"
DOWNLOAD = "FileTransfer/DownloadFileFromCluster"
CLUSTERS = "ClusterInformation/ListAvailableClusters"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_jwt(claims: dict) -> str:
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(b'not-a-real-signature')}"


JWT = make_jwt({"preferred_username": "alice", "sub": "user-123", "exp": 4102444800})


# ---------------------------------------------------------------- helpers


def url(action: str, base: str = BASE) -> str:
    return f"{base}/heappe/{action}"


@pytest.fixture
def api():
    with respx.mock(assert_all_called=False) as router:
        yield router


def make_client(token=SecretStr(JWT), **kwargs) -> HEAppEClient:
    kwargs.setdefault("retry", FAST)
    return HEAppEClient(BASE, token, **kwargs)


@pytest.fixture
async def client():
    async with make_client() as c:
        yield c


def auth_route(api: respx.Router, *codes: str, base: str = BASE) -> respx.Route:
    """AuthenticateLexisToken answering the given session codes in turn (a JSON string each)."""
    return api.post(url(AUTH, base)).mock(side_effect=[httpx.Response(200, json=c) for c in codes or (CODE,)])


def problem(status: int, title: str, detail: str = "", **kwargs) -> httpx.Response:
    return httpx.Response(status, json={"title": title, "detail": detail, "status": status}, **kwargs)


def expired_session() -> httpx.Response:
    return problem(401, "Session Code Authentication Problem", "Session code is not valid or has expired")


def sent_json(route: respx.Route, index: int = 0) -> object:
    return json.loads(route.calls[index].request.content)


def sent_query(route: respx.Route, index: int = 0) -> dict[str, str]:
    return dict(route.calls[index].request.url.params)


def task_info(task_id: int = 101, state: int = 8) -> dict:
    return {
        "Id": task_id,
        "Name": "task1",
        "State": state,
        "Priority": 4,
        "AllocatedTime": 12.5,
        "AllocatedCoreIds": ["0", "1"],
        "StartTime": "2024-05-01T10:02:00",
        "EndTime": None,
        "NodeType": {"Id": 8, "Name": "qcpu"},
        "ErrorMessage": None,
        "CpuHyperThreading": False,
        "Reason": None,
    }


def job_info(job_id: int = 42, state: int = 8, task_state: int = 8) -> dict:
    return {
        "Id": job_id,
        "Name": "job1",
        "State": state,
        "CreationTime": "2024-05-01T10:00:00",
        "SubmitTime": "2024-05-01T10:01:00",
        "StartTime": "2024-05-01T10:02:00",
        "EndTime": None,
        "TotalAllocatedTime": 12.5,
        "SubProject": None,
        "Tasks": [task_info(state=task_state)],
    }


def job_response(**kwargs) -> httpx.Response:
    return httpx.Response(200, json=job_info(**kwargs))


def spec() -> JobSpecification:
    return JobSpecification(
        name="job1",
        project_id=12,
        cluster_id=2,
        file_transfer_method_id=2,
        environment_variables=[EnvironmentVariable(name="X", value="1")],
        tasks=[
            TaskSpecification(
                name="task1",
                max_cores=128,
                walltime_limit=3600,
                cluster_node_type_id=8,
                command_template_id=3,
                template_parameter_values=[
                    CommandTemplateParameterValue(command_parameter_identifier="inputParam", parameter_value="in.dat")
                ],
                task_parallelization_parameters=[
                    TaskParallelizationParameter(mpi_processes=4, open_mp_threads=32, max_cores=128)
                ],
            )
        ],
    )


# CreateJob body for spec(), written from lexis-api.md 3.4 (+ 4b: job-level WalltimeLimit, HEAppE >= 6.5).
CREATE_JOB_BODY = {
    "SessionCode": CODE,
    "JobSpecification": {
        "Name": "job1",
        "ProjectId": 12,
        "SubProjectIdentifier": None,
        "WaitingLimit": 0,
        "WalltimeLimit": None,
        "NotificationEmail": "",
        "PhoneNumber": "",
        "NotifyOnAbort": False,
        "NotifyOnFinish": False,
        "NotifyOnStart": False,
        "ClusterId": 2,
        "FileTransferMethodId": 2,
        "IsExtraLong": False,
        "EnvironmentVariables": [{"Name": "X", "Value": "1"}],
        "Tasks": [
            {
                "Name": "task1",
                "MinCores": 1,
                "MaxCores": 128,
                "WalltimeLimit": 3600,
                "PlacementPolicy": None,
                "Priority": 4,
                "JobArrays": None,
                "IsExclusive": False,
                "IsRerunnable": False,
                "CpuHyperThreading": False,
                "StandardInputFile": None,
                "StandardOutputFile": "stdout.txt",
                "StandardErrorFile": "stderr.txt",
                "ProgressFile": "progress.txt",
                "LogFile": "log.txt",
                "ClusterTaskSubdirectory": None,
                "ClusterNodeTypeId": 8,
                "CommandTemplateId": 3,
                "RequiredNodes": [],
                "TaskParallelizationParameters": [{"MPIProcesses": 4, "OpenMPThreads": 32, "MaxCores": 128}],
                "EnvironmentVariables": [],
                "DependsOn": [],
                "TemplateParameterValues": [{"CommandParameterIdentifier": "inputParam", "ParameterValue": "in.dat"}],
            }
        ],
    },
}


def assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


# ---------------------------------------------------------------- authentication


async def test_authenticate_sends_lexis_token_and_username_from_jwt(api, client):
    route = auth_route(api)

    await client.authenticate()

    assert route.call_count == 1
    assert route.calls[0].request.method == "POST"
    assert route.calls[0].request.url.path == "/heappe/UserAndLimitationManagement/AuthenticateLexisToken"
    assert sent_json(route) == {"Credentials": {"UserName": "alice", "OpenIdAccessToken": JWT}}


async def test_authenticate_prefers_explicit_username(api):
    route = auth_route(api)

    async with make_client(SecretStr(OPAQUE_TOKEN), username="bob") as client:
        await client.authenticate()

    assert sent_json(route) == {"Credentials": {"UserName": "bob", "OpenIdAccessToken": OPAQUE_TOKEN}}


async def test_authenticate_without_any_username_raises_configuration_error(api):
    route = auth_route(api)

    async with make_client(SecretStr(OPAQUE_TOKEN)) as client:
        with pytest.raises(ConfigurationError, match="username"):
            await client.authenticate()

    assert route.call_count == 0


async def test_a_token_too_large_for_authenticate_is_a_configuration_error_that_says_so(api, client):
    # Kestrel's answer to a body over [RequestSizeLimit(2048)], through HEAppE's ExceptionMiddleware.
    title = "Request body too large. The max request body size is 2048 bytes."
    api.post(url(AUTH)).mock(return_value=problem(400, title))

    with pytest.raises(ConfigurationError, match="too large") as caught:
        await client.authenticate()

    assert JWT not in str(caught.value)


async def test_bearer_mode_sends_the_token_on_every_call_and_no_session_code(api, client):
    # HEAppE V6.1+ with LEXIS bearer auth answers HEADER-AUTH-NEEDED and authorises each call by its header.
    auth = api.post(url(AUTH)).mock(return_value=httpx.Response(200, json="HEADER-AUTH-NEEDED"))
    info = api.get(url(INFO)).mock(return_value=job_response())
    cancel = api.put(url(CANCEL)).mock(return_value=job_response(state=64, task_state=64))

    await client.job_info(42)
    await client.cancel_job(42)

    assert auth.call_count == 1
    assert "Authorization" not in auth.calls[0].request.headers
    for route in (info, cancel):
        assert route.calls[0].request.headers["Authorization"] == f"Bearer {JWT}"
    assert sent_query(info) == {"SubmittedJobInfoId": "42"}
    assert sent_json(cancel) == {"SubmittedJobInfoId": 42}


async def test_bearer_mode_401_asks_again_and_resends_with_the_current_token(api):
    # The keeper refreshes the token after the first call: the resent call carries the new one.
    tokens = itertools.chain([JWT, JWT], itertools.repeat(JWT + "x"))

    async def token() -> SecretStr:
        return SecretStr(next(tokens))

    api.post(url(AUTH)).mock(return_value=httpx.Response(200, json="HEADER-AUTH-NEEDED"))
    info = api.get(url(INFO)).mock(
        side_effect=[httpx.Response(401, text="Unauthorized"), httpx.Response(401, text="Unauthorized"), job_response()]
    )
    async with make_client(token, username="alice") as client:
        result = await client.job_info(42)

    assert result.id == 42
    assert info.calls[-1].request.headers["Authorization"] == f"Bearer {JWT}x"


async def test_bearer_mode_error_text_never_shows_the_token(api, client):
    api.post(url(AUTH)).mock(return_value=httpx.Response(200, json="HEADER-AUTH-NEEDED"))
    api.get(url(INFO)).mock(return_value=httpx.Response(404, text=f"no job for {JWT}"))

    with pytest.raises(LexisAPIError) as caught:
        await client.job_info(42)

    assert JWT not in str(caught.value)


async def test_authenticate_answer_that_is_not_a_session_code_raises_api_error(api, client):
    api.post(url(AUTH)).mock(return_value=httpx.Response(200, json="Welcome, alice"))

    with pytest.raises(LexisAPIError, match="not a session code") as caught:
        await client.authenticate()

    assert caught.value.status == 200
    assert caught.value.path == "/heappe/UserAndLimitationManagement/AuthenticateLexisToken"


async def test_authenticate_calls_token_source_for_the_current_token(api):
    route = auth_route(api)

    async def source() -> SecretStr:
        return SecretStr(JWT)

    async with make_client(source) as client:
        await client.authenticate()

    assert sent_json(route)["Credentials"]["OpenIdAccessToken"] == JWT


async def test_authenticate_retried_after_a_5xx_sends_the_token_current_at_the_retry(api):
    """A keeper may refresh during the backoff: the retry must not send the token read before it."""
    route = api.post(url(AUTH)).mock(side_effect=[problem(503, "Service Unavailable"), httpx.Response(200, json=CODE)])
    fresh = make_jwt({"preferred_username": "alice", "sub": "user-123", "exp": 4102444801})
    tokens = iter([JWT, fresh])

    async def source() -> SecretStr:
        return SecretStr(next(tokens))

    async with make_client(source) as client:
        await client.authenticate()

    assert [sent_json(route, i)["Credentials"]["OpenIdAccessToken"] for i in range(2)] == [JWT, fresh]


# ---------------------------------------------------------------- wire: every client method


async def test_list_available_clusters_gets_with_session_code_and_parses_cluster_tree(api, client):
    auth_route(api)
    tree = [
        {
            "Id": 2,
            "Name": "Karolina",
            "Description": "IT4I Karolina",
            "MasterNodeName": "karolina.it4i.cz",
            "FileTransferMethodIds": [2],
            "UseCallback": False,
            "NodeTypes": [
                {
                    "Id": 8,
                    "Name": "qcpu_exp",
                    "ClusterId": 2,
                    "NumberOfNodes": 720,
                    "CoresPerNode": 128,
                    "MaxWalltime": 3600,
                    "FileTransferMethodId": 2,
                    "Queue": "qcpu_exp",
                    "QualityOfService": None,
                    "ClusterAllocationName": None,
                    "Projects": [
                        {
                            "Id": 12,
                            "Name": "DD-24-1",
                            "Description": "flood",
                            "AccountingString": "DD-24-1",
                            "StartDate": "2024-01-01T00:00:00",
                            "EndDate": "2025-01-01T00:00:00",
                            "UsageType": 1,
                            "CommandTemplates": [
                                {
                                    "Id": 3,
                                    "Name": "TestTemplate",
                                    "Description": "runs a script",
                                    "IsGeneric": False,
                                    "IsEnabled": True,
                                    "TemplateParameters": [{"Identifier": "inputParam", "Description": "input"}],
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    ]
    route = api.get(url(CLUSTERS)).mock(return_value=httpx.Response(200, json=tree))

    clusters = await client.list_available_clusters()

    assert route.calls[0].request.url.path == "/heappe/ClusterInformation/ListAvailableClusters"
    assert sent_query(route) == {"SessionCode": CODE}
    [cluster] = clusters
    assert (cluster.id, cluster.name, cluster.file_transfer_method_ids) == (2, "Karolina", [2])
    node_type = cluster.node_types[0]
    assert (node_type.id, node_type.name, node_type.cores_per_node, node_type.max_walltime) == (8, "qcpu_exp", 128, 3600)
    project = node_type.projects[0]
    assert (project.id, project.name, project.accounting_string) == (12, "DD-24-1", "DD-24-1")
    template = project.command_templates[0]
    assert (template.id, template.name, template.is_enabled) == (3, "TestTemplate", True)
    assert template.template_parameters[0].identifier == "inputParam"


async def test_create_job_posts_session_code_and_pascal_case_job_specification(api, client):
    auth_route(api)
    route = api.post(url(CREATE)).mock(return_value=job_response(state=1, task_state=1))

    await client.create_job(spec())

    request = route.calls[0].request
    assert (request.method, request.url.path) == ("POST", "/heappe/JobManagement/CreateJob")
    assert request.headers["Content-Type"] == "application/json"
    assert sent_json(route) == CREATE_JOB_BODY


async def test_create_job_parses_configuring_job_info(api, client):
    auth_route(api)
    api.post(url(CREATE)).mock(return_value=job_response(job_id=42, state=1, task_state=1))

    info = await client.create_job(spec())

    assert (info.id, info.name, info.state) == (42, "job1", JobState.Configuring)
    assert info.tasks[0].id == 101
    assert info.tasks[0].state is TaskState.Configuring
    assert info.is_terminal is False


async def test_submit_job_puts_created_job_info_id(api, client):
    auth_route(api)
    route = api.put(url(SUBMIT)).mock(return_value=job_response(state=2, task_state=2))

    info = await client.submit_job(42)

    assert route.calls[0].request.method == "PUT"
    assert sent_json(route) == {"SessionCode": CODE, "CreatedJobInfoId": 42}
    assert info.state is JobState.Submitted


async def test_job_info_gets_current_info_for_job_with_query(api, client):
    auth_route(api)
    route = api.get(url(INFO)).mock(return_value=job_response(job_id=42, state=16, task_state=16))

    info = await client.job_info(42)

    request = route.calls[0].request
    assert (request.method, request.url.path) == ("GET", "/heappe/JobManagement/CurrentInfoForJob")
    assert request.content == b""
    assert sent_query(route) == {"SessionCode": CODE, "SubmittedJobInfoId": "42"}
    assert info.state is JobState.Finished
    assert info.is_terminal is True
    task = info.tasks[0]
    assert (task.id, task.state, task.allocated_core_ids) == (101, TaskState.Finished, ["0", "1"])
    assert info.creation_time.isoformat() == "2024-05-01T10:00:00"


async def test_list_jobs_gets_jobs_for_current_user(api, client):
    auth_route(api)
    answer = [job_info(job_id=1, state=64, task_state=64), job_info(job_id=2, state=128, task_state=4)]
    route = api.get(url(LIST_JOBS)).mock(return_value=httpx.Response(200, json=answer))

    jobs = await client.list_jobs()

    assert sent_query(route) == {"SessionCode": CODE}
    assert [(j.id, j.state) for j in jobs] == [(1, JobState.Canceled), (2, JobState.WaitingForServiceAccount)]
    assert jobs[1].tasks[0].state is TaskState.Queued


async def test_cancel_job_puts_submitted_job_info_id(api, client):
    auth_route(api)
    route = api.put(url(CANCEL)).mock(return_value=job_response(state=64, task_state=64))

    info = await client.cancel_job(42)

    assert route.calls[0].request.method == "PUT"
    assert sent_json(route) == {"SessionCode": CODE, "SubmittedJobInfoId": 42}
    assert info.state is JobState.Canceled


async def test_delete_job_sends_json_body_with_archive_logs_on_delete(api, client):
    auth_route(api)
    route = api.delete(url(DELETE)).mock(return_value=httpx.Response(200, json="Job was deleted"))

    message = await client.delete_job(42, archive_logs=True)

    assert route.calls[0].request.method == "DELETE"
    assert sent_json(route) == {"SessionCode": CODE, "SubmittedJobInfoId": 42, "archiveLogs": True}
    assert message == "Job was deleted"


async def test_delete_job_does_not_send_archive_logs_by_default_and_fits_98_bytes(api, client):
    auth_route(api)
    route = api.delete(url(DELETE)).mock(return_value=httpx.Response(200, json="Job was deleted"))

    await client.delete_job(42)

    body = sent_json(route)
    assert body == {"SessionCode": CODE, "SubmittedJobInfoId": 42}
    assert len(route.calls[0].request.content) <= 98  # [RequestSizeLimit(98)] on DeleteJob in HEAppE V4.3


async def test_download_file_parts_sends_task_file_offsets_and_parses_chunks(api, client):
    auth_route(api)
    answer = [
        {"Content": "step 1\n", "RelativePath": "101/stdout.txt", "Offset": 7, "FileType": 3, "SubmittedTaskInfoId": 101},
        {"Content": None, "RelativePath": "101/stderr.txt", "Offset": 0, "FileType": 2, "SubmittedTaskInfoId": 101},
    ]
    route = api.post(url(PARTS)).mock(return_value=httpx.Response(200, json=answer))
    offsets = [
        TaskFileOffset(submitted_task_info_id=101, file_type=FileType.StandardOutputFile, offset=0),
        TaskFileOffset(submitted_task_info_id=101, file_type=FileType.StandardErrorFile, offset=5),
    ]

    chunks = await client.download_file_parts(42, offsets)

    assert route.calls[0].request.method == "POST"
    assert sent_json(route) == {
        "SessionCode": CODE,
        "SubmittedJobInfoId": 42,
        "TaskFileOffsets": [
            {"SubmittedTaskInfoId": 101, "FileType": 3, "Offset": 0},
            {"SubmittedTaskInfoId": 101, "FileType": 2, "Offset": 5},
        ],
    }
    first, second = chunks
    assert (first.content, first.relative_path, first.offset) == ("step 1\n", "101/stdout.txt", 7)
    assert (first.file_type, first.submitted_task_info_id) == (FileType.StandardOutputFile, 101)
    assert (second.content, second.file_type) == (None, FileType.StandardErrorFile)


async def test_download_file_parts_splits_offsets_so_each_body_stays_within_480_bytes(api, client):
    # [RequestSizeLimit(480)] on DownloadPartsOfJobFilesFromCluster: a larger body is refused with 413.
    auth_route(api)

    def echo(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["TaskFileOffsets"]
        return httpx.Response(200, json=[{**o, "Content": "", "RelativePath": "x"} for o in sent])

    route = api.post(url(PARTS)).mock(side_effect=echo)
    offsets = [
        TaskFileOffset(submitted_task_info_id=100_000 + task, file_type=file_type, offset=10**9 + task)
        for task in range(8)
        for file_type in (FileType.StandardOutputFile, FileType.StandardErrorFile, FileType.ProgressFile)
    ]

    chunks = await client.download_file_parts(42, offsets)

    bodies = [call.request.content for call in route.calls]
    assert len(bodies) > 1
    assert max(len(body) for body in bodies) <= 480
    assert [(c.submitted_task_info_id, c.file_type, c.offset) for c in chunks] == [
        (o.submitted_task_info_id, o.file_type, o.offset) for o in offsets
    ]


async def test_list_changed_files_gets_with_query_and_parses_entries(api, client):
    auth_route(api)
    answer = [{"FileName": "101/stdout.txt", "LastModifiedDate": "2024-05-01T10:05:00Z"}]
    route = api.get(url(CHANGED)).mock(return_value=httpx.Response(200, json=answer))

    files = await client.list_changed_files(42)

    assert route.calls[0].request.method == "GET"
    assert sent_query(route) == {"SessionCode": CODE, "SubmittedJobInfoId": "42"}
    assert files == [ChangedFile(file_name="101/stdout.txt", last_modified_date="2024-05-01T10:05:00Z")]
    assert files[0].last_modified_date.year == 2024


async def test_download_file_posts_relative_path_and_decodes_base64_answer(api, client):
    auth_route(api)
    content = b"\x00\xffresult 42\n"
    route = api.post(url(DOWNLOAD)).mock(
        return_value=httpx.Response(200, json=base64.b64encode(content).decode())
    )

    data = await client.download_file(42, "101/result.bin")

    assert route.calls[0].request.method == "POST"
    assert sent_json(route) == {"SessionCode": CODE, "SubmittedJobInfoId": 42, "RelativeFilePath": "101/result.bin"}
    assert data == content


async def test_base_url_with_instance_prefix_keeps_the_prefix(api):
    prefixed = f"{BASE}/instance1"
    auth = auth_route(api, base=prefixed)
    route = api.get(url(INFO, prefixed)).mock(return_value=job_response())

    async with HEAppEClient(prefixed, SecretStr(JWT), retry=FAST) as client:
        await client.job_info(42)

    assert auth.calls[0].request.url.path == "/instance1/heappe/UserAndLimitationManagement/AuthenticateLexisToken"
    assert route.calls[0].request.url.path == "/instance1/heappe/JobManagement/CurrentInfoForJob"


# ---------------------------------------------------------------- session code lifecycle


async def test_first_call_authenticates_lazily_and_later_calls_reuse_the_session(api, client):
    auth = auth_route(api)
    route = api.get(url(INFO)).mock(return_value=job_response())

    assert auth.call_count == 0
    await client.job_info(42)
    await client.job_info(42)

    assert auth.call_count == 1
    assert route.call_count == 2
    assert sent_query(route, 1)["SessionCode"] == CODE


async def test_concurrent_first_calls_authenticate_once(api, client):
    codes = iter([CODE, CODE2, CODE2])

    async def slow_auth(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # let the other calls reach the session check meanwhile
        return httpx.Response(200, json=next(codes))

    auth = api.post(url(AUTH)).mock(side_effect=slow_auth)
    api.get(url(INFO)).mock(return_value=job_response())

    await asyncio.gather(client.job_info(1), client.job_info(2), client.job_info(3))

    assert auth.call_count == 1


async def test_expired_session_code_reauthenticates_and_repeats_create_with_new_code(api, client):
    auth = auth_route(api, CODE, CODE2)
    route = api.post(url(CREATE)).mock(side_effect=[expired_session(), job_response(state=1, task_state=1)])

    info = await client.create_job(spec())

    assert info.state is JobState.Configuring
    assert auth.call_count == 2
    assert route.call_count == 2
    assert [sent_json(route, i)["SessionCode"] for i in (0, 1)] == [CODE, CODE2]


async def test_expired_session_code_is_replaced_in_the_query_of_the_repeated_get(api, client):
    auth_route(api, CODE, CODE2)
    route = api.get(url(INFO)).mock(side_effect=[expired_session(), job_response()])

    await client.job_info(42)

    assert [sent_query(route, i)["SessionCode"] for i in (0, 1)] == [CODE, CODE2]
    assert sent_query(route, 1)["SubmittedJobInfoId"] == "42"


async def test_renewed_session_code_is_kept_for_later_calls(api, client):
    auth = auth_route(api, CODE, CODE2)
    route = api.get(url(INFO)).mock(side_effect=[expired_session(), job_response(), job_response()])

    await client.job_info(42)
    await client.job_info(42)

    assert auth.call_count == 2
    assert sent_query(route, 2)["SessionCode"] == CODE2


async def test_second_consecutive_401_raises_authentication_error(api, client):
    auth = auth_route(api, CODE, CODE2)
    route = api.put(url(CANCEL)).mock(side_effect=[expired_session(), expired_session()])

    with pytest.raises(AuthenticationError, match="Session Code Authentication Problem") as caught:
        await client.cancel_job(42)

    assert caught.value.status == 401
    assert auth.call_count == 2
    assert route.call_count == 2


async def test_reauthentication_sends_the_token_source_current_token(api):
    fresh = make_jwt({"preferred_username": "alice", "exp": 4102444900})
    tokens = iter([JWT, fresh])

    async def source() -> SecretStr:
        return SecretStr(next(tokens))

    auth = auth_route(api, CODE, CODE2)
    api.get(url(INFO)).mock(side_effect=[expired_session(), job_response()])

    async with make_client(source) as client:
        await client.job_info(42)

    assert [sent_json(auth, i)["Credentials"]["OpenIdAccessToken"] for i in (0, 1)] == [JWT, fresh]


async def test_refused_token_during_authentication_raises_authentication_error(api, client):
    api.post(url(AUTH)).mock(return_value=problem(401, "Unauthorized Access", "Token is not active"))
    route = api.get(url(INFO)).mock(return_value=job_response())

    with pytest.raises(AuthenticationError, match="Token is not active"):
        await client.job_info(42)

    assert route.call_count == 0


# ---------------------------------------------------------------- retry policy


async def test_job_info_is_retried_after_503(api, client):
    auth_route(api)
    route = api.get(url(INFO)).mock(side_effect=[problem(503, "Service Unavailable"), job_response(state=4)])

    info = await client.job_info(42)

    assert info.state is JobState.Queued
    assert route.call_count == 2


async def test_job_info_is_retried_after_connect_error(api, client):
    auth_route(api)
    route = api.get(url(INFO)).mock(side_effect=[httpx.ConnectError("refused"), job_response()])

    info = await client.job_info(42)

    assert info.id == 42
    assert route.call_count == 2


async def test_job_info_is_retried_after_read_timeout(api, client):
    auth_route(api)
    route = api.get(url(INFO)).mock(side_effect=[httpx.ReadTimeout("slow"), job_response()])

    await client.job_info(42)

    assert route.call_count == 2


@pytest.mark.parametrize(
    ("method", "action", "call"),
    [
        ("POST", CREATE, lambda c: c.create_job(spec())),
        ("PUT", SUBMIT, lambda c: c.submit_job(42)),
    ],
    ids=["create_job", "submit_job"],
)
async def test_non_idempotent_call_is_not_retried_on_503(api, client, method, action, call):
    auth_route(api)
    route = api.route(method=method, url=url(action)).mock(return_value=problem(503, "Service Unavailable"))

    with pytest.raises(LexisAPIError) as caught:
        await call(client)

    assert caught.value.status == 503
    assert route.call_count == 1


async def test_create_job_is_not_retried_after_read_timeout(api, client):
    auth_route(api)
    route = api.post(url(CREATE)).mock(side_effect=httpx.ReadTimeout("no answer"))

    with pytest.raises(LexisTransportError) as caught:
        await client.create_job(spec())

    assert caught.value.sent is True
    assert route.call_count == 1


async def test_create_job_is_retried_when_the_connection_never_opened(api, client):
    auth_route(api)
    route = api.post(url(CREATE)).mock(side_effect=[httpx.ConnectError("refused"), job_response(state=1)])

    info = await client.create_job(spec())

    assert info.state is JobState.Configuring
    assert route.call_count == 2


async def test_create_job_is_retried_on_429(api, client):
    auth_route(api)
    route = api.post(url(CREATE)).mock(side_effect=[problem(429, "Too Many Requests"), job_response(state=1)])

    await client.create_job(spec())

    assert route.call_count == 2


@pytest.mark.parametrize(
    ("method", "action", "call"),
    [
        ("PUT", CANCEL, lambda c: c.cancel_job(42)),
        ("DELETE", DELETE, lambda c: c.delete_job(42)),
        ("POST", PARTS, lambda c: c.download_file_parts(42, [TaskFileOffset(submitted_task_info_id=1, file_type=3)])),
    ],
    ids=["cancel_job", "delete_job", "download_file_parts"],
)
async def test_idempotent_write_or_read_by_post_is_retried_on_503(api, client, method, action, call):
    auth_route(api)
    answer = {CANCEL: job_info(state=64), DELETE: "Job was deleted", PARTS: []}[action]
    route = api.route(method=method, url=url(action)).mock(
        side_effect=[problem(503, "Service Unavailable"), httpx.Response(200, json=answer)]
    )

    await call(client)

    assert route.call_count == 2


async def test_404_is_not_retried_and_raises_not_found(api, client):
    auth_route(api)
    route = api.get(url(INFO)).mock(return_value=problem(404, "Validation Problem", "Job 42 does not exist"))

    with pytest.raises(NotFoundError) as caught:
        await client.job_info(42)

    assert caught.value.status == 404
    assert route.call_count == 1


async def test_400_is_not_retried_and_raises_api_error(api, client):
    auth_route(api)
    route = api.delete(url(DELETE)).mock(return_value=problem(400, "Invalid Request", "Job was not deleted"))

    with pytest.raises(LexisAPIError) as caught:
        await client.delete_job(42)

    assert type(caught.value) is LexisAPIError
    assert caught.value.status == 400
    assert route.call_count == 1


async def test_attempts_stop_at_the_policy_limit(api):
    auth_route(api)
    route = api.get(url(INFO)).mock(return_value=problem(503, "Service Unavailable"))

    async with make_client(retry=RetryPolicy(attempts=3, backoff_seconds=0)) as client:
        with pytest.raises(LexisAPIError) as caught:
            await client.job_info(42)

    assert caught.value.status == 503
    assert route.call_count == 3


async def test_retry_after_zero_is_honoured_instead_of_the_backoff(api):
    auth_route(api)
    busy = problem(429, "Too Many Requests", headers={"Retry-After": "0"})
    route = api.get(url(INFO)).mock(side_effect=[busy, job_response()])

    # A 60 s backoff would blow the 5 s budget; Retry-After: 0 must replace it.
    async with make_client(retry=RetryPolicy(backoff_seconds=60, max_backoff_seconds=60)) as client:
        await asyncio.wait_for(client.job_info(42), timeout=5)

    assert route.call_count == 2


async def test_retry_after_beyond_the_maximum_is_raised_at_once(api):
    auth_route(api)
    busy = problem(429, "Too Many Requests", headers={"Retry-After": "600"})
    route = api.get(url(INFO)).mock(side_effect=[busy, job_response()])

    async with make_client(retry=RetryPolicy(backoff_seconds=0, max_retry_after_seconds=10)) as client:
        with pytest.raises(LexisAPIError) as caught:
            await asyncio.wait_for(client.job_info(42), timeout=5)

    assert (caught.value.status, caught.value.retry_after) == (429, 600.0)
    assert route.call_count == 1


# ---------------------------------------------------------------- error mapping


async def test_problem_details_title_and_detail_are_in_the_message(api, client):
    auth_route(api)
    api.put(url(SUBMIT)).mock(return_value=problem(502, "Slurm Problem", "sbatch: error: invalid account"))

    with pytest.raises(LexisAPIError) as caught:
        await client.submit_job(42)

    error = caught.value
    assert "Slurm Problem" in str(error)
    assert "sbatch: error: invalid account" in str(error)
    assert (error.service, error.method, error.path, error.status) == (
        "heappe",
        "PUT",
        "/heappe/JobManagement/SubmitJob",
        502,
    )


async def test_response_without_state_raises_unexpected_response(api, client):
    auth_route(api)
    broken = job_info()
    del broken["State"]
    api.get(url(INFO)).mock(return_value=httpx.Response(200, json=broken))

    with pytest.raises(LexisAPIError, match="unexpected response") as caught:
        await client.job_info(42)

    assert "State" in str(caught.value)


async def test_unknown_job_state_number_raises_unexpected_response(api, client):
    auth_route(api)
    api.get(url(INFO)).mock(return_value=httpx.Response(200, json=job_info(state=3)))

    with pytest.raises(LexisAPIError, match="unexpected response"):
        await client.job_info(42)


# ---------------------------------------------------------------- secrets


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="lexis_prefect")
    return caplog


def logged_text(caplog) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


async def test_repr_shows_neither_token_nor_session_code(api, client):
    auth_route(api)
    await client.authenticate()

    assert repr(client) == "HEAppEClient(base_url='https://heappe.test/')"
    assert_hidden(repr(client), JWT, CODE)


async def test_session_code_echoed_in_error_detail_is_scrubbed(api, client, logs):
    auth_route(api)
    api.put(url(CANCEL)).mock(return_value=problem(400, "Invalid Request", f"session {CODE} cannot cancel job 42"))

    with pytest.raises(LexisAPIError) as caught:
        await client.cancel_job(42)

    assert "cannot cancel job 42" in str(caught.value)
    assert_hidden(str(caught.value), CODE, JWT)
    assert_hidden(caught.value.body, CODE, JWT)
    assert_hidden(logged_text(logs), CODE, JWT)


async def test_session_code_echoed_in_plain_text_error_is_scrubbed(api, client):
    auth_route(api)
    api.get(url(INFO)).mock(return_value=httpx.Response(400, text=f"bad sessionCode {CODE}!"))

    with pytest.raises(LexisAPIError) as caught:
        await client.job_info(42)

    assert "bad sessionCode" in str(caught.value)
    assert_hidden(str(caught.value), CODE)
    assert_hidden(caught.value.body, CODE)


async def test_token_echoed_by_a_refused_authentication_is_scrubbed(api):
    api.post(url(AUTH)).mock(return_value=problem(401, "Unauthorized Access", f"token {OPAQUE_TOKEN} is not active"))

    async with make_client(SecretStr(OPAQUE_TOKEN), username="bob") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.authenticate()

    assert "is not active" in str(caught.value)
    assert_hidden(str(caught.value), OPAQUE_TOKEN)
    assert_hidden(caught.value.body, OPAQUE_TOKEN)


async def test_httpx_request_log_hides_the_session_code_in_the_query(api, client, logs):
    auth_route(api)
    api.get(url(INFO)).mock(return_value=job_response())

    await client.job_info(42)

    text = logged_text(logs)
    assert "/heappe/JobManagement/CurrentInfoForJob?" in text
    assert "SubmittedJobInfoId=42" in text
    assert_hidden(text, CODE, JWT)


async def test_retry_and_reauthentication_logs_hide_secrets(api, client, logs):
    auth_route(api, CODE, CODE2)
    api.get(url(INFO)).mock(
        side_effect=[
            problem(503, "Service Unavailable", f"backend busy for session {CODE}"),
            expired_session(),
            httpx.ConnectError(f"refused for {CODE2}"),
            job_response(),
        ]
    )

    await client.job_info(42)

    text = logged_text(logs)
    assert "retrying" in text
    assert "authenticating again" in text
    assert_hidden(text, CODE, CODE2, JWT)


async def test_transport_error_message_hides_the_session_code(api, client):
    auth_route(api)
    api.post(url(CREATE)).mock(side_effect=httpx.ReadTimeout(f"timed out on session {CODE}"))

    with pytest.raises(LexisTransportError) as caught:
        await client.create_job(spec())

    assert "timed out" in str(caught.value)
    assert_hidden(str(caught.value), CODE)


async def test_session_code_straddling_the_excerpt_cut_is_not_shown_in_part(api, client):
    auth_route(api)
    # str() of this dict puts the session code across character 200.
    answer = {"message": "x" * 170 + CODE}
    api.put(url(CANCEL)).mock(return_value=httpx.Response(400, json=answer))

    with pytest.raises(LexisAPIError) as caught:
        await client.cancel_job(42)

    assert CODE[:14] not in str(caught.value)


# ---------------------------------------------------------------- job directory (RequestFileTransfer / CloseFileTransfer)

REQUEST_TRANSFER = "FileTransfer/RequestFileTransfer"
CLOSE_TRANSFER = "FileTransfer/CloseFileTransfer"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAdGVzdC1rZXktbm90LXJlYWw=\n-----END OPENSSH PRIVATE KEY-----"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyNotReal heappe-temporary"


def transfer_method(**overrides) -> dict:
    """`FileTransferMethodExt` as HEAppE V6.3.2 serialises it (ExtModels/FileTransfer/Models/*.cs)."""
    return {
        "Id": 2,
        "ServerHostname": "karolina.it4i.cz",
        "SharedBasepath": "/scratch/project/dd-24-1/heappe/executions/lexis042/42",
        "Protocol": 2,
        "Port": 22,
        "Credentials": {
            "Username": "lexis042",
            "Password": "cluster-password-not-real",
            "CipherType": 6,
            "CredentialsAuthType": 4,
            "PrivateKey": PRIVATE_KEY,
            "PrivateKeyCertificate": "ssh-ed25519-cert-v01@openssh.com AAAAcertNotReal",
            "PublicKey": PUBLIC_KEY,
            "Passphrase": "passphrase-not-real",
        },
        **overrides,
    }


SECRETS_OF_THE_ANSWER = (PRIVATE_KEY, "cluster-password-not-real", "AAAAcertNotReal", "passphrase-not-real")


async def test_job_directory_requests_the_transfer_method_then_closes_its_key(api, client):
    auth_route(api)
    opened = api.post(url(REQUEST_TRANSFER)).mock(return_value=httpx.Response(200, json=transfer_method()))
    closed = api.post(url(CLOSE_TRANSFER)).mock(return_value=httpx.Response(200, json="File transfer closed"))

    directory = await client.job_directory(42)

    assert directory.server_hostname == "karolina.it4i.cz"
    assert directory.path == "/scratch/project/dd-24-1/heappe/executions/lexis042/42"
    # HEAppE V4.3.0..V6.3.2 FileTransferController: POST bodies GetFileTransferMethodModel / EndFileTransferModel.
    assert sent_json(opened) == {"SessionCode": CODE, "SubmittedJobInfoId": 42}
    assert sent_json(closed) == {"SessionCode": CODE, "SubmittedJobInfoId": 42, "PublicKey": PUBLIC_KEY}
    assert len(opened.calls[0].request.content) <= 98  # [RequestSizeLimit(98)] on RequestFileTransfer
    assert directory.task_path(101, "results") == "/scratch/project/dd-24-1/heappe/executions/lexis042/42/101/results"
    assert directory.task_path(101, "/") == "/scratch/project/dd-24-1/heappe/executions/lexis042/42/101"
    assert directory.task_path(101, "a//b/./c/") == "/scratch/project/dd-24-1/heappe/executions/lexis042/42/101/a/b/c"
    with pytest.raises(ValueError, match=r"\.\."):
        directory.task_path(101, "../other")


async def test_job_directory_keeps_no_secret_of_the_answer(api, client):
    auth_route(api)
    api.post(url(REQUEST_TRANSFER)).mock(return_value=httpx.Response(200, json=transfer_method()))
    api.post(url(CLOSE_TRANSFER)).mock(return_value=httpx.Response(200, json="File transfer closed"))

    directory = await client.job_directory(42)

    for shown in (repr(directory), str(directory), directory.model_dump_json()):
        assert_hidden(shown, *SECRETS_OF_THE_ANSWER, PUBLIC_KEY)


async def test_job_directory_closes_the_key_even_when_the_answer_does_not_parse_and_hides_the_key(api, client, caplog):
    auth_route(api)
    broken = transfer_method(SharedBasepath=None)
    api.post(url(REQUEST_TRANSFER)).mock(return_value=httpx.Response(200, json=broken))
    closed = api.post(url(CLOSE_TRANSFER)).mock(return_value=httpx.Response(200, json="File transfer closed"))

    with caplog.at_level(logging.DEBUG), pytest.raises(LexisAPIError, match="SharedBasepath") as info:
        await client.job_directory(42)

    assert closed.call_count == 0  # the key is not known: the answer did not parse (HEAppE expires it)
    assert_hidden(str(info.value), *SECRETS_OF_THE_ANSWER)
    assert_hidden(repr(info.value), *SECRETS_OF_THE_ANSWER)
    assert_hidden(caplog.text, *SECRETS_OF_THE_ANSWER)


async def test_job_directory_survives_a_failed_close_and_never_logs_the_key(api, client, caplog):
    auth_route(api)
    api.post(url(REQUEST_TRANSFER)).mock(return_value=httpx.Response(200, json=transfer_method()))
    closed = api.post(url(CLOSE_TRANSFER)).mock(
        return_value=problem(500, "External Problem", f"The direct transfer could not be finished ({PUBLIC_KEY})")
    )

    with caplog.at_level(logging.DEBUG):
        directory = await client.job_directory(42)

    assert directory.path.endswith("/42")
    assert closed.call_count >= 1
    assert "could not close the temporary file transfer key" in caplog.text
    assert_hidden(caplog.text, *SECRETS_OF_THE_ANSWER, PUBLIC_KEY)


async def test_job_directory_of_a_missing_job_raises_and_closes_nothing(api, client, caplog):
    auth_route(api)
    api.post(url(REQUEST_TRANSFER)).mock(return_value=problem(404, "Validation Problem", "SubmittedJobInfoId must be greater than 0"))
    closed = api.post(url(CLOSE_TRANSFER)).mock(return_value=httpx.Response(200, json="File transfer closed"))

    with pytest.raises(NotFoundError):
        await client.job_directory(42)
    assert closed.call_count == 0


async def test_job_directory_renews_an_expired_session_and_is_retried_as_a_read(api):
    auth_route(api, CODE, CODE2)
    opened = api.post(url(REQUEST_TRANSFER)).mock(
        side_effect=[expired_session(), httpx.Response(502), httpx.Response(200, json=transfer_method())]
    )
    closed = api.post(url(CLOSE_TRANSFER)).mock(return_value=httpx.Response(200, json="File transfer closed"))

    async with make_client() as client:
        directory = await client.job_directory(42)

    assert directory.server_hostname == "karolina.it4i.cz"
    assert opened.call_count == 3
    assert sent_json(opened, 2)["SessionCode"] == CODE2
    assert sent_json(closed) == {"SessionCode": CODE2, "SubmittedJobInfoId": 42, "PublicKey": PUBLIC_KEY}


async def test_job_directory_without_a_temporary_key_closes_nothing(api, client):
    # PrivateKeyInVaultAndInSshAgent: HEAppE's EndFileTransfer returns at once; nothing to name.
    auth_route(api)
    answer = transfer_method(Credentials={"Username": "lexis042", "PrivateKey": PRIVATE_KEY, "PublicKey": None})
    api.post(url(REQUEST_TRANSFER)).mock(return_value=httpx.Response(200, json=answer))
    closed = api.post(url(CLOSE_TRANSFER)).mock(return_value=httpx.Response(200, json="File transfer closed"))

    assert (await client.job_directory(42)).server_hostname == "karolina.it4i.cz"
    assert closed.call_count == 0
