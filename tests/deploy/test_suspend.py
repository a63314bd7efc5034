"""Days-long jobs: a deployment run suspends while its HEAppE jobs run, and the watcher resumes it.

Against the session's stack (conftest.py): a Prefect server, a `process` worker, a
`lexis-prefect watch` polling every second, and the sandbox. The runs here have jobs longer than
`SUSPEND_AFTER_SECONDS`, so they suspend; their processes exit; the watcher resumes them when a
job ends. Killing the worker, the watcher and the server in turn during the wait changes nothing:
each run ends with one HEAppE job per step and one dataset per output. A user's cancel of a
suspended run cancels its job; a killed flow process does not, and a retry re-attaches.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.states import Scheduled

from lexis_prefect.models.heappe import JobState
from tests.deploy.conftest import WORKER_ENV, Stack, dumps, load_stack_script, run_id_of
from tests.deploy.test_deployments import (
    IN_PROCESS,
    artifacts,
    final,
    flow_run,
    job_in_state,
    job_named,
    log_lines,
    run_tree,
    sandbox_job,
    wait_for,
)

#: The issue's "60 s job".
LONG_JOB_SECONDS = 60
WATCH_INTERVAL = 1.0  # conftest starts the watcher with this interval


def states(stack: Stack, run_id: str) -> list[Any]:
    async def read(client: PrefectClient) -> list[Any]:
        return await client.read_flow_run_states(UUID(run_id))

    return stack.api(read)


def suspended(stack: Stack, run_id: str) -> Any:
    run = flow_run(stack, run_id)
    return run if run.state_name == "Suspended" else None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited: its parent has not reaped it yet
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def pid_of(run: Any) -> int:
    """The flow run's process (the process worker records `<host>:<pid>`)."""
    return int(str(run.infrastructure_pid).rsplit(":", 1)[-1])


def datasets_of(stack: Stack, run_id: str) -> list[str]:
    """Output datasets the run's steps reported (their HpcJobResults, in the logs)."""
    return sorted({line.rsplit("DDI dataset ", 1)[1].split()[0] for line in log_lines(stack, run_id) if "out to DDI dataset" in line})


def jobs_named(stack: Stack, name: str) -> list[dict[str, Any]]:
    from lexis_prefect.resolve import run_job_name

    legal = run_job_name(name, "", "")[:-10]
    return [j for j in stack.sandbox.jobs() if j["name"].startswith(legal)]


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def restart_server(stack: Stack) -> None:
    """`prefect server start` again on the same port and database (the worker and watcher reconnect)."""
    script = load_stack_script()
    state = json.loads((stack.dir / "stack.json").read_text())
    kill(state["pids"]["server"])
    port = int(state["api_url"].rsplit(":", 1)[1].split("/")[0])
    db_url = state.get("database_url") or f"sqlite+aiosqlite:///{stack.dir / 'prefect-home' / 'prefect.db'}"
    server = script.start_server(stack.dir, port, db_url, {k: v for k, v in stack.env.items() if k != "PREFECT_API_URL"})
    script._record(state, "server", server.pid)
    script._save(stack.dir, state)


def pids(stack: Stack) -> dict[str, int]:
    return json.loads((stack.dir / "stack.json").read_text())["pids"]


