"""The example flows in flows/: the chain passes a dataset from one job to the next; the fan-out runs jobs at once."""

from __future__ import annotations

import asyncio

from lexis_prefect.models.heappe import JobState

from tests.e2e.conftest import demo_token, load_flow_module

multi = load_flow_module("lexis_hpc_multi")


async def test_chain_feeds_the_first_jobs_output_to_the_second(lexis_env):
    before = {job["id"] for job in lexis_env.jobs()}
    first, second = await multi.lexis_hpc_chain(access_token=demo_token(lexis_env))
    assert (first.group_id, second.group_id) == ("preprocess", "compute")
    assert first.state == second.state == "Finished"
    assert first.job_id != second.job_id
    assert len({job["id"] for job in lexis_env.jobs()} - before) == 2
    # The second job ran in a directory holding the first job's output dataset, results included.
    second_output = lexis_env.dataset_files(second.output_dataset_ids[0])
    assert second_output["results/result.txt"] == "result for value\n"
    assert "./results/result.txt" in second_output["stdout.txt"]  # listed among its inputs


async def test_fanout_runs_one_job_per_value(lexis_env):
    before = {job["id"] for job in lexis_env.jobs()}
    # Gate: submitted jobs wait in the queue until released. Only a fan-out that submits
    # all three concurrently ever has three jobs waiting at once (no timing race: Prefect
    # starts concurrent subflows seconds apart, more under load).
    lexis_env.settings(queue_seconds=600)
    run = asyncio.create_task(
        multi.lexis_hpc_fanout(access_token=demo_token(lexis_env), input_params=["alpha", "beta", "gamma"])
    )
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while len([j for j in lexis_env.jobs() if j["id"] not in before and j["state"] == JobState.Submitted]) < 3:
            assert not run.done(), run.exception() if run.done() else None
            assert asyncio.get_running_loop().time() < deadline, "the three jobs never waited in the queue together"
            await asyncio.sleep(0.2)
    finally:
        lexis_env.settings(queue_seconds=0.1)
    results = await run
    assert [r.group_id for r in results] == ["job-alpha", "job-beta", "job-gamma"]
    assert len({r.job_id for r in results}) == 3
    contents = [lexis_env.dataset_files(r.output_dataset_ids[0])["results/result.txt"] for r in results]
    assert contents == ["result for alpha\n", "result for beta\n", "result for gamma\n"]
