"""The job-summary artifact of a step: where its HEAppE job is, its state, timings and outputs."""

from __future__ import annotations

from prefect.artifacts import acreate_markdown_artifact

from lexis_prefect.hpc.calls import _artifact_key
from lexis_prefect.hpc.results import HpcJobRef


async def job_summary(
    group_id: str, ref: HpcJobRef, state: str, outputs: list[str], timings: dict[str, float], reason: str | None
) -> None:
    rows = "\n".join(f"| {k.replace('_', ' ')} | {v:.1f} s |" for k, v in timings.items())
    datasets = "\n".join(f"- `{path}`" for path in outputs) or "- none"
    await acreate_markdown_artifact(
        f"# HPC job step `{group_id}`: {state}\n\n"
        f"| | |\n|---|---|\n| location | {ref.location} |\n| HEAppE job | {ref.job_id} (`{ref.name}`) |\n"
        f"| state | {state}{f' ({reason})' if reason else ''} |\n{rows}\n\n## Output datasets\n\n{datasets}\n",
        key=_artifact_key(group_id, "summary"),
        description=f"HPC job step {group_id}",
    )
