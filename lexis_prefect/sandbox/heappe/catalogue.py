"""Sandbox HEAppE catalogue: the cluster, node types, projects and command templates of one location
(each sandbox HEAppE instance holds one cluster, the location's), as the business rules see them and as
ListAvailableClusters shows them in each HEAppE version."""

from __future__ import annotations

from typing import Any

from lexis_prefect.models.heappe import ClusterInfo, ClusterNodeType, CommandTemplate, CommandTemplateParameter, Project
from lexis_prefect.sandbox.config import SandboxConfig, SandboxLocation
from lexis_prefect.sandbox.heappe import business_rules as business
from lexis_prefect.sandbox.heappe.versions import HEAppEProfile

__all__ = ["clusters", "node_type_id", "rules_catalogue", "shape_clusters", "templates"]


def node_type_id(location: SandboxLocation, index: int) -> int:
    return location.cluster_id * 100 + index + 1


def templates(config: SandboxConfig, location: SandboxLocation) -> dict[int, tuple[int, Any]]:
    """Template id -> (node type id, definition). A HEAppE command template belongs to one node
    type (CommandTemplate.ClusterNodeTypeId), so each node type has its own copy of each template."""
    return {
        node_type_id(location, i) * 100 + j + 1: (node_type_id(location, i), t)
        for i in range(len(location.node_types))
        for j, t in enumerate(config.templates)
    }


def rules_catalogue(config: SandboxConfig, location: SandboxLocation) -> business.Catalogue:
    """What `business.business_create_job` checks a job specification against."""
    node_types = {
        node_type_id(location, i): business.NodeTypeInfo(node_type_id(location, i), nt.max_walltime, location.cluster_id)
        for i, nt in enumerate(location.node_types)
    }
    template_infos = {tid: business.TemplateInfo(tid, nid, tuple(t.parameters)) for tid, (nid, t) in templates(config, location).items()}
    projects = tuple(config.projects.values())
    return business.Catalogue(location.cluster_id, (location.cluster_id,), node_types, template_infos, projects, projects)


def clusters(config: SandboxConfig, location: SandboxLocation) -> list[ClusterInfo]:
    """ListAvailableClusters, before `shape_clusters` drops what the emulated version does not show."""

    def node_type_templates(type_id: int) -> list[CommandTemplate]:
        return [
            CommandTemplate(
                id=tid,
                name=t.name,
                description=t.description,
                is_generic=False,
                is_enabled=True,
                template_parameters=[CommandTemplateParameter(identifier=p) for p in t.parameters],
            )
            for tid, (nid, t) in templates(config, location).items()
            if nid == type_id
        ]

    # LEXIS projects are registered in HEAppE with the location's resource name as their
    # AccountingString (HEAppE's GetOrRegisterLexisCredentials matches them so, ignoring case).
    def projects(type_id: int) -> list[Project]:
        return [
            Project(id=pid, name=name, accounting_string=location.resource, command_templates=node_type_templates(type_id))
            for name, pid in config.projects.items()
        ]

    node_types = [
        ClusterNodeType(
            id=node_type_id(location, i),
            name=nt.name,
            cluster_id=location.cluster_id,
            number_of_nodes=nt.number_of_nodes,
            cores_per_node=nt.cores_per_node,
            max_walltime=nt.max_walltime,
            file_transfer_method_id=location.cluster_id,
            queue=nt.name,
            projects=projects(node_type_id(location, i)),
        )
        for i, nt in enumerate(location.node_types)
    ]
    return [
        ClusterInfo(
            id=location.cluster_id,
            name=location.name,
            description=f"sandbox cluster {location.name}",
            master_node_name=f"login.{location.slug}.sandbox",
            file_transfer_method_ids=[location.cluster_id],
            node_types=node_types,
        )
    ]


def shape_clusters(p: HEAppEProfile, clusters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ExtModels/ClusterInformation/Models: ClusterExt has no MasterNodeName in any tag; FileTransferMethodIds
    (ClusterExt) and ClusterId (ClusterNodeTypeExt) only from V6.0.0; Queue (ClusterNodeTypeExt) from V5.0.0.
    V4.3.0 lists only template parameters without a Query (ClusterInformationConverts.cs l.91) — every
    sandbox parameter is one, so the lists are the same."""
    for cluster in clusters:
        cluster.pop("MasterNodeName", None)
        if not p.catalogue_v6_ids:
            cluster.pop("FileTransferMethodIds", None)
        for node_type in cluster.get("NodeTypes", []):
            if not p.catalogue_v6_ids:
                node_type.pop("ClusterId", None)
            if p.version == "4.3":
                node_type.pop("Queue", None)
    return clusters
