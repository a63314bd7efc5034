"""20 jobs at once with 20% injected 5xx and 10% dropped connections on every endpoint.

Every path of the sandbox's AAI, DDI staging and HEAppE may fail (only its control API is spared), and a
fault strikes before or after the real work at random. The fan-out flow must still finish 20/20, with
exactly 20 HEAppE jobs created and each output staged out once.

`LEXIS_FAULT_SEED` overrides the fault seed, to check a run is not seed-lucky.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter


from lexis_prefect.hpc import run_job_name
from lexis_prefect.models.heappe import JobState
from lexis_prefect.models.job import SEED_JOB
from tests.e2e.conftest import demo_token, load_flow_module, logging_sandbox

lexis_hpc_fanout = load_flow_module("lexis_hpc_multi").lexis_hpc_fanout

JOBS = 20
FAULT_SEED = int(os.environ.get("LEXIS_FAULT_SEED", "808"))
JOB_NAME = SEED_JOB["requirements"]["job_name"]


async def test_twenty_jobs_survive_faults_on_every_endpoint(prefect_harness, monkeypatch, fast_step_retries):
    run_key = f"faults20-{uuid.uuid4().hex[:8]}"
    values = [f"v{i:02d}" for i in range(JOBS)]
    with logging_sandbox(monkeypatch) as sandbox:
        # Tokens of 6 s: the keeper refreshes many times during the run, under faults too.
        sandbox.settings(token_lifetime_seconds=6)
        token = demo_token(sandbox)
        datasets_before = {d["id"] for d in sandbox.control("GET", "datasets")}
        sandbox.set_faults(error_rate=0.2, drop_rate=0.1, seed=FAULT_SEED)  # no `paths`: every endpoint
        try:
            state = await lexis_hpc_fanout(access_token=token, input_params=values, run_key=run_key, return_state=True)
            injected = sandbox.control("GET", "faults")["injected"]
        finally:
            sandbox.set_faults()
        jobs = sandbox.jobs()
        new_datasets = [d for d in sandbox.control("GET", "datasets") if d["id"] not in datasets_before]
        files = {d["id"]: sandbox.dataset_files(d["id"]) for d in new_datasets}
        request_log = sandbox.log_file.read_text()

    faults = re.findall(r"sandbox fault: (\w+) on (\w+) (\S+)", request_log)
    by_service = Counter(path.split("/")[1] if not path.startswith("/locations") else "heappe" for _, _, path in faults)
    print(f"\nseed {FAULT_SEED}: {injected} faults injected ({dict(Counter(k for k, _, _ in faults))}, by service {dict(by_service)})")
    assert state.is_completed(), f"{state}: {state.message}"
    results = await state.result()

    assert [r.state for r in results] == ["Finished"] * JOBS
    names = {run_job_name(JOB_NAME, run_key, f"job-{value}"): value for value in values}
    assert sorted(j["name"] for j in jobs) == sorted(names), "exactly one HEAppE job per value, no other"
    assert all(j["state"] == JobState.Finished for j in jobs)
    assert {r.job_id for r in results} == {j["id"] for j in jobs}
    # Each output staged out once: 20 new datasets, each the output of one job.
    assert len(new_datasets) == JOBS, [d["id"] for d in new_datasets]
    assert sorted(r.output_dataset_ids[0] for r in results) == sorted(files)
    for result, value in zip(results, values):
        assert files[result.output_dataset_ids[0]].get("results/result.txt", "").strip() == f"result for {value}"
    # Faults really struck every service, and both kinds.
    assert injected == len(faults) >= 30, injected
    assert {"error", "drop"} <= {kind for kind, _, _ in faults}
    assert {"auth", "staging", "heappe"} <= set(by_service), by_service
