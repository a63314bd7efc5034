"""HEAppE REST payloads (lexis-api.md, sections 3 and 4b).

HEAppE speaks PascalCase JSON with enums as integers. Python code uses
snake_case names; `model_dump(by_alias=True)` gives the wire names. Responses
keep unknown keys (`extra="allow"`): HEAppE adds fields between versions.
"""

from __future__ import annotations

import posixpath
import re
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, SecretStr
from pydantic.alias_generators import to_pascal

__all__ = [
    "DOWNLOAD_PARTS_MAX_BODY_BYTES",
    "JOB_NAME_MAX_LENGTH",
    "heappe_name",
    "AuthenticateLexisTokenRequest",
    "CreateJobRequest",
    "DeleteJobRequest",
    "DownloadFileRequest",
    "DownloadPartsRequest",
    "EndFileTransferRequest",
    "FileTransferCredentials",
    "FileTransferMethod",
    "JobDirectory",
    "JobRequest",
    "OpenIdCredentials",
    "SubmitJobRequest",
    "ClusterInfo",
    "ClusterNodeType",
    "CommandTemplate",
    "CommandTemplateParameter",
    "CommandTemplateParameterValue",
    "EnvironmentVariable",
    "FileTransferRequest",
    "FileType",
    "JobFileContent",
    "JobSpecification",
    "JobState",
    "ProblemDetails",
    "ChangedFile",
    "Project",
    "SubmittedJobInfo",
    "SubmittedTaskInfo",
    "TaskFileOffset",
    "TaskParallelizationParameter",
    "TaskSpecification",
    "TaskState",
    "TERMINAL_JOB_STATES",
]


#: Longest job or task name HEAppE takes (`JobManagementValidator`; sources in docs/lexis-contract.md).
JOB_NAME_MAX_LENGTH = 50
#: What a job or task name may hold: `AbstractValidator.ContainsIllegalCharacters` refuses the rest.
NAME_PATTERN = r"^[A-Za-z0-9_\-. ]*$"
_NAME_ILLEGAL = re.compile(r"[^A-Za-z0-9_\-. ]")
#: What a progress or log file path may hold (`ContainsIllegalCharactersForPath`): names plus `\`, `/`, `~`.
PATH_PATTERN = r"^[A-Za-z0-9_\-. \\/~]*$"
#: Task file names: stdout/stderr at most 30 characters, progress/log files at most 50 (`JobManagementValidator`).
STD_FILE_MAX_LENGTH = 30
AUX_FILE_MAX_LENGTH = 50
#: `[RequestSizeLimit(480)]` on FileTransferController.DownloadPartsOfJobFilesFromCluster: a larger body gets 413.
DOWNLOAD_PARTS_MAX_BODY_BYTES = 480


def heappe_name(text: str, max_length: int = JOB_NAME_MAX_LENGTH) -> str:
    """`text` as a name HEAppE takes: each illegal character becomes `_`, cut to `max_length`."""
    return _NAME_ILLEGAL.sub("_", text)[:max_length].strip() or "job"


class JobState(IntEnum):
    """`JobStateExt`: flag-style numbers, as HEAppE serialises them."""

    Configuring = 1
    Submitted = 2
    Queued = 4
    Running = 8
    Finished = 16
    Failed = 32
    Canceled = 64
    WaitingForServiceAccount = 128
    Deleted = 256


class TaskState(IntEnum):
    """`TaskStateExt`: the job states without WaitingForServiceAccount."""

    Configuring = 1
    Submitted = 2
    Queued = 4
    Running = 8
    Finished = 16
    Failed = 32
    Canceled = 64
    Deleted = 256


#: A job in one of these states will not change any more.
TERMINAL_JOB_STATES = frozenset({JobState.Finished, JobState.Failed, JobState.Canceled, JobState.Deleted})


class FileType(IntEnum):
    """`SynchronizableFiles`: which of a task's files to tail."""

    LogFile = 0
    ProgressFile = 1
    StandardErrorFile = 2
    StandardOutputFile = 3


#: A secret HEAppE must receive: hidden in reprs, logs and errors, revealed only in the JSON payload.
WireSecret = Annotated[SecretStr, PlainSerializer(lambda value: value.get_secret_value(), return_type=str, when_used="json")]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, frozen=True)


class _Request(_Wire):
    model_config = ConfigDict(extra="forbid")

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class _Response(_Wire):
    model_config = ConfigDict(extra="allow")


