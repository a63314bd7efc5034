"""What HEAppE's business logic refuses, with the HEAppE source that says so: step 5 of the request
pipeline described in `rules.py` (CreateJob's checks against the catalogue, sessions, whose job
it is, the job state each action needs, missing files), run after the REST layer and the session code.

Citations as in `rules.py`: `tag(s) — path` in It4innovations/HEAppE; "all" = V4.3.0, V5.0.0,
V6.0.0, V6.3.2. Per-version differences live in `versions.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lexis_prefect.sandbox.heappe.rules import (
    HEAppEProblem,
    as_int,
    cs_str,
    external,
    get,
    internal,
    invalid_request,
    items,
    lines,
    validation,
)
from lexis_prefect.sandbox.heappe.versions import HEAppEProfile

__all__ = ["Catalogue", "NodeTypeInfo", "TemplateInfo"]

# -- CreateJob ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeTypeInfo:
    id: int
    max_walltime: int
    file_transfer_method_id: int


@dataclass(frozen=True)
class TemplateInfo:
    id: int
    node_type_id: int
    parameters: tuple[str, ...]  # all without a Query: the sandbox fills none itself
    project_id: int | None = None


@dataclass(frozen=True)
class Catalogue:
    """What one sandbox HEAppE instance holds: one cluster, its node types and command templates."""

    cluster_id: int
    file_transfer_method_ids: tuple[int, ...]
    node_types: dict[int, NodeTypeInfo]
    templates: dict[int, TemplateInfo]
    projects: tuple[int, ...]
    cluster_projects: tuple[int, ...] = field(default=())  # projects linked to the cluster (ClusterProject)


#: all — Exceptions/Resources/ExceptionsMessages.en.resx InputValidationException_NotValidJobSpecification;
#: the `\r\n` is literal text in the resource (backslash, r, backslash, n), not a line break.
NOT_VALID_JOB = "Submitted job specification is not valid: \\r\\n "


def business_create_job(p: HEAppEProfile, catalogue: Catalogue, spec: dict[str, Any]) -> None:
    """JobManagementService/Logic.CreateJob after the REST validator and the session (V6.3.2 line refs):
    1. CheckUserRoleForProject: an unknown project → RequestedObjectDoesNotExistException("ProjectNotFound")
       → 404 — ServiceTier/UserAndLimitationManagement/UserAndLimitationManagementService.cs (V4.3.0..V6.3.2).
    2. GetNextAvailableUserCredentials: unknown cluster → "ClusterNotExists" → 404 —
       BusinessLogicTier/Logic/ClusterInformation/ClusterInformationLogic.cs (V4.3.0, V6.3.2).
    3. CompleteJobSpecification: `FileTransferMethodId.Value` — null → InvalidOperationException → 500
       (JobManagementLogic.cs, V4.3.0 l.371, V5.0.0 l.434, V6.3.2 l.634).
    4. The BL JobManagementValidator — BusinessLogicTier/Logic/JobManagement/Validators/JobManagementValidator.cs
       (all), thrown as InputValidationException("NotValidJobSpecification") → 404."""
    project_id, cluster_id, ftm = as_int(get(spec, "ProjectId")), as_int(get(spec, "ClusterId")), as_int(get(spec, "FileTransferMethodId"))
    if project_id not in catalogue.projects:
        raise validation("The specified project is not defined in the HEAppE.")
    if cluster_id != catalogue.cluster_id:
        raise validation(f"Requested cluster with Id '{cs_str(cluster_id)}' does not exist in the HEAppE.")
    if ftm is None:
        raise internal()
    job_name = cs_str(get(spec, "Name"))
    out: list[str] = []
    # ValidateRequestedCluster: the method is looked up among the cluster's; not found → null?.ClusterId != ClusterId.
    if ftm not in catalogue.file_transfer_method_ids:
        out.append(f"Job {job_name} has wrong FileTransferMethod")
    # ValidateRequestedProject: GetClusterProjectForClusterAndProject == null.
    if project_id not in (catalogue.cluster_projects or catalogue.projects):
        out.append(f"Requested project with Id {project_id} has no reference to cluster with Id {cluster_id}.")
    for task in items(spec, "Tasks"):
        name = cs_str(get(task, "Name"))
        node_type_id, template_id = as_int(get(task, "ClusterNodeTypeId")), as_int(get(task, "CommandTemplateId"))
        walltime = as_int(get(task, "WalltimeLimit"))
        # ValidateWallTimeLimit
        node_type = catalogue.node_types.get(node_type_id or 0)
        if node_type is None:
            out.append(f"Requested ClusterNodeType with Id {cs_str(node_type_id)} does not exist in the system")
        elif walltime is not None and walltime > node_type.max_walltime:
            out.append(f"Defined task {name} has set higher WalltimeLimit ({walltime}) than the maximum on this cluster node, "
                       f"maximal WallTimeLimit is {node_type.max_walltime}")
        template = catalogue.templates.get(template_id or 0)
        if template is None:
            out.append("Command Template does not exist.")
            break  # the BL validator stops at the first task without a template
        given = {get(v, "CommandParameterIdentifier") for v in items(task, "TemplateParameterValues")}
        for parameter in template.parameters:  # enabled parameters without a Query need a value
            if parameter not in given:
                out.append(f'Command Template parameter "{parameter}" does not have a value.')
        if node_type_id != template.node_type_id:
            out.append(f"Task {name} has wrong CommandTemplate")
        if template.project_id is not None and template.project_id != project_id:
            out.append(f'Task {name} has specified CommandTemplateId "{template.id}" which is not referenced to ProjectId '
                       f'"{project_id}" at JobSpecification')
        template_node = catalogue.node_types[template.node_type_id]
        # (the template's cluster is always the job's here: each sandbox HEAppE holds one cluster)
        if ftm != template_node.file_transfer_method_id:
            out.append(f'Command template "{template.id}" for task "{name}" has different file transfer method '
                       f'"{template_node.file_transfer_method_id}" than job file transfer method "{ftm}".')
        if template.node_type_id != node_type_id:
            out.append(f'Task "{name}" must used same ClusterNodeTypeId "{cs_str(node_type_id)}" which is defined in '
                       f'CommandTemplate (ClusterNodeTypeId="{template.node_type_id}").')
    if out:
        raise validation(NOT_VALID_JOB + lines(out))


# -- sessions and jobs -------------------------------------------------------------------------------


def unknown_session(p: HEAppEProfile, code: Any) -> HEAppEProblem:
    """V4.3.0–V6.0.0: SessionCodeNotValidException("NotPresent") → 401 "Session Code Authentication Problem";
    V6.3.2: UnauthorizedAccessException("Unauthorized") → 401 "Unauthorized Access" —
    BusinessLogicTier/Logic/UserAndLimitationManagement/UserAndLimitationManagementLogic.cs."""
    if p.unknown_session_unauthorized:
        return HEAppEProblem(401, "Unauthorized Access", "Unauthorized")
    return HEAppEProblem(401, "Session Code Authentication Problem", f"Session code '{cs_str(code)}' is not present in the HEAppE.")


def expired_session(code: str, expired_at: str) -> HEAppEProblem:
    """all — SessionCodeNotValidException("Expired") → 401; resx "Session code '{0}' already expired at '{1}'."."""
    return HEAppEProblem(401, "Session Code Authentication Problem", f"Session code '{code}' already expired at '{expired_at}'.")


def invalid_token(p: HEAppEProfile) -> HEAppEProblem:
    """AuthenticationTypeException("InvalidToken") → 401 — UserAndLimitationManagementLogic (all); title per tag."""
    return HEAppEProblem(401, p.auth_title, "Invalid or not active token provided. Unable to authenticate user by provided credentials.")


def unknown_job(job_id: Any) -> HEAppEProblem:
    """all — RequestedObjectDoesNotExistException("NotExistingJobInfo") → 404."""
    return validation(f"Requested job info with Id: '{cs_str(job_id)}' does not exist in the HEAppE.")


def foreign_job(p: HEAppEProfile, user: str, job_id: int) -> HEAppEProblem:
    """AdaptorUserNotAuthorizedForJobException("UserNotAuthorizedToWorkWithJob"): 401 "Session Code Authentication
    Problem" in V6.3.2, an ExternalException before (500 "External Problem"). The user is HEAppE's user name."""
    detail = f"Logged user '{user}' is not authorized to query job info '{job_id}'."
    return HEAppEProblem(401, "Session Code Authentication Problem", detail) if p.foreign_job_401 else external(p, detail)


