"""A real sandbox subprocess per test module, and a client kit that drives it the way a job step will."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from lexis_prefect import AAIClient, DDIStagingClient, HEAppEClient, PollPolicy, RetryPolicy
from lexis_prefect.models import (
    DatasetMetadata,
    JobSpecification,
    StageRequest,
    SubmittedJobInfo,
    TaskSpecification,
)
from lexis_prefect.models.ddi import dataset_path, zone_path
from lexis_prefect.models.heappe import CommandTemplateParameterValue
from lexis_prefect.sandbox import DEMO_DATASET_ID, SandboxProcess

FAST_RETRY = RetryPolicy(backoff_seconds=0.05)
FAST_POLL = PollPolicy(interval_seconds=0.1, max_interval_seconds=0.3, timeout_seconds=30)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess("--job-seconds", "1") as sb:
        yield sb


@dataclass
class Kit:
    """Clients bound to one sandbox user, and the catalogue ids they need."""

    sandbox: SandboxProcess
    aai: AAIClient
    heappe: HEAppEClient
    ddi: DDIStagingClient
    location: str = "Karolina"

    async def create(self, template: str = "TestTemplate", walltime: int = 60, name: str = "job") -> SubmittedJobInfo:
        [cluster] = await self.heappe.list_available_clusters()
        node_type = cluster.node_types[0]
        project = node_type.projects[0]
        template_id = next(t.id for t in project.command_templates if t.name == template)
        task = TaskSpecification(
            name="task",
            max_cores=4,
            walltime_limit=walltime,
            cluster_node_type_id=node_type.id,
            command_template_id=template_id,
            template_parameter_values=[
                CommandTemplateParameterValue(command_parameter_identifier="input_param", parameter_value="sandbox")
            ],
        )
        spec = JobSpecification(
            name=name, project_id=project.id, cluster_id=cluster.id, file_transfer_method_id=cluster.id, tasks=[task]
        )
        return await self.heappe.create_job(spec)

    def hpc_side(self, job: SubmittedJobInfo) -> dict[str, object]:
        system = next(loc["ddi_system"] for loc in self.sandbox.control("GET", "config")["locations"] if loc["name"] == self.location)
        return {"heappe_url": self.sandbox.heappe_url(self.location), "job_id": job.id, "task_id": job.tasks[0].id, "system": system}

    async def job_path(self, job: SubmittedJobInfo, relative: str = ".") -> str:
        """The absolute cluster path of `relative` in the job's first task directory, as a job step sends it:
        HPC paths are absolute (ddi-service-apis 9e96c41 staging_api.py), below HEAppE's SharedBasepath."""
        return (await self.heappe.job_directory(job.id)).task_path(job.tasks[0].id, relative)

    async def stage_in(self, job: SubmittedJobInfo, target_path: str = "inputs") -> str:
        hpc = self.hpc_side(job)
        request = StageRequest(
            source_system="your-resource",
            source_path=dataset_path(DEMO_DATASET_ID, "myproject"),
            target_system=hpc.pop("system"),
            target_path=await self.job_path(job, target_path),
            **hpc,
        )
        return await self.ddi.stage(request)

    async def stage_out(self, job: SubmittedJobInfo, source_path: str = "results") -> str:
        hpc = self.hpc_side(job)
        request = StageRequest(
            source_system=hpc.pop("system"),
            source_path=await self.job_path(job, source_path),
            target_system="your-resource",
            target_path=zone_path("project", "myproject"),
            metadata=DatasetMetadata(title="sandbox output"),
            **hpc,
        )
        return await self.ddi.stage(request)

    async def wait_job(self, job_id: int, timeout: float = 30) -> SubmittedJobInfo:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            info = await self.heappe.job_info(job_id)
            if info.is_terminal or asyncio.get_running_loop().time() > deadline:
                return info
            await asyncio.sleep(0.1)


async def login(sandbox: SandboxProcess, user: str = "demo", password: str = "demo") -> SecretStr:
    async with AAIClient(sandbox.aai_url(), "lexis-prefect", retry=FAST_RETRY) as aai:
        return (await aai.password_grant(user, SecretStr(password))).access_token


@pytest.fixture
async def kit(sandbox: SandboxProcess) -> AsyncIterator[Kit]:
    token = await login(sandbox)
    async with (
        AAIClient(sandbox.aai_url(), "lexis-prefect", retry=FAST_RETRY) as aai,
        HEAppEClient(sandbox.heappe_url(), token, retry=FAST_RETRY) as heappe,
        DDIStagingClient(sandbox.staging_url, token, retry=FAST_RETRY) as ddi,
    ):
        yield Kit(sandbox, aai, heappe, ddi)