class EnvironmentVariable(_Request):
    # [StringLength(50)] / [StringLength(100)]: HEAppE ExtModels/JobManagement/Models/EnvironmentVariableExt.cs, all tags.
    name: str = Field(min_length=1, max_length=50)
    value: str = Field(max_length=100)


class CommandTemplateParameterValue(_Request):
    command_parameter_identifier: str = Field(min_length=1)
    parameter_value: str


class TaskParallelizationParameter(_Request):
    mpi_processes: int | None = Field(default=None, alias="MPIProcesses")
    open_mp_threads: int | None = Field(default=None, alias="OpenMPThreads")
    max_cores: int = Field(gt=0)


class TaskSpecification(_Request):
    """`TaskSpecificationExt`: one task of a job."""

    name: str = Field(min_length=1, max_length=JOB_NAME_MAX_LENGTH, pattern=NAME_PATTERN)
    min_cores: int = Field(default=1, gt=0)
    max_cores: int = Field(gt=0)
    walltime_limit: int = Field(gt=0, description="Seconds [I: unit inferred from the Yorc TOSCA types].")
    cluster_node_type_id: int
    command_template_id: int
    template_parameter_values: list[CommandTemplateParameterValue] = Field(default_factory=list)
    environment_variables: list[EnvironmentVariable] = Field(default_factory=list)
    task_parallelization_parameters: list[TaskParallelizationParameter] = Field(default_factory=list)
    placement_policy: str | None = Field(default=None, max_length=40)
    priority: int = Field(default=4, ge=0, le=8, description="TaskPriorityExt: 0 Lowest .. 4 Average .. 8 Critical.")
    job_arrays: str | None = Field(default=None, max_length=40)
    is_exclusive: bool = False
    is_rerunnable: bool = False
    cpu_hyper_threading: bool = False
    standard_input_file: str | None = Field(default=None, max_length=STD_FILE_MAX_LENGTH, pattern=NAME_PATTERN)
    standard_output_file: str = Field(default="stdout.txt", min_length=1, max_length=STD_FILE_MAX_LENGTH, pattern=NAME_PATTERN)
    standard_error_file: str = Field(default="stderr.txt", min_length=1, max_length=STD_FILE_MAX_LENGTH, pattern=NAME_PATTERN)
    progress_file: str = Field(default="progress.txt", min_length=1, max_length=AUX_FILE_MAX_LENGTH, pattern=PATH_PATTERN)
    log_file: str = Field(default="log.txt", min_length=1, max_length=AUX_FILE_MAX_LENGTH, pattern=PATH_PATTERN)
    cluster_task_subdirectory: str | None = Field(default=None, max_length=50, pattern=NAME_PATTERN)
    required_nodes: list[Annotated[str, Field(max_length=40, pattern=NAME_PATTERN)]] = Field(default_factory=list)
    depends_on: list[TaskSpecification] = Field(default_factory=list)


class JobSpecification(_Request):
    """`JobSpecificationExt`: the body of CreateJob, without the session code."""

    name: str = Field(min_length=1, max_length=JOB_NAME_MAX_LENGTH, pattern=NAME_PATTERN)
    project_id: int
    cluster_id: int
    file_transfer_method_id: int
    tasks: list[TaskSpecification] = Field(min_length=1)
    sub_project_identifier: str | None = Field(default=None, max_length=50)
    waiting_limit: int = 0
    walltime_limit: int | None = Field(default=None, gt=0, description="Job-level limit (HEAppE >= 6.5).")
    notification_email: str = Field(default="", max_length=50, pattern=r"^(|[-0-9a-zA-Z.+_]+@[-0-9a-zA-Z.+_]+\.[a-zA-Z]{2,4})$")
    phone_number: str = Field(default="", max_length=20, pattern=r"^(|\+?[0-9 ]+)$")
    notify_on_abort: bool = False
    notify_on_finish: bool = False
    notify_on_start: bool = False
    is_extra_long: bool = False
    environment_variables: list[EnvironmentVariable] = Field(default_factory=list)


