"""The rules of HEAppE's request pipeline up to its business logic, with the HEAppE source that says so,
and the refusals (ProblemDetails) every rule answers with.

Rules run on the RAW request JSON (keys matched case-insensitively, as System.Text.Json binds them
with `PropertyNameCaseInsensitive`), before lexis-prefect's pydantic models parse it, so a refusal
reads as HEAppE's own. The order of the checks is HEAppE's request pipeline:

1. V6.1+ bearer mode: `LexisAuthMiddleware` (plain-text 401 `Unauthorized`) — `bearer_refusal`.
2. `[RequestSizeLimit]` of the action — `check_size`.
3. JSON model binding and DataAnnotations (`[ApiController]` answers 400 ValidationProblemDetails) — `annotations`.
4. The REST validator of the action (RestApi/InputValidator/*.cs, 404 "Validation Problem") — `rest_*`.
5. Session code → user (service tier), then the business logic (BusinessLogicTier) — `business_rules.py`.

Citations are `tag(s) — path` in It4innovations/HEAppE; "all" = V4.3.0, V5.0.0, V6.0.0, V6.3.2.
Per-version differences live in `versions.py`. The rule table goes into docs/lexis-contract.md.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi.responses import JSONResponse, Response

from lexis_prefect.sandbox.heappe.versions import HEAppEProfile

__all__ = ["HEAppEProblem"]

# -- answers: how RestApi/ExceptionMiddleware.cs and ASP.NET shape a refusal -------------------------

#: all — RestApi/ExceptionMiddleware.cs: `context.Response.ContentType = "application/json"` then
#: `WriteAsJsonAsync(problem)`, which sets `application/json; charset=utf-8` [ASP.NET behaviour].
JSON_TYPE = "application/json; charset=utf-8"
#: all — Exceptions/Resources/ExceptionsMessages.en.resx `InternalException` (title "Problem", status 500).
INTERNAL = "Problem occured! Contact the administrators."


class HEAppEProblem(Exception):
    """A refusal as HEAppE writes it: ProblemDetails (lowercase `title`/`status`/`detail`, `detail`
    omitted when null as ASP.NET's ProblemDetails serialiser does), ASP.NET's ValidationProblemDetails
    (`errors`), or a plain-text body."""

    def __init__(self, status: int, title: str, detail: str | None = None, *, errors: dict[str, list[str]] | None = None, text: str | None = None) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.errors, self.text = status, title, detail, errors, text

    def response(self) -> Response:
        if self.text is not None:
            return Response(self.text, status_code=self.status)  # no Content-Type, as HttpResponse.WriteAsync
        if self.errors is not None:
            # [ApiController] automatic 400 (ASP.NET ProblemDetailsFactory, net7.0/net9.0): type, title, status, errors, traceId.
            body = {
                "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                "title": "One or more validation errors occurred.",
                "status": 400,
                "errors": self.errors,
                "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00",
            }
            return JSONResponse(body, status_code=400, media_type="application/problem+json; charset=utf-8")
        body: dict[str, Any] = {"title": self.title, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        return JSONResponse(body, status_code=self.status, media_type=JSON_TYPE)


def lines(messages: list[str]) -> str:
    """Utils/Validation/AbstractValidator.cs (all): messages joined by `StringBuilder.AppendLine` ("\\n" on Linux)."""
    return "".join(f"{m}\n" for m in messages)


def validation(detail: str) -> HEAppEProblem:
    """all — ExceptionMiddleware: InputValidationException / RequestedObjectDoesNotExistException → 404."""
    return HEAppEProblem(404, "Validation Problem", detail)


def internal() -> HEAppEProblem:
    """all — ExceptionMiddleware default case (e.g. a NullReferenceException) → 500 "Problem"."""
    return HEAppEProblem(500, "Problem", INTERNAL)


def external(p: HEAppEProfile, detail: str) -> HEAppEProblem:
    """ExceptionMiddleware `case ExternalException`: 500 "External Problem" to V6.0.0, 502 "External Service Error" V6.3.2."""
    return HEAppEProblem(p.external[0], p.external[1], detail)


def invalid_request(p: HEAppEProfile, detail: str) -> HEAppEProblem:
    """InvalidRequestException: 400 "Invalid Request" from V5.0.0; an ExternalException in V4.3.0 (no own case)."""
    return HEAppEProblem(400, "Invalid Request", detail) if p.invalid_request_case else external(p, detail)


def bearer_refusal() -> HEAppEProblem:
    """V6.1.0+ — BusinessLogicTier/AuthMiddleware/LexisAuthMiddleware.cs: a Bearer token UserOrg refuses →
    `StatusCode = 401; WriteAsync("Unauthorized")`, before ExceptionMiddleware (plain text, no JSON)."""
    return HEAppEProblem(401, "Unauthorized", text="Unauthorized")


# -- reading the raw JSON -----------------------------------------------------------------------------


def get(data: Any, key: str) -> Any:
    """`data[key]` matched case-insensitively (all — RestApi/Startup.cs AddJsonOptions; V4.3.0 via
    JsonSerializerDefaults.Web); None if absent or `data` is not an object."""
    if not isinstance(data, dict):
        return None
    wanted = key.lower()
    return next((v for k, v in data.items() if str(k).lower() == wanted), None)


def items(data: Any, key: str) -> list[Any]:
    value = get(data, key)
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def cs_str(value: Any) -> str:
    """C# string interpolation: null is empty."""
    return "" if value is None else str(value)


# -- 2. [RequestSizeLimit] ----------------------------------------------------------------------------


def check_size(p: HEAppEProfile, action: str, body: bytes) -> None:
    """`[RequestSizeLimit(N)]` — all, RestApi/Controllers/{UserAndLimitationManagement,JobManagement,
    FileTransfer,ClusterInformation}Controller.cs (values per tag in versions.py).

    Kestrel throws BadHttpRequestException "Request body too large. The max request body size is N bytes."
    (.NET 5+ wording [ASP.NET, not HEAppE code]); ExceptionMiddleware (all) maps only the exact text
    "Request body too large." to 413, so this text gets status 400, title = the message, no detail
    [derived from the source, not seen on a live server]."""
    limit = p.size_limits.get(action)
    if limit is not None and len(body) > limit:
        raise HEAppEProblem(400, f"Request body too large. The max request body size is {limit} bytes.")


# -- 3. model binding and DataAnnotations (400 ValidationProblemDetails) ------------------------------


def parse_json(body: bytes) -> Any:
    """[ApiController] body binding: an empty body and malformed JSON are 400 ValidationProblemDetails
    [ASP.NET behaviour; the `errors` keys/messages are System.Text.Json's, approximated here]."""
    import json

    if not body.strip():
        raise HEAppEProblem(400, "", errors={"": ["A non-empty request body is required."]})
    try:
        return json.loads(body)
    except ValueError as exc:
        raise HEAppEProblem(400, "", errors={"$": [f"The JSON value is not valid: {exc}"]}) from None


def _length(errors: dict[str, list[str]], key: str, value: Any, limit: int) -> None:
    # StringLengthAttribute default message; the display name is the C# property name.
    if isinstance(value, str) and len(value) > limit:
        name = key.rsplit(".", 1)[-1]
        errors.setdefault(key, []).append(f"The field {name} must be a string with a maximum length of {limit}.")


def annotations(action: str, raw: Any) -> None:
    """DataAnnotations checked by ASP.NET before the action runs (all tags unless noted):
    `SessionCodeModel.SessionCode [StringLength(50)]` — RestApiModels/AbstractModels/SessionCodeModel.cs;
    `DownloadFileFromClusterModel.RelativeFilePath [StringLength(255)]` — RestApiModels/FileTransfer;
    `JobSpecificationExt` Name 50, SubProjectIdentifier 50, NotificationEmail 50, PhoneNumber 20;
    `TaskSpecificationExt` Name 50, PlacementPolicy 40, StandardInput/Output/ErrorFile 30,
    ClusterTaskSubdirectory 50; `EnvironmentVariableExt` Name 50, Value 100 — ExtModels/JobManagement/Models;
    `LexisCredentialsExt.OpenIdAccessToken [Required]`, `AuthenticationCredentialsExt.Username
    [StringLength(100)]` — ExtModels/UserAndLimitationManagement/Models. Keys are ModelState keys
    ("JobSpecification.Tasks[0].Name") [ASP.NET behaviour]."""
    errors: dict[str, list[str]] = {}
    if action == "AuthenticateLexisToken":
        credentials = get(raw, "Credentials")
        if isinstance(credentials, dict):
            _length(errors, "Credentials.Username", get(credentials, "Username"), 100)
            if get(credentials, "OpenIdAccessToken") is None:
                errors["Credentials.OpenIdAccessToken"] = ["The OpenIdAccessToken field is required."]
    else:
        _length(errors, "SessionCode", get(raw, "SessionCode"), 50)
    if action == "DownloadFileFromCluster":
        _length(errors, "RelativeFilePath", get(raw, "RelativeFilePath"), 255)
    if action == "CreateJob":
        job = get(raw, "JobSpecification")
        for name, limit in (("Name", 50), ("SubProjectIdentifier", 50), ("NotificationEmail", 50), ("PhoneNumber", 20)):
            _length(errors, f"JobSpecification.{name}", get(job, name), limit)
        _env_lengths(errors, "JobSpecification", job)
        for i, task in enumerate(items(job, "Tasks")):
            prefix = f"JobSpecification.Tasks[{i}]"
            for name, limit in (("Name", 50), ("PlacementPolicy", 40), ("StandardInputFile", 30), ("StandardOutputFile", 30),
                                ("StandardErrorFile", 30), ("ClusterTaskSubdirectory", 50)):
                _length(errors, f"{prefix}.{name}", get(task, name), limit)
            _env_lengths(errors, prefix, task)
    if errors:
        raise HEAppEProblem(400, "", errors=errors)


def _env_lengths(errors: dict[str, list[str]], prefix: str, owner: Any) -> None:
    for j, variable in enumerate(items(owner, "EnvironmentVariables")):
        _length(errors, f"{prefix}.EnvironmentVariables[{j}].Name", get(variable, "Name"), 50)
        _length(errors, f"{prefix}.EnvironmentVariables[{j}].Value", get(variable, "Value"), 100)


def query_id(name: str, value: str | None) -> int:
    """A query `long` that does not parse is a model-binding error → 400 ValidationProblemDetails
    ("The value 'x' is not valid for submittedJobInfoId." [ASP.NET]); a missing one binds 0."""
    if value is None or value == "":
        return 0
    try:
        return int(value)
    except ValueError:
        raise HEAppEProblem(400, "", errors={name: [f"The value '{value}' is not valid for {name}."]}) from None


# -- 4. REST validators (RestApi/InputValidator, 404 "Validation Problem") -----------------------------

_ILLEGAL = re.compile(r"[^a-zA-Z0-9_\-\ \.]+")  # all — Utils/Validation/AbstractValidator.cs ContainsIllegalCharacters
_ILLEGAL_PATH = re.compile(r"[^a-zA-Z0-9_\-\ \\\/\.\~]+")  # ContainsIllegalCharactersForPath (also \ / ~)
_PHONE = re.compile(r"^\+?[0-9\ ]+$")  # IsPhoneNumber
_EMAIL = re.compile(r"^[-0-9a-zA-Z.+_]+@[-0-9a-zA-Z.+_]+\.[a-zA-Z]{2,4}$")  # IsEmailAddress (TLD of 2-4 letters)
_SESSION = re.compile(r"^[0-z]{8}-[0-z]{4}-[0-z]{4}-[0-z]{4}-[0-z]{12}$")  # IsSessionCode
_CS_INT = re.compile(r"\s*[+-]?[0-9]+\s*")  # what C# int.TryParse takes (NumberStyles.Integer)


def _illegal(text: Any) -> bool:
    if text is None:  # Regex.IsMatch(null) throws ArgumentNullException → 500
        raise internal()
    return bool(_ILLEGAL.search(str(text)))


def _illegal_path(text: Any) -> bool:
    return bool(text) and bool(_ILLEGAL_PATH.search(str(text)))


def session_lines(p: HEAppEProfile, code: Any) -> list[str]:
    """RestApi/InputValidator/SessionCodeValidator.cs, appended by the caller with AppendLine:
    V4.3.0 checks only strings (null passes); V5.0.0–V6.1.x null → "cannot be empty."; V6.2.0+ disabled."""
    if p.session_validator == "off" or (code is None and p.session_validator == "string-only"):
        return []
    if code is None:
        return ["SessionCode cannot be empty."]
    if not isinstance(code, str) or code == "":
        return ["SessionCode cannot be empty.\n"]  # the inner AppendLine, then the caller's
    return [] if _SESSION.match(code) else ["SessionCode has wrong format.\n"]


def _id_line(value: Any, name: str) -> list[str]:
    """AbstractValidator.ValidateId (all): "{name} must be greater than 0" (no full stop)."""
    return [f"{name} must be greater than 0"] if (as_int(value) or 0) <= 0 else []


def _raise(messages: list[str]) -> None:
    if messages:
        raise validation(lines(messages))


def rest_job_id(p: HEAppEProfile, code: Any, job_id: Any, name: str = "SubmittedJobInfoId") -> None:
    """all — RestApi/InputValidator/JobManagementValidator.cs (SubmitJob: CreatedJobInfoId; CancelJob,
    DeleteJob, CurrentInfoForJob: SubmittedJobInfoId) and FileTransferValidator.cs (ListChangedFilesForJob):
    ValidateId, then the session code."""
    _raise(_id_line(job_id, name) + session_lines(p, code))


def rest_session(p: HEAppEProfile, code: Any) -> None:
    """all — JobManagementValidator ListJobsForCurrentUserModel; ClusterInformationValidator (V5.0.0+)."""
    _raise(session_lines(p, code))


def rest_download_parts(p: HEAppEProfile, raw: Any) -> None:
    """all — RestApi/InputValidator/FileTransferValidator.cs ValidateDownloadPartsOfJobFilesFromClusterModel;
    a null TaskFileOffsets is a NullReferenceException (foreach) → 500."""
    messages = _id_line(get(raw, "SubmittedJobInfoId"), "SubmittedJobInfoId") + session_lines(p, get(raw, "SessionCode"))
    offsets = get(raw, "TaskFileOffsets")
    if not isinstance(offsets, list):
        raise internal()
    for offset in offsets:
        task_id, start = as_int(get(offset, "SubmittedTaskInfoId")), as_int(get(offset, "Offset"))
        if task_id is not None and task_id <= 0:
            messages.append("SubmittedTaskInfoId must be greater than 0")
        if start is not None and start < 0:
            messages.append("Offset must be positive number")
        if get(offset, "FileType") is None:
            messages.append("Protocol must be set")  # sic: the message for a missing FileType
    _raise(messages)


def rest_download_file(p: HEAppEProfile, raw: Any) -> None:
    """all — FileTransferValidator.cs ValidateDownloadFileFromClusterModel + PathValidator.cs
    ("Path contains some illegal characters", the path charset; null/empty passes)."""
    messages = _id_line(get(raw, "SubmittedJobInfoId"), "SubmittedJobInfoId") + session_lines(p, get(raw, "SessionCode"))
    path = get(raw, "RelativeFilePath")
    if isinstance(path, str) and _illegal_path(path):
        messages.append("Path contains some illegal characters")
    _raise(messages)


def rest_create_job(p: HEAppEProfile, raw: Any) -> None:
    """RestApi/InputValidator/JobManagementValidator.cs ValidateCreateJobModel (texts identical in all tags;
    V6.3.2 refactored into ValidateStringAttribute). A null JobSpecification is a NullReferenceException → 500."""
    job = get(raw, "JobSpecification")
    if not isinstance(job, dict):
        raise internal()
    messages: list[str] = []
    name = get(job, "Name")
    if not name:
        messages.append("Name cannot be empty.")
    elif _illegal(name):
        messages.append("Name contains illegal characters.")
    if (as_int(get(job, "WaitingLimit")) or 0) < 0:
        messages.append("WaitingLimit must be unsigned number")
    # JobSpecificationExt.WalltimeLimit is get-only in all four tags: never bound, never checked.
    email, phone = get(job, "NotificationEmail"), get(job, "PhoneNumber")
    if email:
        if len(email) > 50:
            messages.append("Notification email cannot be longer than 50 characters.")
        if not _EMAIL.match(email):
            messages.append("Notification email address is in a wrong format.")
    if phone:
        if len(phone) > 20:
            messages.append("Phone number cannot be longer than 20 characters.")
        if not _PHONE.match(phone):
            messages.append("Phone number is in a wrong format.")
    for variable in items(job, "EnvironmentVariables"):
        if not get(variable, "Name"):
            messages.append(f"Environment variable's name for the job cannot be empty. ({cs_str(get(variable, 'Name'))}={cs_str(get(variable, 'Value'))})")
    tasks = items(job, "Tasks")
    if not tasks:
        messages.append("Each job has to contain at least one task.")
    for task in tasks:
        messages += _task_lines(p, task if isinstance(task, dict) else {})
    if (as_int(get(job, "ProjectId")) or 0) <= 0:
        messages.append("ProjectId must be greater than 0.")
    messages += session_lines(p, get(raw, "SessionCode"))
    _raise(messages)


def _task_lines(p: HEAppEProfile, task: dict[str, Any]) -> list[str]:
    """ValidateTaskSpecificationInput — all, RestApi/InputValidator/JobManagementValidator.cs."""
    out: list[str] = []
    name = get(task, "Name")
    n = cs_str(name)
    if not name:
        out.append("Task name cannot be empty.")
    if _illegal(name):  # no null guard in any tag: a null task name is a 500
        out.append("Task name contains illegal characters.")
    min_cores, max_cores, walltime = as_int(get(task, "MinCores")), as_int(get(task, "MaxCores")), as_int(get(task, "WalltimeLimit"))
    if max_cores is None and p.version != "4.3":
        max_cores = 0  # `int MaxCores` from V5.0.0 (`int?` in V4.3.0): a missing value binds 0
    if min_cores is not None and min_cores <= 0:
        out.append(f'Minimal number of cores for task "{n}" has to be greater than 0.')
    if max_cores is not None and max_cores <= 0:
        out.append(f'Maximal number of cores for task "{n}" has to be greater than 0.')
    if min_cores is not None and max_cores is not None and min_cores > max_cores:
        out.append(f'Minimal number of cores for task "{n}" cannot be greater than maximal number of cores.')
    if walltime is not None and walltime <= 0:
        out.append(f'Walltime limit for task "{n}" has to be greater than 0.')
    arrays = get(task, "JobArrays")
    if isinstance(arrays, str) and arrays:
        if len(arrays) > 40:
            out.append(f'JobArrays specification for task "{n}" cannot be longer than 40 characters.')
        parts = arrays.replace(" ", "").split(":")
        interval = parts[0].split("-")
        step_ok = len(parts) == 1 or (len(parts) == 2 and bool(_CS_INT.fullmatch(parts[1])))
        interval_ok = len(interval) == 2 and all(_CS_INT.fullmatch(x) for x in interval)
        if step_ok and interval_ok:
            low, high, step = int(interval[0]), int(interval[1]), int(parts[1]) if len(parts) == 2 else 1
            if not (low < high and low + step <= high):
                out.append(f'JobArrays parameter for task "{n}" has wrong filled minimum or maximum or step value.')
        else:
            out.append(f'JobArrays parameter for task "{n}" has wrong definition.')
    # The JSON name differs: TaskParalizationParameters (V4.3.0, V5.0.0), TaskParallelizationParameters (V6.0.0+).
    parallel = get(task, p.parallelization_key)
    if isinstance(parallel, list) and max_cores is not None and sum(as_int(get(x, "MaxCores")) or 0 for x in parallel) > max_cores:
        out.append(f'TaskParalizationSpecifications count of maximal cores for task "{n}" must be lower or equals to Maximal number of cores in task.')
    policy = get(task, "PlacementPolicy")
    if policy:
        if len(policy) > 40:
            out.append(f'Placement policy specification for task "{n}" cannot be longer than 40 characters.')
        if p.placement_policy_charset and _illegal(policy):
            out.append(f'Placement policy specification for task "{n}" contains illegal characters.')
    for key, label in (("StandardInputFile", "Standard input file"), ("StandardOutputFile", "Standard output file"),
                       ("StandardErrorFile", "Standard error file")):
        out += _string_lines(get(task, key), label, n, 30, path=False)
    for key, label in (("ProgressFile", "Progress file"), ("LogFile", "Log file")):
        value = get(task, key)
        if not value:
            out.append(f'{label} for task "{n}" is not set.')  # required in all tags
        else:
            out += _string_lines(value, label, n, 50, path=True)
    out += _string_lines(get(task, "ClusterTaskSubdirectory"), "Cluster task subdirectory", n, 50, path=False)
    for node in items(task, "RequiredNodes"):
        if node is None and p.version != "6.3":
            raise internal()  # `requiredNode.Length` on null before V6.3.2
        out += _string_lines(node, f'Required node "{cs_str(node)}" specification', n, 40, path=False)
    if p.template_value_null_checks:  # V5.0.0+
        for value in items(task, "TemplateParameterValues"):
            identifier = get(value, "CommandParameterIdentifier")
            if identifier is None:
                out.append(f'Parameter identifier for parameter in task "{n}" cannot be null.')
            if get(value, "ParameterValue") is None:
                out.append(f'Parameter value for parameter "{cs_str(identifier)}" in task "{n}" cannot be null.')
    for variable in items(task, "EnvironmentVariables"):
        if not get(variable, "Name"):
            out.append(f"Environment variable's name for task \"{n}\" cannot be empty. ({cs_str(get(variable, 'Name'))} = {cs_str(get(variable, 'Value'))})")
    return out


def _string_lines(value: Any, label: str, task: str, limit: int, *, path: bool) -> list[str]:
    if not value:
        return []
    out = []
    if len(value) > limit:
        out.append(f'{label} for task "{task}" cannot be longer than {limit} characters.')
    if _illegal_path(value) if path else _illegal(value):
        out.append(f'{label} for task "{task}" contains illegal characters.')
    return out


def rest_list_clusters(p: HEAppEProfile, code: str | None) -> None:
    """ListAvailableClusters: V4.3.0 takes no parameter (nothing checked); V5.0.0/V6.0.0 `[Required] string
    sessionCode` (400 ValidationProblemDetails), then ClusterInformationValidator's session code check;
    V6.3.2 neither — RestApi/Controllers/ClusterInformationController.cs, InputValidator/ClusterInformationValidator.cs."""
    if p.list_clusters_session == "required":
        if not code:
            raise HEAppEProblem(400, "", errors={"sessionCode": ["The sessionCode field is required."]})
        rest_session(p, code)


_REST = {
    "CreateJob": rest_create_job,
    "SubmitJob": lambda p, raw: rest_job_id(p, get(raw, "SessionCode"), get(raw, "CreatedJobInfoId"), "CreatedJobInfoId"),
    "CancelJob": lambda p, raw: rest_job_id(p, get(raw, "SessionCode"), get(raw, "SubmittedJobInfoId")),
    "DeleteJob": lambda p, raw: rest_job_id(p, get(raw, "SessionCode"), get(raw, "SubmittedJobInfoId")),
    "DownloadPartsOfJobFilesFromCluster": rest_download_parts,
    "DownloadFileFromCluster": rest_download_file,
}


def read_body(p: HEAppEProfile, action: str, body: bytes) -> Any:
    """Steps 2-4 for a body action: size limit, JSON binding + DataAnnotations, the REST validator.
    AuthenticateLexisToken has no REST check: CredentialsValidator has no case for LexisCredentialsExt (all)."""
    check_size(p, action, body)
    raw = parse_json(body)
    annotations(action, raw)
    if action in _REST:
        _REST[action](p, raw)
    return raw
