"""Bad input against the sandbox, over real HTTP: each gets the answer lexis-api.md gives the real API.

Malformed requests are sent with raw httpx; after every test the library's own
clients log in, list staging systems and list clusters, so a bad request that
broke the sandbox cannot pass unnoticed (`still_serving`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from lexis_prefect import AAIClient, DDIStagingClient, HEAppEClient
from lexis_prefect.models.aai import ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE, TOKEN_EXCHANGE
from lexis_prefect.models.ddi import FAILED_PREFIX, IN_PROGRESS, QUEUED, dataset_path, zone_path
from lexis_prefect.sandbox import DEMO_DATASET_ID, SandboxProcess

OIDC = "/auth/realms/LEXIS_AAI/protocol/openid-connect"
KAROLINA = "/heappe"
BARBORA = "/locations/Barbora/heappe"
AUTH = "UserAndLimitationManagement/AuthenticateLexisToken"
CLUSTERS = "ClusterInformation/ListAvailableClusters"
CREATE = "JobManagement/CreateJob"
SUBMIT = "JobManagement/SubmitJob"
CANCEL = "JobManagement/CancelJob"
DELETE = "JobManagement/DeleteJob"
INFO = "JobManagement/CurrentInfoForJob"
PARTS = "FileTransfer/DownloadPartsOfJobFilesFromCluster"
DOWNLOAD = "FileTransfer/DownloadFileFromCluster"
# Every route of a sandbox HEAppE instance (lexis_prefect/sandbox/heappe/api.py).
HEAPPE_ROUTES = [
    ("POST", AUTH),
    ("POST", "UserAndLimitationManagement/AuthenticateUserOpenId"),
    ("GET", CLUSTERS),
    ("POST", CREATE),
    ("PUT", SUBMIT),
    ("PUT", CANCEL),
    ("DELETE", DELETE),
    ("GET", INFO),
    ("GET", "JobManagement/ListJobsForCurrentUser"),
    ("POST", PARTS),
    ("GET", "FileTransfer/ListChangedFilesForJob"),
    ("POST", DOWNLOAD),
]
STORAGE, IRODS, SCRATCH = "your-resource", "it4i_iRODS", "karolina_scratch"
FINISHED, CONFIGURING, DELETED = 16, 1, 256


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sb():
    with SandboxProcess("--job-seconds", "1", "--user", "demo:demo", "--user", "bob:bob") as sandbox:
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        yield sandbox


@pytest.fixture
def http(sb):
    # A fresh connection per test: a request that crashed the server must not poison the next test.
    with httpx.Client(base_url=sb.url, timeout=10) as client:
        yield client


@pytest.fixture(autouse=True)
async def still_serving(sb):
    """After each test, the library's clients still get good answers from all three services."""
    yield
    async with AAIClient(sb.aai_url(), "lexis-prefect") as aai:
        token = (await aai.password_grant("demo", SecretStr("demo"))).access_token
    async with DDIStagingClient(sb.staging_url, token) as ddi, HEAppEClient(sb.heappe_url(), token) as heappe:
        assert SCRATCH in await ddi.info()
        assert [c.name for c in await heappe.list_available_clusters()] == ["Karolina"]
    assert httpx.get(f"{sb.url}/_sandbox/health", timeout=10).json() == {"status": "ok"}


@pytest.fixture
def token(http) -> str:
    return access_token(http)


@pytest.fixture
def code(http) -> str:
    return session(http)


@pytest.fixture(scope="module")
def expired_token(sb) -> str:
    """An access token the sandbox signed, once valid, now expired."""
    sb.settings(token_lifetime_seconds=1)
    try:
        with httpx.Client(base_url=sb.url, timeout=10) as client:
            expired = access_token(client)
    finally:
        sb.settings(token_lifetime_seconds=300)
    time.sleep(1.1)
    return expired


