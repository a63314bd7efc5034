"""What a sandbox emulates: users, clients, lifetimes, locations, DDI systems, templates, faults.

Defaults hold the seed's own names (location Karolina, node type qcpu_exp,
template TestTemplate with parameter input_param, project myproject, and the
placeholder DDI location/resource/dataset of the seed's `job1`), so the seed
runs unchanged against a fresh sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CommandTemplateDef",
    "DDISystem",
    "FaultConfig",
    "NodeTypeDef",
    "SandboxConfig",
    "SandboxLocation",
]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeTypeDef(_Config):
    """A queue of a cluster."""

    name: str
    cores_per_node: int = Field(default=128, gt=0)
    number_of_nodes: int = Field(default=4, gt=0)
    max_walltime: int = Field(default=48 * 3600, gt=0, description="Seconds.")


class CommandTemplateDef(_Config):
    """A HEAppE command template: a shell script with `%%{parameter}` placeholders.

    Placeholders are replaced by the shell-quoted parameter values, so a value
    can never become shell syntax.
    """

    name: str
    description: str = ""
    parameters: list[str] = Field(default_factory=list)
    script: str


# Both scripts read LEXIS_SANDBOX_JOB_SECONDS, set from SandboxConfig.job_seconds; TestTemplate's
# `input_param` may end with `@<seconds>` to run that long instead (jobs of one fan-out ending apart).
TEST_TEMPLATE = CommandTemplateDef(
    name="TestTemplate",
    description="Echoes its parameter, lists its inputs, sleeps, writes result.txt.",
    parameters=["input_param"],
    script="""\
echo "TestTemplate started with input_param=%%{input_param}"
echo "inputs:"; find . -type f ! -name stdout.txt ! -name stderr.txt ! -name progress.txt ! -name log.txt | sort
n=${LEXIS_SANDBOX_JOB_SECONDS:-2}
p=%%{input_param}
case "$p" in *@[0-9]*) n="${p##*@}" ;; esac
i=0
while [ "$i" -lt "$n" ]; do
  i=$((i + 1)); echo "step $i of $n"; echo "$((100 * i / n))" > progress.txt; sleep 1
done
mkdir -p results
echo "result for %%{input_param}" > results/result.txt
echo "TestTemplate finished"
""",
)
FAILING_TEMPLATE = CommandTemplateDef(
    name="FailingTemplate",
    description="Prints to stdout and stderr, then exits with status 3.",
    parameters=["input_param"],
    script="""\