_STATE_NAMES = {1: "Configuring", 2: "Submitted", 4: "Queued", 8: "Running", 16: "Finished", 32: "Failed",
                64: "Canceled", 128: "WaitingForServiceAccount", 256: "Deleted"}


def check_submit(state: int) -> None:
    """all — JobManagementLogic.SubmitJob: only Configuring (or WaitingForServiceAccount), else
    InputValidationException("SubmittingJobNotInConfiguringState") → 404."""
    if state not in (1, 128):
        raise validation("Unable to submit the job (incorrect job state).")


def check_cancel(p: HEAppEProfile, job_id: int, state: int) -> None:
    """JobManagementLogic.CancelJob (all): Submitted..Running → scheduler cancel; WaitingForServiceAccount (and
    Configuring from V5.0.0) → Canceled; else InvalidRequestException("CannotCancelJob")."""
    if 2 <= state < 16 or state == 128 or (state == 1 and p.cancel_configuring):
        return
    raise invalid_request(p, f"Cannot cancel job '{job_id}', this job is in state '{_STATE_NAMES.get(state, state)}'.")


def check_delete(p: HEAppEProfile, job_id: int, state: int) -> None:
    """JobManagementLogic.DeleteJob: `State is Configuring or >= Finished and not WaitingForServiceAccount`
    (V4.3.0), `... and not Deleted` (V5.0.0+), else InvalidRequestException("CannotDeleteJob")."""
    if state == 1 or (state >= 16 and state not in (128, 256)):
        return
    raise invalid_request(p, f"Cannot delete job '{job_id}', this job is in state '{_STATE_NAMES.get(state, state)}'.")


def missing_path(p: HEAppEProfile, path: str) -> HEAppEProblem:
    """FileTransferLogic.DownloadFileFromCluster (all): SftpPathNotFoundException → InvalidRequestException
    ("NotExistingPath"); the SSH.NET message "No such file" is assumed [unverified]."""
    return invalid_request(p, f"Requested path '{path}' was not found. Exception message: 'No such file'.")
