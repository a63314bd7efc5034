"""From a `SingleHPCJob` to what HEAppE takes: the job's name, and its names resolved to ids.

Pure functions over HEAppE's catalogue (`ListAvailableClusters`): the job step calls them before
CreateJob and `lexis-prefect doctor` calls the same ones, so both refuse a job for the same reasons,
each naming the job field to change. The rules are HEAppE's own (docs/lexis-contract.md, "CreateJob
rules").
"""

from __future__ import annotations

import hashlib

from lexis_prefect.models.heappe import (
    JOB_NAME_MAX_LENGTH,
    ClusterInfo,
    ClusterNodeType,
    CommandTemplateParameterValue,
    JobSpecification,
    Project,
    TaskSpecification,
    heappe_name,
)
from lexis_prefect.models.job import SingleHPCJob

__all__ = ["JobRejected", "legacy_job_name", "resolve_specification", "run_job_name"]


def run_job_name(job_name: str, keeper_id: str, group_id: str) -> str:
    """The HEAppE job name of this step of this run: stable across retries and restarts.

    `<job name> <digest>`, within HEAppE's name rules (`heappe_name`): the digest of the run
    and the step makes it unique, so a retried or restarted run finds its job by name.
    """
    digest = _step_digest(keeper_id, group_id)
    return f"{heappe_name(job_name, JOB_NAME_MAX_LENGTH - len(digest) - 1)} {digest}"


def legacy_job_name(job_name: str, keeper_id: str, group_id: str) -> str:
    """The name releases before 0.2 gave the job (`<job name> [<digest>]`), which HEAppE refuses.

    Still looked for on re-attach: only a server that accepted it (an older sandbox) holds one.
    """
    return f"{job_name[:36]} [{_step_digest(keeper_id, group_id)}]"


def _step_digest(keeper_id: str, group_id: str) -> str:
    return hashlib.sha1(f"{keeper_id}/{group_id}".encode()).hexdigest()[:10]


def resolve_specification(job: SingleHPCJob, location: str, clusters: list[ClusterInfo], name: str) -> JobSpecification:
    """Resolve the job's names (cluster, node type, project, template) to this HEAppE's ids.

    Each refusal names the job field to change. The rules are HEAppE's (docs/lexis-contract.md).
    """
    req = job.requirements
    at = _location_index(job, location)
    where_location = f"requirements.locations[{at}]"
    cluster = next((c for c in clusters if c.name.lower() == location.lower()), clusters[0] if len(clusters) == 1 else None)
    if cluster is None:
        known = ", ".join(c.name for c in clusters)
        raise JobRejected(f"{where_location}.location_name: no cluster named {location!r} (has {known})")
    resource = req.locations[at].location_resource
    tasks, projects, methods = [], set(), set()
    for index, wanted in enumerate(req.tasks):
        where = f"requirements.tasks[{index}]"
        node_type = next((n for n in cluster.node_types if n.name == wanted.node_type_name), None)
        if node_type is None:
            known = ", ".join(n.name for n in cluster.node_types)
            raise JobRejected(f"{where}.node_type_name: no node type {wanted.node_type_name!r} on {cluster.name} (has {known})")
        if node_type.max_walltime is not None and wanted.walltime_limit > node_type.max_walltime:
            # HEAppE's business tier refuses it at CreateJob (JobManagementLogic); said here with the field.
            raise JobRejected(
                f"{where}.walltime_limit: {wanted.walltime_limit} s is over the {node_type.max_walltime} s "
                f"that node type {node_type.name!r} on {cluster.name} allows"
            )
        project = _project(node_type.projects, resource, req.project_shortname)
        if project is None:
            raise JobRejected(
                f"{where_location}.location_resource: no HEAppE project for resource {resource!r} may use "
                f"{wanted.node_type_name!r} on {cluster.name} (has {', '.join(_project_names(node_type.projects)) or 'none'})"
            )
        template = next((t for t in project.command_templates if t.name == wanted.command_template_name), None)
        if template is None:
            raise JobRejected(f"{where}.command_template_name: no command template {wanted.command_template_name!r} for {project.name}")
        known_parameters = {p.identifier for p in template.template_parameters}
        unknown = sorted(set(wanted.template_parameter_values) - known_parameters)
        if unknown:
            raise JobRejected(
                f"{where}.template_parameter_values: {template.name} has no parameter {', '.join(unknown)} "
                f"(has {sorted(known_parameters)})"
            )
        projects.add(project.id)
        methods.add(_file_transfer_method(cluster, node_type))
        tasks.append(
            TaskSpecification(
                name=f"task{index + 1}",
                max_cores=wanted.max_cores,
                walltime_limit=wanted.walltime_limit,
                cluster_node_type_id=node_type.id,
                command_template_id=template.id,
                template_parameter_values=[
                    CommandTemplateParameterValue(command_parameter_identifier=k, parameter_value=_text(v))
                    for k, v in wanted.template_parameter_values.items()
                ],
            )
        )
    if len(projects) > 1 or len(methods) > 1:
        # One job has one ProjectId and one FileTransferMethodId (JobSpecificationExt).
        raise JobRejected("requirements.tasks: the tasks' node types resolve to different HEAppE projects or file transfer methods")
    return JobSpecification(
        name=name,
        project_id=projects.pop(),
        cluster_id=cluster.id,
        file_transfer_method_id=methods.pop(),
        tasks=tasks,
    )


def _location_index(job: SingleHPCJob, location: str) -> int:
    return next(i for i, loc in enumerate(job.requirements.locations) if loc.location_name == location)


def _project(projects: list[Project], resource: str, shortname: str) -> Project | None:
    """The HEAppE project of a LEXIS resource: HEAppE registers it with the resource name as its
    AccountingString, compared ignoring case (`GetOrRegisterLexisCredentials`). A HEAppE that is not
    LEXIS's may know the project by its short name only: then that, and only when it is unambiguous."""
    by_resource = [p for p in projects if (p.accounting_string or "").casefold() == resource.casefold()]
    if by_resource:
        return by_resource[0]
    by_name = [p for p in projects if shortname in (p.name, p.accounting_string)]
    return by_name[0] if len(by_name) == 1 else None


def _project_names(projects: list[Project]) -> list[str]:
    return [f"{p.name} ({p.accounting_string})" if p.accounting_string else p.name for p in projects]


def _file_transfer_method(cluster: ClusterInfo, node_type: ClusterNodeType) -> int:
    """The node type's FileTransferMethodId, which HEAppE's business tier checks the job's against;
    before V6 the node type is the only place it is given, from V6.0 the cluster lists them too."""
    if node_type.file_transfer_method_id is not None:
        return node_type.file_transfer_method_id
    if len(cluster.file_transfer_method_ids) == 1:
        return cluster.file_transfer_method_ids[0]
    raise JobRejected(f"HEAppE at {cluster.name} gives no FileTransferMethodId for node type {node_type.name!r}")


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class JobRejected(Exception):
    """The location cannot run this job as specified (failover moves on); the message names the job field."""