echo "FailingTemplate started with input_param=%%{input_param}"
sleep "${LEXIS_SANDBOX_FAIL_AFTER_SECONDS:-1}"
echo "simulated failure: input_param=%%{input_param}" >&2
exit 3
""",
)


class SandboxLocation(_Config):
    """An HPC location: one HEAppE instance with one cluster."""

    name: str = Field(description="location_name in a SingleHPCJob, e.g. 'Karolina'.")
    resource: str = Field(default="your-resource-name", description="location_resource.")
    cluster_id: int = Field(gt=0)
    ddi_system: str = Field(description="Staging system name of the cluster's scratch (type HPC).")
    node_types: list[NodeTypeDef] = Field(default_factory=lambda: [NodeTypeDef(name="qcpu_exp")])
    available: bool = Field(default=True, description="False: its HEAppE answers 503 to everything.")

    @property
    def slug(self) -> str:
        return self.name.lower()


class DDISystem(_Config):
    """A storage system the staging API knows (iRODS zones; HPC systems come from the locations)."""

    name: str = Field(description="System name used as source_system / target_system.")
    type: Literal["iRODS", "NFS"] = "iRODS"
    location: str = Field(description="DDI location of this system, e.g. 'your-location'.")


class FaultConfig(_Config):
    """Injected faults; `paths` are glob patterns over the request path (`/heappe/*`); empty = all."""

    error_rate: float = Field(default=0.0, ge=0, le=1, description="Share of calls answered 5xx.")
    drop_rate: float = Field(default=0.0, ge=0, le=1, description="Share of calls whose connection is cut.")
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1, description="Share of calls answered 429.")
    retry_after_seconds: int = Field(default=1, ge=0, description="Retry-After of injected 429s.")
    latency_seconds: float = Field(default=0.0, ge=0, description="Delay added before every call.")
    paths: list[str] = Field(default_factory=list)
    seed: int | None = Field(default=None, description="Random seed, for repeatable fault sequences.")


class SandboxConfig(_Config):
    """Everything a sandbox is started with; `lexis-prefect sandbox --help` maps options to fields."""

    realm: str = "LEXIS_AAI"
    users: dict[str, str] = Field(default_factory=lambda: {"demo": "demo"}, description="user -> password.")
    clients: dict[str, str | None] = Field(
        default_factory=lambda: {"lexis-prefect": None}, description="client id -> secret (None: public client)."
    )
    token_lifetime_seconds: int = Field(default=300, gt=0)
    refresh_lifetime_seconds: int = Field(default=1800, gt=0, description="Online refresh tokens; offline ones never expire.")
    session_lifetime_seconds: int = Field(default=1800, gt=0, description="HEAppE session codes.")
    projects: dict[str, int] = Field(default_factory=lambda: {"myproject": 1}, description="shortname -> HEAppE ProjectId.")
    locations: list[SandboxLocation] = Field(
        default_factory=lambda: [
            SandboxLocation(name="Karolina", cluster_id=1, ddi_system="karolina_scratch"),
            SandboxLocation(name="Barbora", cluster_id=2, ddi_system="barbora_scratch"),
        ]
    )
    ddi_systems: list[DDISystem] = Field(
        default_factory=lambda: [
            DDISystem(name="your-resource", location="your-location"),
            DDISystem(name="it4i_iRODS", location="it4i"),
        ]
    )
    templates: list[CommandTemplateDef] = Field(default_factory=lambda: [TEST_TEMPLATE, FAILING_TEMPLATE])
    job_seconds: int = Field(default=2, ge=0, description="How long TestTemplate runs.")
    queue_seconds: float = Field(default=0.3, ge=0, description="Time a submitted job spends Submitted/Queued.")
    staging_seconds: float = Field(default=0.3, ge=0, description="Time a staging request spends queued, then in progress.")
    data_dir: Path | None = Field(default=None, description="Datasets and job directories; a temp dir if None.")
    state_dir: Path | None = Field(default=None, description="Keep jobs, tokens and datasets across restarts.")
    faults: FaultConfig = Field(default_factory=FaultConfig)
    log_requests: bool = False
    heappe_version: Literal["4.3", "5.0", "6.0", "6.3"] = Field(
        default="6.3", description="HEAppE tag emulated (V4.3.0, V5.0.0, V6.0.0, V6.3.2): sandbox/heappe/versions.py."
    )
    heappe_bearer: bool = Field(
        default=False, description="HEAppE's LEXIS bearer mode (from V6.1): calls carry `Authorization: Bearer`."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> SandboxConfig:
        for what, names in (
            ("location", [loc.name for loc in self.locations]),
            ("cluster_id", [loc.cluster_id for loc in self.locations]),
            ("template", [t.name for t in self.templates]),
            ("DDI system", [s.name for s in self.ddi_systems] + [loc.ddi_system for loc in self.locations]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {what} in the sandbox configuration: {names}")
        if not self.locations:
            raise ValueError("the sandbox needs at least one location")
        if self.heappe_bearer and self.heappe_version not in ("6.3",):
            raise ValueError(f"HEAppE {self.heappe_version} has no bearer mode (it exists from 6.1 on)")
        return self

    def location(self, name: str) -> SandboxLocation | None:
        return next((loc for loc in self.locations if loc.name == name), None)

    def heappe_prefix(self, location: SandboxLocation) -> str:
        """URL prefix of a location's HEAppE: '' for the first (default) one, '/locations/<name>' otherwise."""
        return "" if location is self.locations[0] else f"/locations/{location.name}"