@pytest.fixture(scope="module")
def ids(sb) -> dict[str, int]:
    """Karolina's catalogue ids (and Barbora's cluster id), as ListAvailableClusters gives them."""
    with httpx.Client(base_url=sb.url, timeout=10) as client:
        barbora = catalogue_ids(client, session(client, base=BARBORA), base=BARBORA)
        return {**catalogue_ids(client, session(client)), "other_cluster": barbora["cluster"]}


# ---------------------------------------------------------------- helpers


def grant(http: httpx.Client, **form: str) -> httpx.Response:
    return http.post(f"{OIDC}/token", data={"client_id": "lexis-prefect", **form})


def access_token(http: httpx.Client, user: str = "demo") -> str:
    response = grant(http, grant_type="password", username=user, password=user)  # users are NAME:NAME here
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def heappe(http: httpx.Client, method: str, action: str, base: str = KAROLINA, **kwargs: Any) -> httpx.Response:
    return http.request(method, f"{base}/{action}", **kwargs)


def session(http: httpx.Client, user: str = "demo", base: str = KAROLINA) -> str:
    credentials = {"UserName": user, "OpenIdAccessToken": access_token(http, user)}
    response = heappe(http, "POST", AUTH, base=base, json={"Credentials": credentials})
    assert response.status_code == 200, response.text
    return response.json()


def catalogue_ids(http: httpx.Client, code: str, base: str = KAROLINA) -> dict[str, int]:
    [cluster] = heappe(http, "GET", CLUSTERS, base=base, params={"sessionCode": code}).json()
    node = cluster["NodeTypes"][0]
    project = node["Projects"][0]
    return {
        "cluster": cluster["Id"],
        "node_type": node["Id"],
        "max_cores": node["CoresPerNode"] * node["NumberOfNodes"],
        "max_walltime": node["MaxWalltime"],
        "project": project["Id"],
        "template": next(t["Id"] for t in project["CommandTemplates"] if t["Name"] == "TestTemplate"),
    }


def oidc_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert body["error_description"]


def staging_error(response: httpx.Response, status: int, starts_with: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status", "errorString"}, body
    assert body["status"] == str(status)
    assert body["errorString"].startswith(starts_with), body
    return body


def problem(response: httpx.Response, status: int, title: str, detail: str = "") -> dict[str, Any]:
    """Assert an RFC 7807 ProblemDetails answer, titled as HEAppE's exception middleware does."""
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["title"], body["status"]) == (title, status), body
    assert detail in body["detail"], body
    return body


def stage_body(**overrides: Any) -> dict[str, Any]:
    """A valid stage request: the demo dataset into a new iRODS dataset."""
    return {
        "source_system": STORAGE,
        "source_path": dataset_path(DEMO_DATASET_ID, "myproject"),
        "target_system": IRODS,
        "target_path": zone_path("project", "myproject"),
        "encryption": "no",
        "compression": "no",
        "metadata": {"title": "bad-input test"},
        **overrides,
    }


