"""The seed workflow (shared/seed/lexis_hpc_simple.py) written natively in Prefect.

    python flows/lexis_hpc_simple.py

With no LEXIS configuration (no LEXIS_* variables, no LEXIS_CREDENTIALS_BLOCK)
it starts the LEXIS sandbox on a free loopback port, logs in as its demo user,
and runs the seed's own job1 against it; with configuration it runs against
that platform with the access token in LEXIS_ACCESS_TOKEN.
"""

from __future__ import annotations

import sys

from lexis_prefect.blocks import AccessToken
from lexis_prefect.hpc import HpcJobResult, build_hpc_job_step, hpc_flow
from lexis_prefect.keeper import kept_token
from lexis_prefect.models.job import SEED_JOB, SingleHPCJob


@hpc_flow(
    name="lexis_hpc_simple",
    description="Simple HPC Workflow Example: token, stage in, HPC job, stage out.",
)
async def lexis_hpc_simple(
    access_token: AccessToken,
    job1: SingleHPCJob = SingleHPCJob.model_validate(SEED_JOB),
    credentials_block: str | None = None,
    run_key: str | None = None,
) -> HpcJobResult:
    """The seed's graph: refresh_token >> (ref_token_keeper, job >> ref_token_stop >> finish).

    Args:
        access_token: the user's LEXIS access token; through a deployment, a Secret block
            holding the user's token (saved by `lexis-prefect blocks save-token`).
        job1: the job, as the seed's `job1` parameter.
        credentials_block: a saved LexisCredentials block (else the environment).
        run_key: rerunning with the same key re-attaches to the job it started
            (defaults to the flow run id, which Prefect keeps across retries).
    """
    async with kept_token(access_token, credentials_block=credentials_block, run_key=run_key) as keeper_id:
        return await build_hpc_job_step(job1, keeper_id, group_id="job")


if __name__ == "__main__":
    from lexis_prefect.demo import main

    sys.exit(main(lambda token: lexis_hpc_simple(access_token=token)))