class _SessionRequest(_Request):
    """A request that carries the session code; it is revealed only in the JSON payload.

    No session code (None) in HEAppE's bearer mode, where the `Authorization` header authorises.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    session_code: WireSecret | None = None

    def payload(self) -> dict[str, Any]:
        body = super().payload()
        if body["SessionCode"] is None:
            del body["SessionCode"]
        return body


class OpenIdCredentials(_Request):
    model_config = ConfigDict(hide_input_in_errors=True)

    # HEAppE's AuthenticationCredentialsExt names it UserName; older clients send
    # Username. ASP.NET binds JSON case-insensitively, so both reach the server.
    user_name: str = Field(min_length=1)
    open_id_access_token: WireSecret


class AuthenticateLexisTokenRequest(_Request):
    """`POST UserAndLimitationManagement/AuthenticateLexisToken`; the answer is the session code."""

    credentials: OpenIdCredentials


class CreateJobRequest(_SessionRequest):
    job_specification: JobSpecification


class SubmitJobRequest(_SessionRequest):
    created_job_info_id: int


class JobRequest(_SessionRequest):
    """Body of CancelJob (and any call that names a submitted job)."""

    submitted_job_info_id: int


class DeleteJobRequest(_SessionRequest):
    """Body of DeleteJob. `archiveLogs` is sent only when asked for: HEAppE V4.3 takes at most
    98 bytes here (`[RequestSizeLimit(98)]`), which a body that carries it exceeds."""

    submitted_job_info_id: int
    archive_logs: bool = Field(default=False, alias="archiveLogs")

    def payload(self) -> dict[str, Any]:
        body = super().payload()
        if not self.archive_logs:
            del body["archiveLogs"]
        return body


class TaskFileOffset(_Request):
    """Where to resume reading one of a task's files."""

    submitted_task_info_id: int
    file_type: FileType
    offset: int = Field(default=0, ge=0)


class FileTransferRequest(_SessionRequest):
    """`POST FileTransfer/RequestFileTransfer`: the job's file transfer method (and a temporary key).

    HEAppE V4.3.0..V6.3.2 RestApi/Controllers/FileTransferController.cs `[HttpPost("RequestFileTransfer")]`
    `[RequestSizeLimit(98)]`, body RestApiModels/FileTransfer/GetFileTransferMethodModel.cs =
    `SubmittedJobInfoModel` (`SessionCode`, `SubmittedJobInfoId`); about 86 bytes here.
    """

    submitted_job_info_id: int = Field(gt=0)


class DownloadPartsRequest(_SessionRequest):
    submitted_job_info_id: int
    task_file_offsets: list[TaskFileOffset] = Field(min_length=1)


class DownloadFileRequest(_SessionRequest):
    submitted_job_info_id: int
    relative_file_path: str = Field(min_length=1)


class EndFileTransferRequest(_SessionRequest):
    """`POST FileTransfer/CloseFileTransfer`: drop the temporary key `RequestFileTransfer` made.

    HEAppE V4.3.0..V6.3.2 RestApiModels/FileTransfer/EndFileTransferModel.cs: `SubmittedJobInfoModel`
    (`SessionCode`, `SubmittedJobInfoId`) + `PublicKey`, which names the key
    (BusinessLogicTier/Logic/FileTransfer/FileTransferLogic.cs `EndFileTransfer`: an unknown key is
    `FileTransferTemporaryKeyException("PublicKeyMismatch")`; RestApi/InputValidator/FileTransferValidator.cs:
    empty -> "PublicKey must be set"). HEAppE <= V3.1.1 called the route `EndFileTransfer` and took
    the whole `UsedTransferMethod`; we speak V4.3+ only.
    """

    submitted_job_info_id: int = Field(gt=0)
    public_key: WireSecret


class FileTransferCredentials(_Wire):
    """What we keep of `FileTransferKeyCredentialsExt`: the user and the public key, never the private key.

    HEAppE V4.3.0..V6.3.2 ExtModels/FileTransfer/Models/FileTransferKeyCredentialsExt.cs also
    carries `PrivateKey`, `PrivateKeyCertificate`, `Password`, `Passphrase`: they are not parsed
    (`extra="ignore"`), so no secret is kept, logged or shown. The public key is kept as a
    `SecretStr` all the same: it is only needed to close the transfer, and is nobody's business.
    """

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    username: str | None = None
    public_key: SecretStr | None = None


class FileTransferMethod(_Wire):
    """`FileTransferMethodExt`, the answer of `POST FileTransfer/RequestFileTransfer`, as far as we need it.

    HEAppE V4.3.0..V6.3.2 ExtModels/FileTransfer/Models/FileTransferMethodExt.cs: `ServerHostname`,
    `SharedBasepath` ([StringLength(200)]), `Protocol`, `Port`, `ProxyConnection`, `Credentials`
    (+ `Id` from V5.0.0). `SharedBasepath` is the job's directory on the cluster:
    BusinessLogicTier/Logic/FileTransfer/FileTransferLogic.cs sets it to
    `FileSystemUtils.GetJobClusterDirectoryPath(jobInfo.Specification, ...)`, i.e.
    `<project's ScratchStoragePath>/<InstanceIdentifierPath>/<SubExecutionsPath>/<cluster user>/<job id>`
    (Utils/FileSystemUtils.cs V6.3.2; V4.3.0: `<LocalBasepath>/<SubExecutionsPath>/<job id>`), and a
    task's directory is `<job directory>/<task id>[/<ClusterTaskSubdirectory>]`
    (`GetTaskClusterDirectoryPath`). Everything else is dropped (`extra="ignore"`): the answer
    holds a private key.
    """

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    server_hostname: str = Field(min_length=1)
    shared_basepath: str = Field(min_length=1)
    protocol: int | None = None
    port: int | None = None
    credentials: FileTransferCredentials | None = None