def staging_outcome(http: httpx.Client, token: str, request_id: str, timeout: float = 5.0) -> str:
    """The request's status once it leaves queued/in progress, or its last status at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        status = http.get(f"/staging/stage/{request_id}", headers=bearer(token)).json()["status"]
        if status not in (QUEUED, IN_PROGRESS) or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def job_spec(ids: dict[str, int], name: str = "bad-input", job: dict | None = None, **task: Any) -> dict[str, Any]:
    spec_task = {
        "Name": "t",
        "MinCores": 1,
        "MaxCores": 1,
        "WalltimeLimit": 60,
        "ClusterNodeTypeId": ids["node_type"],
        "CommandTemplateId": ids["template"],
        "TemplateParameterValues": [{"CommandParameterIdentifier": "input_param", "ParameterValue": "x"}],
        "ProgressFile": "progress.txt",  # required by HEAppE's JobManagementValidator
        "LogFile": "log.txt",
        **task,
    }
    return {
        "Name": name,
        "ProjectId": ids["project"],
        "ClusterId": ids["cluster"],
        "FileTransferMethodId": ids["cluster"],
        "Tasks": [spec_task],
        **(job or {}),
    }


def create_job(http: httpx.Client, code: str, ids: dict[str, int], **task: Any) -> dict[str, Any]:
    response = heappe(http, "POST", CREATE, json={"SessionCode": code, "JobSpecification": job_spec(ids, **task)})
    assert response.status_code == 200, response.text
    return response.json()


def submit(http: httpx.Client, code: str, job_id: int) -> httpx.Response:
    return heappe(http, "PUT", SUBMIT, json={"SessionCode": code, "CreatedJobInfoId": job_id})


def job_info(http: httpx.Client, code: str, job_id: int) -> httpx.Response:
    return heappe(http, "GET", INFO, params={"sessionCode": code, "submittedJobInfoId": job_id})


def wait_for_state(http: httpx.Client, code: str, job_id: int, state: int, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (info := job_info(http, code, job_id).json())["State"] != state:
        assert time.monotonic() < deadline, f"job {job_id} still in state {info['State']}, waited for {state}"
        time.sleep(0.1)
    return info


# ---------------------------------------------------------------- AAI


def test_aai_wrong_password_is_invalid_grant(http):
    oidc_error(grant(http, grant_type="password", username="demo", password="wrong"), 401, "invalid_grant")


def test_aai_unknown_client_is_invalid_client(http):
    response = http.post(
        f"{OIDC}/token", data={"client_id": "no-such-client", "grant_type": "password", "username": "demo", "password": "demo"}
    )
    oidc_error(response, 401, "invalid_client")


def test_aai_unsupported_grant_type_is_400(http):
    oidc_error(grant(http, grant_type="implicit"), 400, "unsupported_grant_type")


def test_aai_garbage_refresh_token_is_invalid_grant(http):
    oidc_error(grant(http, grant_type="refresh_token", refresh_token="not.a.token"), 400, "invalid_grant")


def test_aai_token_exchange_of_an_expired_token_is_400(http, expired_token):
    response = grant(
        http,
        grant_type=TOKEN_EXCHANGE,
        subject_token=expired_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        requested_token_type=REFRESH_TOKEN_TYPE,
        scope="offline_access",
    )
    oidc_error(response, 400, "invalid_token")  # Keycloak's answer to a bad subject_token


def test_aai_introspect_by_a_public_client_is_403_client_not_allowed(http):
    # A confidential client's introspection (of garbage too) is tests/thirdparty/test_keycloak.py's.
    response = http.post(f"{OIDC}/token/introspect", data={"client_id": "lexis-prefect", "token": "garbage"})
    oidc_error(response, 403, "invalid_request")
    assert response.json()["error_description"] == "Client not allowed."


def test_aai_userinfo_without_bearer_is_401(http):
    oidc_error(http.get(f"{OIDC}/userinfo"), 401, "invalid_token")


# ---------------------------------------------------------------- DDI staging


def test_staging_stage_without_authorization_is_the_400_of_the_published_view(http):
    # ddi-service-apis 9e96c41 views.py `stage`: `request.headers.get('Authorization').split(" ")[1]`
    # raises inside `except Exception` -> MalformedRequest(str(e)); the 401 branch is unreachable.
    response = http.post("/staging/stage", json=stage_body())
    assert response.status_code == 400
    assert response.json() == {"status": "400", "errorString": "Malformed request. 'NoneType' object has no attribute 'split'"}


def test_staging_delete_without_authorization_is_401(http):
    # views.py `delete_copy`: `except AttributeError: return errors.NoAuth()`.
    response = http.request("DELETE", "/staging/delete", json={"target_system": IRODS, "target_path": "project/x/y"})
    assert response.status_code == 401
    assert response.json() == {"status": "401", "errorString": "No Authorization header or wrong format"}


@pytest.mark.parametrize("which", ["garbage", "expired"])
def test_staging_with_a_rejected_token_is_401(http, expired_token, which):
    # `/info` reads no token at all (views.py `get_targets`); `/stage` does (utils.py `getDDIAttributes`).
    rejected = {"garbage": "garbage.token.here", "expired": expired_token}[which]
    response = http.post("/staging/stage", headers=bearer(rejected), json=stage_body())
    assert staging_error(response, 401, "Inactive token")["errorString"] == "Inactive token"  # as Py4Lexis expects it


def test_staging_body_not_json_is_400(http, token):
    response = http.post("/staging/stage", headers={**bearer(token), "Content-Type": "application/json"}, content=b"{not json")
    assert staging_error(response, 400, "Malformed request.")["errorString"] == "Malformed request. Invalid JSON"


CHECK_SOURCE_AND_TARGET = "Malformed request. 'Input is not valid. Please check source and target information'"


@pytest.mark.parametrize("field", ["source_system", "source_path", "target_system", "target_path"])
def test_staging_missing_field_is_400(http, token, field):
    # validate_input.py `validate_staging_input_body`: each of them is required (target_path too).
    body = stage_body()
    del body[field]
    response = http.post("/staging/stage", headers=bearer(token), json=body)
    assert staging_error(response, 400, "Malformed request.")["errorString"] == CHECK_SOURCE_AND_TARGET


@pytest.mark.parametrize("field", ["encryption", "compression"])
def test_staging_missing_flag_is_400(http, token, field):
    body = stage_body()
    del body[field]
    response = http.post("/staging/stage", headers=bearer(token), json=body)
    assert staging_error(response, 400, "Malformed request.")["errorString"] == CHECK_SOURCE_AND_TARGET


@pytest.mark.parametrize("field", ["encryption", "compression"])
def test_staging_flag_other_than_yes_or_no_is_400(http, token, field):
    response = http.post("/staging/stage", headers=bearer(token), json=stage_body(**{field: "maybe"}))
    assert staging_error(response, 400, "Malformed request.")["errorString"] == (
        f"Malformed request. 'Input is not valid. Check {field} values. Allowed values are yes or no'"
    )


def test_staging_unknown_system_is_400(http, token):
    # generate_config.get_type raises KeyError inside the same try as the missing keys.
    response = http.post("/staging/stage", headers=bearer(token), json=stage_body(source_system="atlantis_iRODS"))
    assert staging_error(response, 400, "Malformed request.")["errorString"] == CHECK_SOURCE_AND_TARGET


def test_staging_hpc_side_without_job_is_400(http, token):
    response = http.post("/staging/stage", headers=bearer(token), json=stage_body(target_system=SCRATCH, target_path="/in"))
    assert staging_error(response, 400, "Malformed request.")["errorString"] == (
        "Malformed request. 'Input is not valid. HEAppE job and task id are required'"
    )


def test_staging_irods_target_without_metadata_is_400(http, token):
    body = stage_body()
    del body["metadata"]
    response = http.post("/staging/stage", headers=bearer(token), json=body)
    assert staging_error(response, 400, "Malformed request.")["errorString"] == (
        "Malformed request. 'Input is not valid. Metadata are required'"
    )


def test_staging_missing_dataset_fails_asynchronously(http, token):
    missing = dataset_path(str(uuid.uuid4()), "myproject")
    response = http.post("/staging/stage", headers=bearer(token), json=stage_body(source_path=missing))
    assert response.status_code == 201, response.text
    status = staging_outcome(http, token, response.json()["request_id"])
    assert status.startswith(FAILED_PREFIX) and len(status) > len(FAILED_PREFIX), status


def test_staging_to_a_missing_heappe_job_fails_asynchronously(http, token, sb):
    body = stage_body(target_system=SCRATCH, target_path="/in", heappe_url=sb.heappe_url(), job_id=987654, task_id=1)
    del body["metadata"]
    response = http.post("/staging/stage", headers=bearer(token), json=body)
    assert response.status_code == 201, response.text
    status = staging_outcome(http, token, response.json()["request_id"])
    # staging_api.py `nfs_to_local_hpc`: HEAppE gives no file transfer method for the job.
    assert status == f"{FAILED_PREFIX}HEAppE job ID is invalid", status


def test_staging_unknown_request_id_reads_as_queued(http, token):
    response = http.get(f"/staging/stage/{uuid.uuid4()}", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"status": QUEUED}


def test_staging_path_with_nul_byte_ends_failed(http, token):
    response = http.post("/staging/stage", headers=bearer(token), json=stage_body(source_path="bad\u0000path"))
    if response.status_code == 201:  # refusing it up front (400) would do too
        assert staging_outcome(http, token, response.json()["request_id"], timeout=3).startswith(FAILED_PREFIX)
    else:
        staging_error(response, 400, "Malformed request.")


def test_staging_delete_of_a_system_root_leaves_the_registry_consistent(http, token, sb):
    dataset = sb.control("POST", "datasets", json={"files": {"a.txt": "A\n"}, "system": IRODS})
    response = http.request("DELETE", "/staging/delete", headers=bearer(token), json={"target_system": IRODS, "target_path": "/"})
    if response.status_code == 201:
        deadline = time.monotonic() + 5
        while http.get(f"/staging/delete/{response.json()['request_id']}", headers=bearer(token)).json()["status"] in (
            QUEUED,
            IN_PROGRESS,
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    # Either the delete was refused and the dataset kept its files, or the registry forgot it too.
    if dataset["id"] in {d["id"] for d in sb.control("GET", "datasets")}:
        assert sb.dataset_files(dataset["id"]) == {"a.txt": "A\n"}


def test_staging_wrong_method_is_405_with_staging_error_body(http, token):
    staging_error(http.get("/staging/stage", headers=bearer(token)), 405, "Method Not Allowed")


# ---------------------------------------------------------------- HEAppE: authentication


def test_heappe_authenticate_with_invalid_token_is_401(http):
    body = {"Credentials": {"UserName": "demo", "OpenIdAccessToken": "invalid-token"}}
    problem(heappe(http, "POST", AUTH, json=body), 401, "UserOrg Authentication Problem", "Invalid or not active token")


def test_heappe_authenticate_ignores_the_user_name_sent(http, token, ids):
    # HEAppE asks UserOrg whose token it is; the UserName is only logged (UserAndLimitationManagementLogic).
    body = {"Credentials": {"UserName": "bob", "OpenIdAccessToken": token}}  # demo's token
    response = heappe(http, "POST", AUTH, json=body)
    assert response.status_code == 200, response.text
    job = create_job(http, response.json(), ids)
    problem(job_info(http, session(http, "bob"), job["Id"]), 401, "Session Code Authentication Problem")


def test_heappe_authenticate_without_credentials_is_500(http):
    problem(heappe(http, "POST", AUTH, json={"UserName": "demo"}), 500, "Problem")


@pytest.mark.parametrize("action", [CLUSTERS, INFO, CREATE, SUBMIT])
def test_heappe_unknown_session_code_is_401(http, ids, action):
    unknown = str(uuid.uuid4())
    requests = {
        CLUSTERS: ("GET", {"params": {"sessionCode": unknown}}),
        INFO: ("GET", {"params": {"sessionCode": unknown, "submittedJobInfoId": 1}}),
        CREATE: ("POST", {"json": {"SessionCode": unknown, "JobSpecification": job_spec(ids)}}),
        SUBMIT: ("PUT", {"json": {"SessionCode": unknown, "CreatedJobInfoId": 1}}),
    }
    method, kwargs = requests[action]
    problem(heappe(http, method, action, **kwargs), 401, "Unauthorized Access", "Unauthorized")  # V6.3.2


def test_heappe_expired_session_code_is_401(http, code, sb):
    assert heappe(http, "GET", CLUSTERS, params={"sessionCode": code}).status_code == 200
    assert sb.control("POST", "sessions/expire")["expired"] >= 1
    problem(heappe(http, "GET", CLUSTERS, params={"sessionCode": code}), 401, "Session Code Authentication Problem")


def test_heappe_malformed_json_is_400(http):
    response = heappe(http, "POST", CREATE, content=b'{"SessionCode": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["title"] == "One or more validation errors occurred.", response.text


# ---------------------------------------------------------------- HEAppE: CreateJob validation (404, as HEAppE maps it)

INVALID_SPECS: dict[str, Callable[[dict[str, int]], dict[str, Any]]] = {
    "unknown CommandTemplateId": lambda ids: {"CommandTemplateId": 9999},
    "unknown ClusterNodeTypeId": lambda ids: {"ClusterNodeTypeId": 9999},
    "unknown ProjectId": lambda ids: {"job": {"ProjectId": 9999}},
    "ClusterId of another location": lambda ids: {"job": {"ClusterId": ids["other_cluster"]}},
    "missing template parameter": lambda ids: {"TemplateParameterValues": []},
    "WalltimeLimit above the maximum": lambda ids: {"WalltimeLimit": ids["max_walltime"] + 1},
}


@pytest.mark.parametrize("case", INVALID_SPECS)
def test_heappe_create_job_with_invalid_spec_is_404_and_records_nothing(http, code, ids, sb, case):
    jobs_before = len(sb.jobs())
    body = {"SessionCode": code, "JobSpecification": job_spec(ids, **INVALID_SPECS[case](ids))}
    problem(heappe(http, "POST", CREATE, json=body), 404, "Validation Problem")
    assert len(sb.jobs()) == jobs_before


# ---------------------------------------------------------------- HEAppE: job lifecycle misuse


def test_heappe_info_of_a_missing_job_is_404(http, code):
    problem(job_info(http, code, 987654), 404, "Validation Problem", "987654")


def test_heappe_submit_twice_is_404(http, code, ids):
    job = create_job(http, code, ids)
    assert submit(http, code, job["Id"]).status_code == 200
    problem(submit(http, code, job["Id"]), 404, "Validation Problem", "Unable to submit the job (incorrect job state).")
    assert job_info(http, code, job["Id"]).json()["State"] != CONFIGURING


def test_heappe_cancel_of_a_finished_job_is_400(http, code, ids):
    job = create_job(http, code, ids)
    assert submit(http, code, job["Id"]).status_code == 200
    wait_for_state(http, code, job["Id"], FINISHED)
    response = heappe(http, "PUT", CANCEL, json={"SessionCode": code, "SubmittedJobInfoId": job["Id"]})
    problem(response, 400, "Invalid Request", "Finished")
    assert job_info(http, code, job["Id"]).json()["State"] == FINISHED


def test_heappe_delete_twice_is_400_cannot_delete(http, code, ids):
    job = create_job(http, code, ids)
    body = {"SessionCode": code, "SubmittedJobInfoId": job["Id"], "archiveLogs": False}
    first = heappe(http, "DELETE", DELETE, json=body)
    assert (first.status_code, first.json()) == (200, "Job was deleted")
    problem(heappe(http, "DELETE", DELETE, json=body), 400, "Invalid Request", f"Cannot delete job '{job['Id']}', this job is in state 'Deleted'.")
    assert job_info(http, code, job["Id"]).json()["State"] == DELETED


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "../../../../../../../../etc/passwd"])
def test_heappe_download_outside_the_job_is_400_not_existing_path(http, code, ids, path):
    job = create_job(http, code, ids)
    body = {"SessionCode": code, "SubmittedJobInfoId": job["Id"], "RelativeFilePath": path}
    problem(heappe(http, "POST", DOWNLOAD, json=body), 400, "Invalid Request", f"Requested path '{path}' was not found.")


def test_heappe_download_of_a_path_with_nul_byte_is_404(http, code, ids):
    job = create_job(http, code, ids)
    body = {"SessionCode": code, "SubmittedJobInfoId": job["Id"], "RelativeFilePath": "a\u0000b"}
    problem(heappe(http, "POST", DOWNLOAD, json=body), 404, "Validation Problem", "Path contains some illegal characters")


def test_heappe_task_file_names_cannot_leave_the_job(http, code, ids):
    response = heappe(
        http, "POST", CREATE, json={"SessionCode": code, "JobSpecification": job_spec(ids, StandardOutputFile="/etc/passwd")}
    )
    if response.status_code != 200:  # refusing such a spec is fine
        problem(response, 404, "Validation Problem")
        return
    job = response.json()
    offsets = [{"SubmittedTaskInfoId": job["Tasks"][0]["Id"], "FileType": 3, "Offset": 0}]
    parts = heappe(http, "POST", PARTS, json={"SessionCode": code, "SubmittedJobInfoId": job["Id"], "TaskFileOffsets": offsets})
    assert parts.status_code == 200, parts.text
    assert "root:" not in parts.json()[0]["Content"]


def test_heappe_file_parts_with_a_huge_offset_is_not_a_server_error(http, code, ids):
    job = create_job(http, code, ids)
    assert submit(http, code, job["Id"]).status_code == 200
    wait_for_state(http, code, job["Id"], FINISHED)  # stdout.txt exists now
    offsets = [{"SubmittedTaskInfoId": job["Tasks"][0]["Id"], "FileType": 3, "Offset": 10**20}]
    response = heappe(http, "POST", PARTS, json={"SessionCode": code, "SubmittedJobInfoId": job["Id"], "TaskFileOffsets": offsets})
    assert response.status_code < 500, response.text


def test_heappe_another_users_job_is_401(http, code, ids):
    job = create_job(http, code, ids)
    bob = session(http, "bob")
    denied = "Session Code Authentication Problem"
    problem(job_info(http, bob, job["Id"]), 401, denied)
    problem(submit(http, bob, job["Id"]), 401, denied)
    problem(heappe(http, "DELETE", DELETE, json={"SessionCode": bob, "SubmittedJobInfoId": job["Id"]}), 401, denied)
    assert job_info(http, code, job["Id"]).json()["State"] == CONFIGURING  # untouched


def test_heappe_bad_task_file_name_does_not_stop_other_jobs():
    with SandboxProcess("--job-seconds", "0") as own, httpx.Client(base_url=own.url, timeout=10) as http:
        code = session(http)
        own_ids = catalogue_ids(http, code)
        bad_spec = job_spec(own_ids, StandardOutputFile="o\u0000.txt")
        bad = heappe(http, "POST", CREATE, json={"SessionCode": code, "JobSpecification": bad_spec})
        if bad.status_code == 200:  # refusing it (404) would do too
            submit(http, code, bad.json()["Id"])
            time.sleep(1)
        good = create_job(http, code, own_ids)
        assert submit(http, code, good["Id"]).status_code == 200
        wait_for_state(http, code, good["Id"], FINISHED, timeout=8)


# ---------------------------------------------------------------- an unavailable location


@pytest.fixture
def barbora_down(sb):
    sb.set_available("Barbora", False)
    try:
        yield
    finally:
        sb.set_available("Barbora", True)


@pytest.mark.usefixtures("barbora_down")
def test_unavailable_location_answers_503_to_every_heappe_call(http, code):
    for method, action in HEAPPE_ROUTES:
        kwargs = {"params": {"sessionCode": code}} if method == "GET" else {"json": {"SessionCode": code}}
        problem(heappe(http, method, action, base=BARBORA, **kwargs), 503, "Service Unavailable", "Barbora")
    # Karolina is another HEAppE: it keeps working.
    assert heappe(http, "GET", CLUSTERS, params={"sessionCode": code}).json()[0]["Name"] == "Karolina"


def test_unavailable_location_recovers_when_available_again(http, sb):
    sb.set_available("Barbora", False)
    try:
        assert heappe(http, "POST", AUTH, base=BARBORA, json={}).status_code == 503
    finally:
        sb.set_available("Barbora", True)
    barbora = session(http, base=BARBORA)
    clusters = heappe(http, "GET", CLUSTERS, base=BARBORA, params={"sessionCode": barbora})
    assert clusters.status_code == 200
    assert clusters.json()[0]["Name"] == "Barbora"