def test_a_waiting_run_suspends_survives_its_stack_being_killed_and_resumes_when_its_job_ends(stack: Stack):
    script = load_stack_script()
    stack.sandbox.settings(job_seconds=LONG_JOB_SECONDS)
    try:
        output = stack.cli("prefect", "deployment", "run", "lexis_hpc_simple/native",
                           "--param", f"job1={dumps(job_named('suspended native'))}").stdout
        run_id = run_id_of(output)
        job = wait_for(lambda: (j := sandbox_job(stack, "suspended native")) and j["submitted"] and j, 120,
                       "the HEAppE job to be submitted", stack)
        run = wait_for(lambda: suspended(stack, run_id), 30, "the run to suspend", stack, interval=0.2)
        # The run's process exits within 10 s of the job's submission and holds no worker slot.
        wait_for(lambda: not process_alive(pid_of(run)), 10, "the flow run's process to exit", stack, interval=0.2)
        exited = time.time() - job["submitted"]
        assert exited < 10, f"the flow run's process exited {exited:.1f} s after submission"

        # Seen in the UI: what it waits for, as a log line and in the job-summary artifact.
        lines = "\n".join(log_lines(stack, run_id))
        assert f"HEAppE job {job['id']} at Karolina is Running (checked " in lines, lines[-2000:]
        assert "the run suspends until it ends" in lines
        summary = artifacts(stack, run_id)["job-summary"]
        assert "waiting, run suspended" in summary and str(job["id"]) in summary, summary

        # Kill -9, in turn, the worker, the watcher and the server during the wait; start them again.
        kill(pids(stack)["worker"])
        script.start_worker(stack.dir, WORKER_ENV, env={k: v for k, v in stack.env.items() if k != "PREFECT_API_URL"})
        kill(pids(stack)["watcher"])
        script.start_watcher(stack.dir, WORKER_ENV, env={k: v for k, v in stack.env.items() if k != "PREFECT_API_URL"})
        restart_server(stack)
        assert suspended(stack, run_id), "the run must still be Suspended after the restarts"

        ended = wait_for(lambda: final(stack, run_id), LONG_JOB_SECONDS + 120, "the run to end", stack)
    finally:
        stack.sandbox.settings(job_seconds=2)
    assert ended.state.type.value == "COMPLETED", (ended.state, stack.logs())
    jobs = jobs_named(stack, "suspended native")
    assert len(jobs) == 1 and jobs[0]["state"] == JobState.Finished, jobs  # one HEAppE job, never resubmitted
    assert len(datasets_of(stack, run_id)) == 1  # one stage-out
    resumed = [s for s in states(stack, run_id) if s.name == "Resuming"]
    assert resumed, "the run was resumed by the watcher"
    delay = resumed[0].timestamp.timestamp() - jobs[0]["ended"]
    print(f"job ended -> run resumed: {delay:.1f} s (watch interval {WATCH_INTERVAL} s); process exited {exited:.1f} s after submission")
    assert delay <= WATCH_INTERVAL + 3, f"resumed {delay:.1f} s after the job ended"
    lines = "\n".join(log_lines(stack, run_id))
    assert "ended Finished: resuming the run" in lines  # the watcher wrote in the run's logs


def test_cancelling_a_suspended_run_cancels_its_heappe_job(stack: Stack):
    stack.sandbox.settings(job_seconds=120)
    try:
        output = stack.cli("prefect", "deployment", "run", "lexis_hpc_simple/native",
                           "--param", f"job1={dumps(job_named('cancelled while suspended'))}").stdout
        run_id = run_id_of(output)
        wait_for(lambda: suspended(stack, run_id), 120, "the run to suspend", stack, interval=0.2)
        stack.cli("prefect", "flow-run", "cancel", run_id)
        wait_for(job_in_state(stack, "cancelled while suspended", JobState.Canceled), 30,
                 "the watcher to cancel the HEAppE job", stack, interval=0.2)
    finally:
        stack.sandbox.settings(job_seconds=2)
    assert flow_run(stack, run_id).state.type.value == "CANCELLED"
    # The watcher writes it in the run's logs right after the cancel returned.
    wait_for(lambda: "run cancelled while suspended: cancelled HEAppE job(s)" in "\n".join(log_lines(stack, run_id)), 15,
             "the watcher's line in the run's logs", stack)


