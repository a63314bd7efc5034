"""The sandbox HEAppE refuses what HEAppE refuses, as HEAppE answers it (lexis_prefect/sandbox/heappe/rules.py,
business_rules.py).

One sandbox subprocess per HEAppE profile for the module; each test sends one bad request over raw
HTTP and checks status, title and message. The rule table with sources: docs/lexis-contract.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lexis_prefect.sandbox import SandboxConfig, SandboxProcess
from lexis_prefect.sandbox.heappe import business_rules as business
from lexis_prefect.sandbox.heappe import rules
from lexis_prefect.sandbox.heappe.versions import PROFILES, VERSIONS

AUTH = "/heappe/UserAndLimitationManagement/AuthenticateLexisToken"
CLUSTERS = "/heappe/ClusterInformation/ListAvailableClusters"
CREATE, SUBMIT, CANCEL, DELETE = (f"/heappe/JobManagement/{a}" for a in ("CreateJob", "SubmitJob", "CancelJob", "DeleteJob"))
INFO = "/heappe/JobManagement/CurrentInfoForJob"
PARTS = "/heappe/FileTransfer/DownloadPartsOfJobFilesFromCluster"
DOWNLOAD = "/heappe/FileTransfer/DownloadFileFromCluster"
NOT_VALID = "Submitted job specification is not valid: \\r\\n "
_sandboxes: dict[str, SandboxProcess] = {}


@pytest.fixture(scope="module", autouse=True)
def _stop_sandboxes() -> Iterator[None]:
    yield
    for sandbox in _sandboxes.values():
        sandbox.stop()
    _sandboxes.clear()


class HEAppE:
    """Raw HTTP to one sandbox HEAppE at one profile, logged in as demo."""

    def __init__(self, version: str, bearer: bool = False) -> None:
        key = version + ("+bearer" if bearer else "")
        if key not in _sandboxes:
            args = ["--job-seconds", "0", "--heappe-version", version] + (["--heappe-bearer"] if bearer else [])
            _sandboxes[key] = SandboxProcess(*args).start()
            _sandboxes[key].settings(queue_seconds=0.05)
        self.sandbox, self.version, self.profile = _sandboxes[key], version, PROFILES[version]
        self.http = httpx.Client(base_url=self.sandbox.url, timeout=10)
        self.token = self.sandbox.demo_token().get_secret_value()
        self.code = "" if bearer else self.post(AUTH, {"Credentials": {"UserName": "demo", "OpenIdAccessToken": self.token}}).json()
        catalogue = self.http.get(CLUSTERS, params={"sessionCode": self.code}, headers=self.auth(bearer)).json()
        node = catalogue[0]["NodeTypes"][0]
        self.ids = {"cluster": catalogue[0]["Id"], "node_type": node["Id"], "max_walltime": node["MaxWalltime"],
                    "project": node["Projects"][0]["Id"], "template": node["Projects"][0]["CommandTemplates"][0]["Id"]}
        self.catalogue = catalogue

    def auth(self, bearer: bool) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if bearer else {}

    def post(self, path: str, body: Any, method: str = "POST", **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, json=body, **kwargs)

    def task(self, **fields: Any) -> dict[str, Any]:
        return {"Name": "t", "MinCores": 1, "MaxCores": 1, "WalltimeLimit": 60, "ClusterNodeTypeId": self.ids["node_type"],
                "CommandTemplateId": self.ids["template"], "StandardOutputFile": "stdout.txt", "StandardErrorFile": "stderr.txt",
                "ProgressFile": "progress.txt", "LogFile": "log.txt",
                "TemplateParameterValues": [{"CommandParameterIdentifier": "input_param", "ParameterValue": "x"}], **fields}

    def spec(self, job: dict[str, Any] | None = None, **task: Any) -> dict[str, Any]:
        return {"Name": "job", "ProjectId": self.ids["project"], "ClusterId": self.ids["cluster"],
                "FileTransferMethodId": self.ids["cluster"], "Tasks": [self.task(**task)], **(job or {})}

    def create(self, job: dict[str, Any] | None = None, **task: Any) -> httpx.Response:
        return self.post(CREATE, {"SessionCode": self.code, "JobSpecification": self.spec(job, **task)})

    def created(self) -> dict[str, Any]:
        response = self.create()
        assert response.status_code == 200, response.text
        return response.json()

    def state_after(self, job_id: int, wanted: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.http.get(INFO, params={"sessionCode": self.code, "submittedJobInfoId": job_id}).json()["State"] != wanted:
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.fixture(params=VERSIONS)
def api(request: pytest.FixtureRequest) -> HEAppE:
    return HEAppE(request.param)


@pytest.fixture
def v63() -> HEAppE:
    return HEAppE("6.3")


def refused(response: httpx.Response, status: int, title: str, detail: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert (body["title"], body["status"]) == (title, status), body
    if detail is not None:
        assert body.get("detail") == detail, body
    return body


def annotation(response: httpx.Response, key: str, message: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["title"] == "One or more validation errors occurred." and body["errors"][key] == [message], body


# ---------------------------------------------------------------- legal requests, each profile


def test_a_legal_job_runs_at_every_profile(api: HEAppE):
    job = api.created()
    code = api.code
    assert api.post(SUBMIT, {"SessionCode": code, "CreatedJobInfoId": job["Id"]}, "PUT").status_code == 200
    api.state_after(job["Id"], 16)
    offsets = [{"SubmittedTaskInfoId": job["Tasks"][0]["Id"], "FileType": 3, "Offset": 0}]
    [part] = api.post(PARTS, {"SessionCode": code, "SubmittedJobInfoId": job["Id"], "TaskFileOffsets": offsets}).json()
    assert "TestTemplate finished" in part["Content"] and part["Offset"] == 0
    deleted = api.post(DELETE, {"SessionCode": code, "SubmittedJobInfoId": job["Id"]}, "DELETE")
    assert (deleted.status_code, deleted.json()) == (200, api.profile.delete_answer)  # "Job deleted." in V4.3.0
    state = api.http.get(INFO, params={"sessionCode": code, "submittedJobInfoId": job["Id"]}).json()["State"]
    assert state == (256 if api.profile.deleted_state else 16)


def test_catalogue_shape_per_version(api: HEAppE):
    [cluster] = api.catalogue
    node = cluster["NodeTypes"][0]
    assert "MasterNodeName" not in cluster
    assert ("FileTransferMethodIds" in cluster) == ("ClusterId" in node) == (api.version in ("6.0", "6.3"))
    assert ("Queue" in node) == (api.version != "4.3")


# ---------------------------------------------------------------- REST validator of CreateJob (404)

CREATE_RULES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    # case: (job fields, task fields, message line)
    "job name charset": ({"Name": "a/b"}, {}, "Name contains illegal characters."),
    "job name empty": ({"Name": ""}, {}, "Name cannot be empty."),
    "task name charset": ({}, {"Name": "t!"}, "Task name contains illegal characters."),
    "MinCores 0": ({}, {"MinCores": 0}, 'Minimal number of cores for task "t" has to be greater than 0.'),
    "MaxCores 0": ({}, {"MinCores": None, "MaxCores": 0}, 'Maximal number of cores for task "t" has to be greater than 0.'),
    "MinCores > MaxCores": ({}, {"MinCores": 2}, 'Minimal number of cores for task "t" cannot be greater than maximal number of cores.'),
    "walltime 0": ({}, {"WalltimeLimit": 0}, 'Walltime limit for task "t" has to be greater than 0.'),
    "JobArrays format": ({}, {"JobArrays": "1-x"}, 'JobArrays parameter for task "t" has wrong definition.'),
    "JobArrays range": ({}, {"JobArrays": "5-1"}, 'JobArrays parameter for task "t" has wrong filled minimum or maximum or step value.'),
    "stdout has a slash": ({}, {"StandardOutputFile": "out/x.txt"}, 'Standard output file for task "t" contains illegal characters.'),
    "progress file missing": ({}, {"ProgressFile": None}, 'Progress file for task "t" is not set.'),
    "log file too long": ({}, {"LogFile": "l" * 51}, 'Log file for task "t" cannot be longer than 50 characters.'),
    "log file charset": ({}, {"LogFile": "log$.txt"}, 'Log file for task "t" contains illegal characters.'),
    "subdirectory charset": ({}, {"ClusterTaskSubdirectory": "a/b"}, 'Cluster task subdirectory for task "t" contains illegal characters.'),
    "placement policy charset (V6.3.2)": ({}, {"PlacementPolicy": "a$b"}, 'Placement policy specification for task "t" contains illegal characters.'),
    "required node too long": ({}, {"RequiredNodes": ["n" * 41]}, f'Required node "{"n" * 41}" specification for task "t" cannot be longer than 40 characters.'),
    "required node charset": ({}, {"RequiredNodes": ["n$"]}, 'Required node "n$" specification for task "t" contains illegal characters.'),
    "email format": ({"NotificationEmail": "a@b.example"}, {}, "Notification email address is in a wrong format."),
    "phone format": ({"PhoneNumber": "12-34"}, {}, "Phone number is in a wrong format."),
    "job env name empty": ({"EnvironmentVariables": [{"Name": "", "Value": "v"}]}, {}, "Environment variable's name for the job cannot be empty. (=v)"),
    "no task": ({"Tasks": []}, {}, "Each job has to contain at least one task."),
    "ProjectId 0": ({"ProjectId": 0}, {}, "ProjectId must be greater than 0."),
}


@pytest.mark.parametrize("case", CREATE_RULES)
def test_create_job_rest_validator_is_404_with_its_message(v63: HEAppE, case: str):
    job, task, line = CREATE_RULES[case]
    refused(v63.create(job, **task), 404, "Validation Problem", line + "\n")


@pytest.mark.parametrize("version", VERSIONS)
def test_parallelization_cores_sum_uses_the_versions_json_name(version: str):
    api = HEAppE(version)
    items = [{"MaxCores": 1}, {"MaxCores": 1}]
    line = 'TaskParalizationSpecifications count of maximal cores for task "t" must be lower or equals to Maximal number of cores in task.\n'
    refused(api.create(**{api.profile.parallelization_key: items}), 404, "Validation Problem", line)
    other = {"TaskParalizationParameters", "TaskParallelizationParameters"} - {api.profile.parallelization_key}
    assert api.create(**{other.pop(): items}).status_code == 200  # the other spelling is an unknown member: skipped


@pytest.mark.parametrize("version", VERSIONS)
def test_template_parameter_value_null_check_from_v5(version: str):
    api = HEAppE(version)
    response = api.create(TemplateParameterValues=[{"CommandParameterIdentifier": "input_param", "ParameterValue": None}])
    if api.profile.template_value_null_checks:
        refused(response, 404, "Validation Problem", 'Parameter value for parameter "input_param" in task "t" cannot be null.\n')
    else:
        # V4.3.0 has no such check and creates the job (Regex.Escape(null) would fail at submit [derived]);
        # the sandbox's model refuses the null as a binding error: a known residual strictness.
        assert response.status_code == 400 and "ParameterValue" in str(response.json()["errors"]), response.text


@pytest.mark.parametrize("version", VERSIONS)
def test_session_code_format_per_version(version: str):
    api = HEAppE(version)
    body = {"SessionCode": "not-a-session-code", "CreatedJobInfoId": 1}
    response = api.post(SUBMIT, body, "PUT")
    if api.profile.session_validator == "off":  # V6.2.0+: the validator is commented out; the session is unknown
        refused(response, 401, "Unauthorized Access", "Unauthorized")
    else:
        refused(response, 404, "Validation Problem", "SessionCode has wrong format.\n\n")


def test_id_must_be_greater_than_zero(v63: HEAppE):
    refused(v63.post(CANCEL, {"SessionCode": v63.code, "SubmittedJobInfoId": 0}, "PUT"), 404, "Validation Problem",
            "SubmittedJobInfoId must be greater than 0\n")
    refused(v63.http.get(INFO, params={"sessionCode": v63.code}), 404, "Validation Problem", "SubmittedJobInfoId must be greater than 0\n")


def test_download_parts_item_rules(v63: HEAppE):
    body = {"SessionCode": v63.code, "SubmittedJobInfoId": 1, "TaskFileOffsets": [{"SubmittedTaskInfoId": 1, "Offset": -1}]}
    refused(v63.post(PARTS, body), 404, "Validation Problem", "Offset must be positive number\nProtocol must be set\n")


def test_download_file_path_charset(v63: HEAppE):
    body = {"SessionCode": v63.code, "SubmittedJobInfoId": 1, "RelativeFilePath": "a$b"}
    refused(v63.post(DOWNLOAD, body), 404, "Validation Problem", "Path contains some illegal characters\n")


# ---------------------------------------------------------------- DataAnnotations (400 ValidationProblemDetails)


def test_string_length_annotations_are_400_validation_problem_details(v63: HEAppE):
    annotation(v63.create({"Name": "n" * 51}), "JobSpecification.Name", "The field Name must be a string with a maximum length of 50.")
    annotation(v63.create(StandardErrorFile="e" * 31), "JobSpecification.Tasks[0].StandardErrorFile",
               "The field StandardErrorFile must be a string with a maximum length of 30.")
    annotation(v63.create({"EnvironmentVariables": [{"Name": "N", "Value": "v" * 101}]}),
               "JobSpecification.EnvironmentVariables[0].Value", "The field Value must be a string with a maximum length of 100.")
    annotation(v63.post(SUBMIT, {"SessionCode": "s" * 51, "CreatedJobInfoId": 1}, "PUT"), "SessionCode",
               "The field SessionCode must be a string with a maximum length of 50.")
    annotation(v63.post(DOWNLOAD, {"SessionCode": v63.code, "SubmittedJobInfoId": 1, "RelativeFilePath": "p" * 256}),
               "RelativeFilePath", "The field RelativeFilePath must be a string with a maximum length of 255.")


# ---------------------------------------------------------------- [RequestSizeLimit] (400, Kestrel's message as title)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("action", ["SubmitJob", "CancelJob", "DeleteJob", "DownloadPartsOfJobFilesFromCluster",
                                    "DownloadFileFromCluster", "AuthenticateLexisToken", "CreateJob"])
def test_request_size_limits(version: str, action: str):
    api = HEAppE(version)
    limit = api.profile.size_limits[action]
    paths = {"SubmitJob": ("PUT", SUBMIT), "CancelJob": ("PUT", CANCEL), "DeleteJob": ("DELETE", DELETE), "CreateJob": ("POST", CREATE),
             "DownloadPartsOfJobFilesFromCluster": ("POST", PARTS), "DownloadFileFromCluster": ("POST", DOWNLOAD), "AuthenticateLexisToken": ("POST", AUTH)}
    method, path = paths[action]
    response = api.http.request(method, path, content=b'{"Pad":"' + b"x" * limit + b'"}', headers={"Content-Type": "application/json"})
    body = refused(response, 400, f"Request body too large. The max request body size is {limit} bytes.")
    assert "detail" not in body


# ---------------------------------------------------------------- business rules of CreateJob (404, "not valid:")


def test_create_job_business_rules(v63: HEAppE):
    other = v63.ids["cluster"] + 1
    refused(v63.create({"FileTransferMethodId": other}), 404, "Validation Problem",
            NOT_VALID + "Job job has wrong FileTransferMethod\n"
            f'Command template "{v63.ids["template"]}" for task "t" has different file transfer method "{v63.ids["cluster"]}" '
            f'than job file transfer method "{other}".\n')
    refused(v63.create({"FileTransferMethodId": None}), 500, "Problem", rules.INTERNAL)
    refused(v63.create(WalltimeLimit=v63.ids["max_walltime"] + 1), 404, "Validation Problem",
            NOT_VALID + f"Defined task t has set higher WalltimeLimit ({v63.ids['max_walltime'] + 1}) than the maximum on this cluster "
            f"node, maximal WallTimeLimit is {v63.ids['max_walltime']}\n")
    refused(v63.create(TemplateParameterValues=[]), 404, "Validation Problem",
            NOT_VALID + 'Command Template parameter "input_param" does not have a value.\n')
    refused(v63.create(CommandTemplateId=9), 404, "Validation Problem", NOT_VALID + "Command Template does not exist.\n")
    refused(v63.create({"ProjectId": 999}), 404, "Validation Problem", "The specified project is not defined in the HEAppE.")
    refused(v63.create({"ClusterId": 999}), 404, "Validation Problem", "Requested cluster with Id '999' does not exist in the HEAppE.")
    unknown = [{"CommandParameterIdentifier": "input_param", "ParameterValue": "x"}, {"CommandParameterIdentifier": "nope", "ParameterValue": "y"}]
    assert v63.create(TemplateParameterValues=unknown, MaxCores=10**6).status_code == 200  # neither is checked by HEAppE


def test_template_node_type_and_project_binding():
    # The sandbox catalogue has one node type per cluster and templates of no project: checked on the rule itself.
    profile = PROFILES["6.3"]
    nodes = {101: business.NodeTypeInfo(101, 3600, 1), 102: business.NodeTypeInfo(102, 3600, 1)}
    catalogue = business.Catalogue(1, (1,), nodes, {5: business.TemplateInfo(5, 101, (), project_id=2)}, (1, 2), (2,))
    spec = {"Name": "j", "ProjectId": 1, "ClusterId": 1, "FileTransferMethodId": 1,
            "Tasks": [{"Name": "t", "ClusterNodeTypeId": 102, "CommandTemplateId": 5}]}
    with pytest.raises(rules.HEAppEProblem) as refusal:
        business.business_create_job(profile, catalogue, spec)
    assert refusal.value.detail == NOT_VALID + rules.lines([
        "Requested project with Id 1 has no reference to cluster with Id 1.",
        "Task t has wrong CommandTemplate",
        'Task t has specified CommandTemplateId "5" which is not referenced to ProjectId "1" at JobSpecification',
        'Task "t" must used same ClusterNodeTypeId "102" which is defined in CommandTemplate (ClusterNodeTypeId="101").',
    ])


# ---------------------------------------------------------------- job states


@pytest.mark.parametrize("version", VERSIONS)
def test_submit_cancel_delete_state_rules(version: str):
    api = HEAppE(version)
    job = api.created()
    code, job_id = api.code, job["Id"]
    assert api.post(SUBMIT, {"SessionCode": code, "CreatedJobInfoId": job_id}, "PUT").status_code == 200
    refused(api.post(SUBMIT, {"SessionCode": code, "CreatedJobInfoId": job_id}, "PUT"), 404, "Validation Problem",
            "Unable to submit the job (incorrect job state).")
    api.state_after(job_id, 16)
    cancel = api.post(CANCEL, {"SessionCode": code, "SubmittedJobInfoId": job_id}, "PUT")
    status, title = (400, "Invalid Request") if api.profile.invalid_request_case else (500, "External Problem")
    refused(cancel, status, title, f"Cannot cancel job '{job_id}', this job is in state 'Finished'.")
    configuring = api.created()["Id"]
    cancel = api.post(CANCEL, {"SessionCode": code, "SubmittedJobInfoId": configuring}, "PUT")
    if api.profile.cancel_configuring:
        assert cancel.status_code == 200 and cancel.json()["State"] == 64
    else:
        refused(cancel, 500, "External Problem", f"Cannot cancel job '{configuring}', this job is in state 'Configuring'.")
    running = api.created()["Id"]
    api.sandbox.settings(queue_seconds=30)
    try:
        assert api.post(SUBMIT, {"SessionCode": code, "CreatedJobInfoId": running}, "PUT").status_code == 200
        refused(api.post(DELETE, {"SessionCode": code, "SubmittedJobInfoId": running}, "DELETE"), status, title,
                f"Cannot delete job '{running}', this job is in state 'Submitted'.")
    finally:
        api.sandbox.settings(queue_seconds=0.05)


@pytest.mark.parametrize("version", VERSIONS)
def test_sessions_and_foreign_jobs_per_version(version: str):
    api = HEAppE(version)
    unknown = "00000000-0000-0000-0000-000000000000"
    response = api.http.get(INFO, params={"sessionCode": unknown, "submittedJobInfoId": 1})
    if api.profile.unknown_session_unauthorized:
        refused(response, 401, "Unauthorized Access", "Unauthorized")
    else:
        refused(response, 401, "Session Code Authentication Problem", f"Session code '{unknown}' is not present in the HEAppE.")
    refused(api.http.get(INFO, params={"sessionCode": api.code, "submittedJobInfoId": 987654}), 404, "Validation Problem",
            "Requested job info with Id: '987654' does not exist in the HEAppE.")
    bad = api.post(AUTH, {"Credentials": {"UserName": "demo", "OpenIdAccessToken": "garbage"}})
    refused(bad, 401, api.profile.auth_title, "Invalid or not active token provided. Unable to authenticate user by provided credentials.")


@pytest.mark.parametrize("version", VERSIONS)
def test_list_clusters_session_parameter_per_version(version: str):
    api = HEAppE(version)
    response = api.http.get(CLUSTERS)
    if api.profile.list_clusters_session == "none":
        assert response.status_code == 200  # V4.3.0: an anonymous action
    elif api.profile.list_clusters_session == "required":
        annotation(response, "sessionCode", "The sessionCode field is required.")
    else:
        refused(response, 401, "Unauthorized Access", "Unauthorized")


def test_download_parts_semantics(v63: HEAppE):
    job = v63.created()
    task_id = job["Tasks"][0]["Id"]
    body = {"SessionCode": v63.code, "SubmittedJobInfoId": job["Id"],
            "TaskFileOffsets": [{"SubmittedTaskInfoId": task_id, "FileType": 3, "Offset": 0}, {"SubmittedTaskInfoId": 424242, "FileType": 3}]}
    assert v63.post(PARTS, body).json() == []  # no file yet: no entry; an unknown task id: ignored
    assert v63.post(SUBMIT, {"SessionCode": v63.code, "CreatedJobInfoId": job["Id"]}, "PUT").status_code == 200
    v63.state_after(job["Id"], 16)
    first = v63.post(PARTS, {**body, "TaskFileOffsets": body["TaskFileOffsets"][:1]}).json()[0]["Content"]
    body["TaskFileOffsets"][0]["Offset"] = 5
    [part] = v63.post(PARTS, body).json()
    assert part["Offset"] == 5 and part["Content"] == first.encode()[5:].decode()


# ---------------------------------------------------------------- bearer mode (V6.1+)


def test_bearer_mode():
    api = HEAppE("6.3", bearer=True)
    answer = api.post(AUTH, {"Credentials": {"UserName": "demo", "OpenIdAccessToken": api.token}})
    assert (answer.status_code, answer.json()) == (200, "HEADER-AUTH-NEEDED")
    bad = api.http.get(CLUSTERS, headers={"Authorization": "Bearer garbage"})
    assert (bad.status_code, bad.text, bad.headers.get("content-type")) == (401, "Unauthorized", None)
    refused(api.http.get(CLUSTERS), 401, "Unauthorized Access", "Unauthorized")  # no header: the (absent) session code
    spec = api.spec()
    created = api.post(CREATE, {"SessionCode": "ignored", "JobSpecification": spec}, headers=api.auth(True))
    assert created.status_code == 200, created.text
    with pytest.raises(ValueError, match="no bearer mode"):
        SandboxConfig(heappe_version="6.0", heappe_bearer=True)