class JobDirectory(BaseModel):
    """Where a HEAppE job's files are on its cluster: the login host and the job directory (absolute).

    Nothing secret: it may be logged, cached and passed between tasks.
    """

    model_config = ConfigDict(frozen=True)

    server_hostname: str
    path: str = Field(description="The job directory, HEAppE's SharedBasepath: an absolute path on the cluster.")

    def task_path(self, task_id: int, relative: str = ".") -> str:
        """`<job directory>/<task id>/<relative>`, normalised: no `.`, `..` or trailing `/` survives.

        The task directory is where HEAppE runs the task (FileSystemUtils.GetTaskClusterDirectoryPath,
        without a ClusterTaskSubdirectory), as the Yorc DDI plugin forms it: `path.Join(SharedBasepath,
        taskID)` (yorc-ddi-plugin 03d54ff common/ddi_execution.go). `relative` may not climb out of it.
        """
        inner = posixpath.normpath("/" + relative).lstrip("/")
        if any(part == ".." for part in relative.split("/")):
            raise ValueError(f"{relative!r}: a job path may not contain '..'")
        task = posixpath.join(posixpath.normpath(self.path), str(task_id))
        return posixpath.join(task, inner) if inner else task


class SubmittedTaskInfo(_Response):
    id: int
    name: str | None = None
    state: TaskState
    priority: int | None = None
    allocated_time: float | None = None
    allocated_core_ids: list[str] | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    node_type: dict[str, Any] | None = None
    error_message: str | None = None
    cpu_hyper_threading: bool | None = None
    reason: str | None = None


class SubmittedJobInfo(_Response):
    """`SubmittedJobInfoExt`: what CreateJob, SubmitJob, CancelJob and CurrentInfoForJob return."""

    id: int
    name: str | None = None
    state: JobState
    creation_time: datetime | None = None
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    total_allocated_time: float | None = None
    tasks: list[SubmittedTaskInfo] = Field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_JOB_STATES


class JobFileContent(_Response):
    """One chunk of a task's file from DownloadPartsOfJobFilesFromCluster.

    `offset` is where the chunk starts (the offset that was sent), not where it ends: the next
    read starts at `offset` plus the content's length in bytes.
    """

    content: str | None = None
    relative_path: str | None = None
    offset: int
    file_type: FileType
    submitted_task_info_id: int


class ChangedFile(_Response):
    """An entry of ListChangedFilesForJob."""

    file_name: str
    last_modified_date: datetime | None = None


class CommandTemplateParameter(_Response):
    identifier: str
    description: str | None = None


class _Catalogued(_Response):
    """An entry of the cluster catalogue: resolved from the seed's names to HEAppE's ids."""

    id: int
    name: str
    description: str | None = None


class CommandTemplate(_Catalogued):
    is_generic: bool | None = None
    is_enabled: bool | None = None
    template_parameters: list[CommandTemplateParameter] = Field(default_factory=list)


class Project(_Catalogued):
    accounting_string: str | None = None
    command_templates: list[CommandTemplate] = Field(default_factory=list)


class ClusterNodeType(_Catalogued):
    cluster_id: int | None = None
    number_of_nodes: int | None = None
    cores_per_node: int | None = None
    max_walltime: int | None = None
    file_transfer_method_id: int | None = None
    queue: str | None = None
    projects: list[Project] = Field(default_factory=list)


class ClusterInfo(_Catalogued):
    """`ClusterExt` of ListAvailableClusters: the tree that maps the seed's names to HEAppE ids."""

    master_node_name: str | None = None
    file_transfer_method_ids: list[int] = Field(default_factory=list)
    node_types: list[ClusterNodeType] = Field(default_factory=list)


class ProblemDetails(BaseModel):
    """RFC 7807 error body of HEAppE's exception middleware: lowercase keys, unlike HEAppE's own models."""

    model_config = ConfigDict(extra="allow", frozen=True)

    title: str | None = None
    detail: str | None = None
    status: int | None = None