def test_a_killed_run_leaves_its_job_running_and_a_retry_re_attaches_to_it(stack: Stack):
    """Crash is not cancel: the job outlives the process; the retried run finds it by name."""
    stack.sandbox.settings(job_seconds=15)
    try:
        output = stack.cli("prefect", "deployment", "run", "lexis_hpc_simple/native", "--job-variable", f"env={IN_PROCESS}",
                           "--param", f"job1={dumps(job_named('killed run'))}").stdout
        run_id = run_id_of(output)
        wait_for(job_in_state(stack, "killed run", JobState.Running), 120, "the HEAppE job to run", stack, interval=0.2)
        kill(pid_of(flow_run(stack, run_id)))
        crashed = wait_for(lambda: final(stack, run_id), 60, "the run to crash", stack)
        assert crashed.state.type.value == "CRASHED", crashed.state
        time.sleep(3)  # the crash hook, which the worker runs, has had its chance to cancel the job
        assert jobs_named(stack, "killed run")[0]["state"] == JobState.Running  # it left it alone

        async def retry(client: PrefectClient) -> None:  # what the UI's "Retry" does
            await client.set_flow_run_state(UUID(run_id), Scheduled(name="AwaitingRetry"), force=True)

        def retried() -> Any:
            """The retried run once it ended. The worker may report the crash a second time after our
            retry, which sets the run back to Crashed (Prefect's doing, as for a user's Retry): retry again."""
            run = final(stack, run_id)
            if run is None:
                return None
            if run.state.type.value == "CRASHED":
                if not any(s.name == "Running" and s.timestamp.timestamp() > crashed_at for s in states(stack, run_id)):
                    stack.api(retry)
                return None
            return run

        crashed_at = time.time()
        stack.api(retry)
        ended = wait_for(retried, 120, "the retried run to end", stack, interval=1.0)
    finally:
        stack.sandbox.settings(job_seconds=2)
    assert ended.state.type.value == "COMPLETED", ended.state
    jobs = jobs_named(stack, "killed run")
    assert len(jobs) == 1 and jobs[0]["state"] == JobState.Finished, jobs
    lines = "\n".join(log_lines(stack, run_id))
    assert "run crashed: HEAppE job(s)" in lines and "re-attached to HEAppE job" in lines
    assert len(datasets_of(stack, run_id)) == 1


def test_a_fan_out_and_the_seed_dag_suspend_and_resume_as_their_jobs_end_apart(stack: Stack):
    """Three jobs of 5, 10 and 45 s in one run (TestTemplate's `@<seconds>`), and the seed DAG's job
    of 20 s through the Airflow shim: each suspends and is resumed; the fan-out's resumed run stages
    out the two jobs that ended and suspends again for the third. Every job is staged out once."""
    stack.sandbox.settings(job_seconds=20)
    try:
        fanout = run_id_of(stack.cli("prefect", "deployment", "run", "lexis_hpc_fanout/fanout",
                                     "--param", f"job1={dumps(job_named('fan out apart'))}",
                                     "--param", 'input_params=["a@5","b@10","c@45"]').stdout)
        dag = run_id_of(stack.cli("prefect", "deployment", "run", "lexis_hpc_simple/seed-dag",
                                  "--params", dumps({"job1": job_named("suspended seed dag")})).stdout)
        ended = {key: wait_for(lambda run_id=run_id: final(stack, run_id), 240, f"the {key} run to end", stack)
                 for key, run_id in (("fan-out", fanout), ("seed DAG", dag))}
    finally:
        stack.sandbox.settings(job_seconds=2)
    for key, run in ended.items():
        assert run.state.type.value == "COMPLETED", (key, run.state)
    suspensions = sum(1 for s in states(stack, fanout) if s.name == "Suspended")
    assert suspensions >= 2, f"the fan-out suspended {suspensions} time(s): after the first jobs ended it must wait again"
    jobs = jobs_named(stack, "fan out apart")
    assert len(jobs) == 3 and all(j["state"] == JobState.Finished for j in jobs), jobs
    assert len(datasets_of(stack, fanout)) == 3
    assert any(s.name == "Suspended" for s in states(stack, dag)), "the seed DAG's run suspended"
    dag_jobs = jobs_named(stack, "suspended seed dag")
    assert len(dag_jobs) == 1 and dag_jobs[0]["state"] == JobState.Finished, dag_jobs
    assert len(datasets_of(stack, dag)) == 1

    async def leftovers(client: PrefectClient, ids: list[UUID]) -> list[str]:
        runs = [await client.read_flow_run(i) for i in ids]
        return [f"{r.name}: {r.state_name}" for r in runs if r.state_type.value in ("RUNNING", "PAUSED")]

    # No subflow run of an earlier attempt is left Running (the shim's steps start a new one each time).
    assert stack.api(leftovers, run_tree(stack, dag)) == []
