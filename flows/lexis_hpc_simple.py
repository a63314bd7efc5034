"""The seed workflow (shared/seed/lexis_hpc_simple.py) written natively in Prefect.

    python flows/lexis_hpc_simple.py

With no LEXIS configuration (no LEXIS_* variables, no LEXIS_CREDENTIALS_BLOCK)
it starts the LEXIS sandbox on a free loopback port, logs in as its demo user,
and runs the seed's own job1 against it; with configuration it runs against
that platform with the access token in LEXIS_ACCESS_TOKEN.
"""

from __future__ import annotations

import asyncio
import os
import sys

from prefect import flow
from pydantic import SecretStr

from lexis_prefect.hpc import HpcJobResult, build_hpc_job_step, cancel_hpc_jobs
from lexis_prefect.keeper import keep_token, refresh_token, stop_keeper
from lexis_prefect.models.job import SEED_JOB, SingleHPCJob


@flow(
    name="lexis_hpc_simple",
    description="Simple HPC Workflow Example: token, stage in, HPC job, stage out.",
    on_cancellation=[cancel_hpc_jobs],
    on_crashed=[cancel_hpc_jobs],
)
async def lexis_hpc_simple(
    access_token: SecretStr,
    job1: SingleHPCJob = SingleHPCJob.model_validate(SEED_JOB),
    credentials_block: str | None = None,
    run_key: str | None = None,
) -> HpcJobResult:
    """The seed's graph: refresh_token >> (ref_token_keeper, job >> ref_token_stop >> finish).

    Args:
        access_token: the user's LEXIS access token.
        job1: the job, as the seed's `job1` parameter.
        credentials_block: a saved LexisCredentials block (else the environment).
        run_key: rerunning with the same key re-attaches to the job it started
            (defaults to the flow run id, which Prefect keeps across retries).
    """
    keeper_id = await refresh_token(access_token, offline_access=True, credentials_block=credentials_block, keeper_id=run_key)
    keeper = asyncio.create_task(keep_token(keeper_id))
    try:
        return await build_hpc_job_step(job1, keeper_id, group_id="job", credentials_block=credentials_block)
    finally:
        await stop_keeper(keeper_id)  # ALL_DONE: whatever the job's outcome
        await keeper


def main() -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from lexis_prefect.blocks import resolve_credentials
    from lexis_prefect.exceptions import ConfigurationError, LexisError

    try:
        resolve_credentials()
    except ConfigurationError:
        return _on_sandbox()
    token = os.environ.get("LEXIS_ACCESS_TOKEN")
    if not token:
        print("LEXIS is configured: put the user's access token in LEXIS_ACCESS_TOKEN", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(lexis_hpc_simple(access_token=SecretStr(token)))
    except LexisError as exc:
        print(f"the workflow failed: {exc}", file=sys.stderr)
        return 1
    print(result.model_dump_json(indent=2))
    return 0


def _on_sandbox() -> int:
    """Run the seed job on a fresh sandbox, configured through the environment for this process."""
    from lexis_prefect import AAIClient
    from lexis_prefect.sandbox import SandboxProcess

    with SandboxProcess() as sandbox:
        os.environ.update(sandbox.environment())
        print(f"no LEXIS configuration: running against the LEXIS sandbox at {sandbox.url}")

        async def demo_token() -> SecretStr:
            async with AAIClient(sandbox.aai_url(), "lexis-prefect") as aai:
                return (await aai.password_grant("demo", SecretStr("demo"))).access_token

        result = asyncio.run(lexis_hpc_simple(access_token=asyncio.run(demo_token())))
        files = {d: sandbox.dataset_files(d) for d in result.output_dataset_ids}
    print(result.model_dump_json(indent=2))
    for dataset_id, content in files.items():
        print(f"output dataset {dataset_id}: {', '.join(sorted(content)) or 'empty'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
