"""HEAppE version profiles of the sandbox: what differs between the HEAppE tags it emulates.

Each profile is one tag of It4innovations/HEAppE (read from its source; citations are
`tag — path`, the research notes are summarised in docs/lexis-contract.md). `lexis-prefect sandbox --heappe-version`
picks one; the rules that use them are in `rules.py`.

Why 6.3 (V6.3.2) is the default: it is the newest tag of the public source, and the best public
evidence says LEXIS runs HEAppE 6.x at or above 6.2 — py4heappe (HEAppE's own client) targets
6.1–6.4, and a public LEXIS client talks to a LEXIS-connected HEAppE with `py4heappe.heappe_v6`
and `Authorization: Bearer <LEXIS token>` (bearer mode exists only from V6.1.0) and names
"HEAppE 6.2 endpoints" (research section 9). Which exact version the LEXIS HPC instances run is
not public; 4.3, 5.0 and 6.0 stay selectable for older deployments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_VERSION", "PROFILES", "VERSIONS", "HEAppEProfile", "profile"]


@dataclass(frozen=True)
class HEAppEProfile:
    """What one HEAppE tag does differently; every field names the source that says so."""

    version: str
    tag: str
    #: `[RequestSizeLimit(N)]` of each action, bytes of request body — RestApi/Controllers/*Controller.cs.
    #: DeleteJob 98 in V4.3.0 (no ArchiveLogs field), 120 from V5.0.0; CreateJob 50000 in V4/V5, 250000 from V6.0.0.
    size_limits: dict[str, int] = field(default_factory=dict)
    #: SessionCodeValidator — RestApi/InputValidator/SessionCodeValidator.cs: "string-only" (V4.3.0: a null
    #: code passes), "full" (V5.0.0–V6.1.x: null is "cannot be empty"), "off" (V6.2.0+: body commented out).
    session_validator: str = "full"
    #: ExceptionMiddleware (RestApi/ExceptionMiddleware.cs): InvalidRequestException has its own case
    #: (400 "Invalid Request") from V5.0.0; in V4.3.0 it falls into ExternalException.
    invalid_request_case: bool = True
    #: ExternalException: "External Problem" and status 500 up to V6.0.0; "External Service Error" 502 in V6.3.2.
    external: tuple[int, str] = (500, "External Problem")
    #: AuthenticationTypeException: "Authentication Problem" up to V6.0.0, "UserOrg Authentication Problem" in V6.3.2.
    auth_title: str = "Authentication Problem"
    #: Unknown session code: SessionCodeNotValidException("NotPresent") → 401 "Session Code Authentication
    #: Problem" up to V6.0.0; V6.3.2 UserAndLimitationManagementLogic.AuthenticateLocalSession throws
    #: UnauthorizedAccessException("Unauthorized") → 401 "Unauthorized Access".
    unknown_session_unauthorized: bool = False
    #: AdaptorUserNotAuthorizedForJobException: own 401 case only in V6.3.2; before, an ExternalException.
    foreign_job_401: bool = False
    #: JobStateExt/TaskStateExt.Deleted = 256 — ExtModels/JobManagement/Models/JobStateExt.cs, from V5.0.0.
    deleted_state: bool = True
    #: JobManagementLogic.CancelJob cancels a Configuring job locally from V5.0.0 (V4.3.0: only WaitingForServiceAccount).
    cancel_configuring: bool = True
    #: JobManagementController.DeleteJob: `Ok("Job deleted.")` in V4.3.0, `Ok("Job was deleted")` from V5.0.0.
    delete_answer: str = "Job was deleted"
    #: TaskSpecificationExt: `TaskParalizationParameters` (sic) in V4.3.0/V5.0.0, `TaskParallelizationParameters` from V6.0.0.
    parallelization_key: str = "TaskParallelizationParameters"
    #: REST JobManagementValidator null checks of TemplateParameterValues: from V5.0.0.
    template_value_null_checks: bool = True
    #: REST JobManagementValidator: PlacementPolicy charset check only in V6.3.2 (ValidateStringAttribute).
    placement_policy_charset: bool = False
    #: ClusterExt.FileTransferMethodIds and ClusterNodeTypeExt.ClusterId — ExtModels/ClusterInformation/Models, from V6.0.0.
    catalogue_v6_ids: bool = True
    #: ClusterInformationController.ListAvailableClusters: V4.3.0 takes no parameter (anonymous); V5.0.0/V6.0.0
    #: `[Required] string sessionCode`; V6.3.2 without [Required] ("optional").
    list_clusters_session: str = "required"
    #: LexisAuthMiddleware + AuthenticateLexisToken's "HEADER-AUTH-NEEDED": from V6.1.0 (RestApi/Startup.cs).
    bearer_capable: bool = False


_LIMITS = {
    "AuthenticateLexisToken": 2048,
    "CreateJob": 250000,
    "SubmitJob": 94,
    "CancelJob": 98,
    "DeleteJob": 120,
    "CurrentInfoForJob": 98,
    "ListJobsForCurrentUser": 60,
    "DownloadPartsOfJobFilesFromCluster": 480,
    "ListChangedFilesForJob": 98,
    "DownloadFileFromCluster": 700,
    "ListAvailableClusters": 0,
}

PROFILES: dict[str, HEAppEProfile] = {
    "4.3": HEAppEProfile(
        version="4.3",
        tag="V4.3.0",
        size_limits={**_LIMITS, "CreateJob": 50000, "DeleteJob": 98},
        session_validator="string-only",
        invalid_request_case=False,
        deleted_state=False,
        cancel_configuring=False,
        delete_answer="Job deleted.",
        parallelization_key="TaskParalizationParameters",
        template_value_null_checks=False,
        catalogue_v6_ids=False,
        list_clusters_session="none",
    ),
    "5.0": HEAppEProfile(
        version="5.0",
        tag="V5.0.0",
        size_limits={**_LIMITS, "CreateJob": 50000},
        parallelization_key="TaskParalizationParameters",
        catalogue_v6_ids=False,
    ),
    "6.0": HEAppEProfile(version="6.0", tag="V6.0.0", size_limits=dict(_LIMITS)),
    "6.3": HEAppEProfile(
        version="6.3",
        tag="V6.3.2",
        size_limits=dict(_LIMITS),
        session_validator="off",
        external=(502, "External Service Error"),
        auth_title="UserOrg Authentication Problem",
        unknown_session_unauthorized=True,
        foreign_job_401=True,
        placement_policy_charset=True,
        list_clusters_session="optional",
        bearer_capable=True,
    ),
}
VERSIONS = tuple(PROFILES)
DEFAULT_VERSION = "6.3"


def profile(version: str) -> HEAppEProfile:
    try:
        return PROFILES[version]
    except KeyError:
        raise ValueError(f"no HEAppE profile {version!r}; known: {', '.join(VERSIONS)}") from None
