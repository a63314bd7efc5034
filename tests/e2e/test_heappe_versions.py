"""The README's main job (the seed workflow, `job1`) on the sandbox at every HEAppE profile it offers.

The rest of the suite runs at the default profile (V6.3.2, session codes). Here each other profile,
and V6.3.2 in bearer mode, runs the whole path once: stage-in, CreateJob / SubmitJob, output tail,
stage-out, and the refusals each version's rules would make (sandbox/heappe/rules.py) would fail it.
"""

from __future__ import annotations

import pytest

from lexis_prefect.models.job import SEED_JOB
from lexis_prefect.sandbox import SandboxProcess
from tests.e2e.conftest import demo_token, load_flow_module, point_lexis_at

lexis_hpc_simple = load_flow_module("lexis_hpc_simple").lexis_hpc_simple

PROFILES = [
    pytest.param("4.3", (), id="V4.3.0"),
    pytest.param("5.0", (), id="V5.0.0"),
    pytest.param("6.0", (), id="V6.0.0"),
    pytest.param("6.3", ("--heappe-bearer",), id="V6.3.2-bearer"),
]


@pytest.mark.parametrize(("version", "options"), PROFILES)
async def test_the_main_job_runs_at_each_heappe_profile(version, options, monkeypatch, prefect_harness):
    with SandboxProcess("--job-seconds", "1", *options, heappe_version=version) as sandbox:
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        point_lexis_at(sandbox, monkeypatch)

        result = await lexis_hpc_simple(access_token=demo_token(sandbox), job1=SEED_JOB)

        assert result.state == "Finished"
        [job] = [j for j in sandbox.jobs() if j["id"] == result.job_id]
        assert job["name"] == result.job_name
        [dataset] = result.output_dataset_ids
        assert sandbox.dataset_files(dataset).get("results/result.txt") == "result for value\n"
