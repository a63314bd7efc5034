"""End to end: the LEXIS Airflow DAG files of flows/dags/ on the shim, against a real sandbox subprocess.

- the seed file is the seed, byte for byte, and runs to success by its ``dag.test()`` footer,
  by ``lexis-prefect airflow test`` and by ``dag.test()`` in this process;
- the two-jobs DAG runs both jobs, the second failing over from Barbora to Karolina;
- the sweep DAG runs one job per value through a mapped task group;
- a failing HPC job, a token that expires mid-job, a bad conf, a token that native rendering
  turns into an int, and SIGTERM (cancellation) each end as documented;
- the user's access token appears nowhere in what the Prefect API stores of a run.

Runs in this process use Prefect's test harness; subprocess runs use either the harness's API
(``PREFECT_API_URL``) or, for the footer, a temporary server of their own.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import StateType
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_API_URL

from lexis_prefect.airflow.loader import load_dag
from lexis_prefect.hpc import run_job_name
from lexis_prefect.models.heappe import JobState
from lexis_prefect.sandbox import SandboxProcess
from tests.e2e.conftest import demo_token

REPO = Path(__file__).parents[2]
SEED_DAG = REPO / "flows" / "dags" / "lexis_hpc_simple.py"
TWO_JOBS_DAG = REPO / "flows" / "dags" / "lexis_hpc_two_jobs.py"
SHARED_SEED = REPO.parent / "shared" / "seed" / "lexis_hpc_simple.py"

SEED_TASKS = ["refresh_token_task", "ref_token_keeper", "job.hpc_job", "ref_token_stop", "finish"]
ALL_SUCCESS = {task_id: "success" for task_id in SEED_TASKS}
#: ``dag.test: DAG <id> run <run_id> ended <state>; task states: {json}`` (runner.test_dag's log line)
DAG_TEST_LINE = re.compile(r"dag\.test: DAG (\S+) run (\S+) ended (\w+); task states: (\{.*\})\s*$", re.MULTILINE)
JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


# -- helpers -------------------------------------------------------------------------------------


def default_job1(path: Path = SEED_DAG) -> dict[str, Any]:
    """The DAG's own default ``job1`` (a deep copy, to change for a test)."""
    return copy.deepcopy(load_dag(path).params.get_param("job1").value)


def run_in_process(path: Path, conf: dict[str, Any]) -> tuple[Any, Any, float]:
    """``load_dag(path).test(run_conf=conf)`` here, on the harness: (dag, result, wall seconds)."""
    dag = load_dag(path)
    started = time.monotonic()
    result = dag.test(run_conf=conf)
    return dag, result, time.monotonic() - started


def subprocess_env(tmp_path: Path, sandbox: SandboxProcess | None = None, api_url: str | None = None) -> dict[str, str]:
    """A clean environment for a subprocess run: no LEXIS_* or PREFECT_* of ours but those given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEXIS_", "PREFECT_"))}
    home = tmp_path / f"prefect-home-{uuid.uuid4().hex[:6]}"
    home.mkdir()
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    if sandbox is not None:
        env.update(sandbox.environment())
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lexis_prefect.cli", "airflow", *args]


def run_cli(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def last_json_line(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no output on stdout"
    return json.loads(lines[-1])


def dataset_ids(sandbox: SandboxProcess) -> set[str]:
    return {d["id"] for d in sandbox.control("GET", "datasets")}


def job_ids(sandbox: SandboxProcess) -> set[int]:
    return {j["id"] for j in sandbox.jobs()}


def flush_logs() -> None:
    APILogHandler().flush()


def descendant_flow_runs(client: Any, flow_run_id: Any) -> list[Any]:
    """The subflow runs under ``flow_run_id``, at any depth."""
    found, todo = [], [flow_run_id]
    while todo:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=todo))
        )
        todo = [c.id for c in children if c.id not in {f.id for f in found}]
        found.extend(c for c in children if c.id in todo)
    return found


def read_all(read: Any, page: int = 200, **kwargs: Any) -> list[Any]:
    """Every row a paginated ``client.read_*`` call gives."""
    rows: list[Any] = []
    while True:
        batch = read(limit=page, offset=len(rows), **kwargs)
        rows.extend(batch)
        if len(batch) < page:
            return rows


def run_logs(flow_run_ids: list[Any]) -> list[Any]:
    flush_logs()
    with get_client(sync_client=True) as client:
        return read_all(client.read_logs, log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids)))


def hits(secrets: list[str], texts: dict[str, str]) -> dict[str, list[str]]:
    """Where each secret occurs among ``texts`` (label -> text): secret -> labels."""
    return {s: [label for label, text in texts.items() if s in text] for s in secrets if any(s in t for t in texts.values())}


# -- 1. the seed file ----------------------------------------------------------------------------


def test_seed_dag_file_is_the_seed_byte_for_byte():
    assert SHARED_SEED.parent.is_dir(), f"{SHARED_SEED.parent} is missing: CI has ../shared beside the clone"
    seed = SHARED_SEED.read_bytes()
    assert SEED_DAG.read_bytes() == seed, f"{SEED_DAG} differs from {SHARED_SEED}"


# -- 2. the seed DAG runs to success through the three paths --------------------------------------


def test_seed_dag_runs_in_process(lexis_env, capsys):
    sandbox = lexis_env
    token = demo_token(sandbox).get_secret_value()
    before = dataset_ids(sandbox)
    _, result, seconds = run_in_process(SEED_DAG, {"access_token": token})
    printed = capsys.readouterr().out
    print(f"in-process seed run: {result.state} in {seconds:.1f} s; {json.dumps(result.tasks)}")

    assert result.tasks == ALL_SUCCESS, result.tasks
    assert result.state == "success", result.message
    assert "no LEXIS configuration" not in printed, "configured by LEXIS_*: no sandbox of its own"
    job = result.xcom_pull("job.hpc_job")
    assert job["state"] == "Finished"
    assert job["location"] == "Karolina" and job["group_id"] == "job"
    assert isinstance(job["job_id"], int) and job["job_id"] in job_ids(sandbox)
    [dataset] = job["output_dataset_ids"]
    assert dataset not in before and dataset in dataset_ids(sandbox)
    files = sandbox.dataset_files(dataset)
    assert files.get("results/result.txt") == "result for value\n", sorted(files)


def test_seed_dag_file_runs_as_a_script_on_its_own_sandbox(tmp_path):
    env = subprocess_env(tmp_path)  # no LEXIS_*, no PREFECT_API_URL: its own sandbox and temporary server
    done = subprocess.run(
        [sys.executable, str(SEED_DAG)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "no LEXIS configuration: running against the LEXIS sandbox" in done.stdout
    found = DAG_TEST_LINE.findall(done.stderr)
    assert len(found) == 1, done.stderr[-4000:]
    [(dag_id, run_id, state, tasks)] = found
    assert dag_id == "lexis_hpc_simple" and run_id.startswith("manual__")
    assert json.loads(tasks) == ALL_SUCCESS
    assert state == "success"


def test_seed_dag_runs_with_the_cli(lexis_env, tmp_path):
    sandbox = lexis_env
    token = demo_token(sandbox).get_secret_value()
    before = job_ids(sandbox)
    env = subprocess_env(tmp_path, sandbox, PREFECT_API_URL.value())
    done = run_cli(cli_command("test", str(SEED_DAG), "--json", "--conf", json.dumps({"access_token": token})), env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert last_json_line(done.stdout) == {"dag_id": "lexis_hpc_simple", "state": "success", "tasks": ALL_SUCCESS}
    new = [j for j in sandbox.jobs() if j["id"] not in before]
    assert [j["state"] for j in new] == [JobState.Finished], "one HEAppE job, on the lexis_env sandbox"


# -- 3. two jobs, failover ------------------------------------------------------------------------

TWO_JOBS_TASKS = ["refresh_token_task", "ref_token_keeper", "preprocess.hpc_job", "simulate.hpc_job", "ref_token_stop", "finish"]


def test_two_jobs_dag_runs_both_jobs(lexis_env):
    sandbox = lexis_env
    _, result, _ = run_in_process(TWO_JOBS_DAG, {"access_token": demo_token(sandbox).get_secret_value()})
    assert result.tasks == {t: "success" for t in TWO_JOBS_TASKS}
    assert result.state == "success"
    first, second = result.xcom_pull("preprocess.hpc_job"), result.xcom_pull("simulate.hpc_job")
    assert first["state"] == second["state"] == "Finished"
    assert first["job_id"] != second["job_id"]
    assert (first["location"], second["location"]) == ("Karolina", "Barbora")  # failover tries Barbora first
    assert sandbox.dataset_files(first["output_dataset_ids"][0])["results/result.txt"] == "result for prepare\n"
    assert sandbox.dataset_files(second["output_dataset_ids"][0])["results/result.txt"] == "result for simulate\n"


def test_two_jobs_dag_fails_over_to_karolina(lexis_env):
    sandbox = lexis_env
    token = demo_token(sandbox).get_secret_value()
    before = job_ids(sandbox)
    sandbox.set_available("Barbora", False)
    try:
        _, result, _ = run_in_process(TWO_JOBS_DAG, {"access_token": token})
    finally:
        sandbox.set_available("Barbora", True)
    assert result.tasks == {t: "success" for t in TWO_JOBS_TASKS}
    assert result.state == "success"
    second = result.xcom_pull("simulate.hpc_job")
    assert second["state"] == "Finished"
    assert second["location"] == "Karolina"
    new = [j for j in sandbox.jobs() if j["id"] not in before]
    assert sorted(j["location"] for j in new) == ["Karolina", "Karolina"], "no job was created at Barbora"


SWEEP_DAG = REPO / "flows" / "dags" / "lexis_hpc_sweep.py"


def test_sweep_dag_runs_one_job_per_value(lexis_env):
    """Mapping fans out one HEAppE job per value, each with its own name, input and output dataset
    (a map index re-attaching to another index's job would show as fewer jobs or a wrong result)."""
    sandbox = lexis_env
    values = ["0.1", "0.2", "0.4"]
    before = job_ids(sandbox)
    _, result, _ = run_in_process(SWEEP_DAG, {"access_token": demo_token(sandbox).get_secret_value(), "values": values})
    assert result.state == "success"
    assert result.tasks["sweep.point.hpc_job"] == ["success"] * 3
    jobs = result.xcom_pull("sweep.point.hpc_job")
    assert [job["state"] for job in jobs] == ["Finished"] * 3
    new = {j["id"]: j for j in sandbox.jobs() if j["id"] not in before}
    assert sorted(new) == sorted(job["job_id"] for job in jobs)
    for value, job in zip(values, jobs):
        assert new[job["job_id"]]["name"].startswith(run_job_name(f"Sweep {value}", "", "")[:-10])
        assert sandbox.dataset_files(job["output_dataset_ids"][0])["results/result.txt"] == f"result for {value}\n"


def test_sweep_dag_refuses_an_empty_sweep_naming_the_param(lexis_env):
    sandbox = lexis_env
    before = job_ids(sandbox)
    with pytest.raises(Exception, match="values"):
        run_in_process(SWEEP_DAG, {"access_token": demo_token(sandbox).get_secret_value(), "values": []})
    assert job_ids(sandbox) == before


# -- 4. a failing HPC job -------------------------------------------------------------------------


def test_failing_hpc_job_fails_the_run_without_stage_out(lexis_env):
    sandbox = lexis_env
    job1 = default_job1()
    job1["requirements"]["tasks"][0]["command_template_name"] = "FailingTemplate"
    datasets_before, jobs_before = dataset_ids(sandbox), job_ids(sandbox)
    _, result, _ = run_in_process(SEED_DAG, {"access_token": demo_token(sandbox).get_secret_value(), "job1": job1})

    assert result.tasks == {
        "refresh_token_task": "success",
        "ref_token_keeper": "success",
        "job.hpc_job": "failed",
        "ref_token_stop": "success",
        "finish": "failed",  # FinishOperator fails the run on purpose (the leaf rule alone: success)
    }
    assert result.state == "failed"
    assert result.xcom_pull("job.hpc_job") is None
    new = [j for j in sandbox.jobs() if j["id"] not in jobs_before]
    assert [j["state"] for j in new] == [JobState.Failed]
    assert dataset_ids(sandbox) == datasets_before, "a failed job's outputs must not be staged out"
    messages = [log.message for log in run_logs([result.flow_run_id])]
    assert any("job.hpc_job failed" in m for m in messages), "finish names the failed task"


# -- 5. the token expires mid-job -----------------------------------------------------------------


def test_token_expiring_mid_job_is_refreshed_by_the_keeper(prefect_harness, monkeypatch):
    with SandboxProcess("--token-lifetime", "3", "--job-seconds", "8") as sandbox:
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
        for name, value in sandbox.environment().items():
            monkeypatch.setenv(name, value)
        _, result, _ = run_in_process(SEED_DAG, {"access_token": demo_token(sandbox).get_secret_value()})
    assert result.tasks == ALL_SUCCESS, result.tasks
    assert result.state == "success"
    assert result.xcom_pull("job.hpc_job")["state"] == "Finished"
    refreshes = result.xcom_pull("ref_token_keeper")
    assert isinstance(refreshes, int) and refreshes >= 2, refreshes


# -- 6. a bad conf --------------------------------------------------------------------------------


def count_dag_flow_runs(name: str = "lexis_hpc_simple") -> int:
    with get_client(sync_client=True) as client:
        return len(read_all(client.read_flow_runs, flow_filter=FlowFilter(name=FlowFilterName(any_=[name]))))


def test_invalid_job1_is_rejected_before_anything_runs(lexis_env, tmp_path):
    sandbox = lexis_env
    job1 = default_job1()
    job1["requirements"]["tasks"][0]["walltime_limit"] = -1
    jobs_before, runs_before = sandbox.jobs(), count_dag_flow_runs()
    env = subprocess_env(tmp_path, sandbox, PREFECT_API_URL.value())
    conf = {"access_token": demo_token(sandbox).get_secret_value(), "job1": job1}
    done = run_cli(cli_command("test", str(SEED_DAG), "--json", "--conf", json.dumps(conf)), env)

    assert done.returncode == 2, (done.stdout[-2000:], done.stderr[-2000:])
    assert "job1.requirements.tasks[0].walltime_limit" in done.stderr, done.stderr  # the field
    assert re.search(r"-1 is less than or equal to the minimum of 0|greater than 0", done.stderr), done.stderr  # the reason
    assert sandbox.jobs() == jobs_before, "no HEAppE job may exist for a rejected conf"
    assert count_dag_flow_runs() == runs_before, "no flow run may exist for a rejected conf"


def test_access_token_of_the_wrong_type_is_rejected(lexis_env, tmp_path):
    sandbox = lexis_env
    jobs_before = sandbox.jobs()
    env = subprocess_env(tmp_path, sandbox, PREFECT_API_URL.value())
    done = run_cli(cli_command("test", str(SEED_DAG), "--json", "--conf", json.dumps({"access_token": 5})), env)
    assert done.returncode == 2, (done.stdout[-2000:], done.stderr[-2000:])
    assert "access_token" in done.stderr, done.stderr
    assert sandbox.jobs() == jobs_before


# -- 7. a token that native rendering turns into an int -------------------------------------------

NUMERIC_TOKEN = re.compile(r"(?<!\d)12345(?!\d)")


def test_numeric_access_token_fails_at_the_aai_not_with_a_type_error(lexis_env):
    sandbox = lexis_env
    jobs_before = job_ids(sandbox)
    _, result, _ = run_in_process(SEED_DAG, {"access_token": "12345"})

    assert result.tasks == {
        "refresh_token_task": "failed",
        "ref_token_keeper": "upstream_failed",
        "job.hpc_job": "upstream_failed",
        "ref_token_stop": "success",
        "finish": "failed",
    }, result.tasks
    assert result.state == "failed"
    assert job_ids(sandbox) == jobs_before
    logs = run_logs([result.flow_run_id])
    task_logs = [log.message for log in logs if log.task_run_id is not None]
    errors = "\n".join(task_logs)
    assert "TypeError" not in errors, errors[-3000:]
    assert any("refus" in m.lower() or "invalid" in m.lower() or "401" in m for m in task_logs), errors[-3000:]
    leaked = [m for m in (log.message for log in logs) if NUMERIC_TOKEN.search(m)]
    assert leaked == [], leaked  # the stored parameters: test_stored_access_token_parameter_is_masked


# -- 8. the token appears nowhere -----------------------------------------------------------------


def test_access_token_appears_nowhere_the_api_stores(lexis_env):
    sandbox = lexis_env
    token = demo_token(sandbox).get_secret_value()
    header, payload, signature = token.split(".")
    secrets = [token, payload, signature]
    dag, result, _ = run_in_process(SEED_DAG, {"access_token": token})
    assert result.state == "success", result.tasks
    flush_logs()

    texts: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(result.flow_run_id)
        subruns = descendant_flow_runs(client, run.id)
        run_ids = [run.id] + [r.id for r in subruns]
        own_logs = read_all(client.read_logs, log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids)))
        all_logs = read_all(client.read_logs)  # everything in the harness's database, this run included
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)))
        task_runs = read_all(client.read_task_runs, flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)))
        own_artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=run_ids)))
        all_artifacts = read_all(client.read_artifacts)
        variables = client.read_variables()
        blocks = read_all(client.read_block_documents, include_secrets=False)

    # The scan reads what it should: the run's own records, the subflow's included.
    assert [r.name for r in subruns] == ["job"], [r.name for r in subruns]
    assert {log.flow_run_id for log in own_logs} == set(run_ids)
    assert any("LEXIS token obtained" in log.message for log in own_logs)
    steps = {t.name for t in task_runs}
    assert set(SEED_TASKS) <= steps
    assert {"job.submit_job", "job.wait_for_job", "job.stage_input[0]", "job.stage_output[0]"} <= steps, steps
    assert any(a.key == "job-summary" for a in own_artifacts), [a.key for a in own_artifacts]

    for log in all_logs:
        texts[f"log {log.flow_run_id}/{log.task_run_id} {log.name}"] = log.message
    for r in runs:
        parameters = dict(r.parameters)
        if r.id == run.id:  # the DAG run's access_token parameter: test_stored_access_token_parameter_is_masked
            parameters.pop("access_token", None)
        texts[f"flow run {r.name} parameters"] = json.dumps(parameters, default=str)
        texts[f"flow run {r.name} state"] = f"{r.state.name} {r.state.message}"
    for t in task_runs:
        texts[f"task run {t.name}"] = json.dumps(t.model_dump(mode="json"), default=str)
    for a in all_artifacts:
        texts[f"artifact {a.key} {a.id}"] = json.dumps({"data": a.data, "description": a.description}, default=str)
    for v in variables:
        texts[f"variable {v.name}"] = json.dumps(v.value, default=str)
    for (task_id, key), value in result.xcoms.items():
        texts[f"xcom {task_id}/{key}"] = value
    texts["result.message"] = result.message
    texts["repr(refresh_token_task)"] = repr(dag.get_task("refresh_token_task"))

    assert hits(secrets, texts) == {}
    jwts = {label: JWT.findall(text) for label, text in texts.items() if JWT.search(text)}
    assert jwts == {}, "no token of any kind is stored in clear"
    assert f"lexis-offline-token-{run.id}" not in {b.name for b in blocks}, "the offline token's Secret block is deleted"


@pytest.mark.parametrize("kind", ["jwt", "numeric"])
def test_stored_access_token_parameter_is_masked(lexis_env, kind):
    token = demo_token(lexis_env).get_secret_value() if kind == "jwt" else "12345"
    _, result, _ = run_in_process(SEED_DAG, {"access_token": token})
    if result.state != ("success" if kind == "jwt" else "failed") or not result.flow_run_id:
        pytest.fail(f"unexpected run: {result.state} {result.tasks}")
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(result.flow_run_id).parameters
    if "access_token" not in stored:
        pytest.fail(f"no access_token among the stored parameters {sorted(stored)}")
    value = str(stored["access_token"])
    assert token not in value and set(value) <= {"*"}, f"access_token stored as {value[:12]}... ({len(value)} characters)"


# -- 9. cancellation: SIGTERM, as a worker sends on `prefect flow-run cancel` --------------------


def poll(condition: Any, timeout: float, interval: float = 0.2) -> Any:
    """``condition()`` until it gives something truthy, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value or None
        time.sleep(interval)


def test_sigterm_cancels_the_heappe_job_and_ends_the_run(lexis_env, tmp_path):
    sandbox = lexis_env
    token = demo_token(sandbox).get_secret_value()
    jobs_before, datasets_before = job_ids(sandbox), dataset_ids(sandbox)
    env = subprocess_env(tmp_path, sandbox, PREFECT_API_URL.value())
    log_path = tmp_path / "cli.log"

    def output() -> str:
        return log_path.read_text(errors="replace")[-6000:]

    sandbox.settings(job_seconds=20)
    process = None
    try:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                cli_command("test", str(SEED_DAG), "--json", "--conf", json.dumps({"access_token": token})),
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

        def running() -> dict[str, Any] | None:
            if process.poll() is not None:
                pytest.fail(f"the CLI ended early ({process.returncode}):\n{output()}")
            return next((j for j in sandbox.jobs() if j["id"] not in jobs_before and j["state"] == JobState.Running), None)

        job = poll(running, 90)
        assert job is not None, f"the run's HEAppE job never ran:\n{output()}"
        time.sleep(1)  # let the job's process get going
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        def current_job() -> dict[str, Any]:
            return next(j for j in sandbox.jobs() if j["id"] == job["id"])

        ended = poll(lambda: current_job()["state"] in (JobState.Canceled, JobState.Finished, JobState.Failed), 25)
        after = time.monotonic() - signalled
        final_job = current_job()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        exit_code = process.poll()

        with get_client(sync_client=True) as client:
            runs = read_all(client.read_flow_runs, flow_filter=FlowFilter(name=FlowFilterName(any_=["lexis_hpc_simple"])))
            flow_run = next((r for r in runs if run_job_name("My HPC Job", str(r.id), "job") == job["name"]), None)
            assert flow_run is not None, f"no flow run for HEAppE job {job['name']!r}:\n{output()}"
            poll(lambda: client.read_flow_run(flow_run.id).state.is_final(), 20)
            state = client.read_flow_run(flow_run.id).state
    finally:
        sandbox.settings(job_seconds=1)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    report = (
        f"HEAppE job {job['id']} {JobState(final_job['state']).name} ({'ended' if ended else 'still active'} "
        f"{after:.1f} s after SIGTERM); flow run {state.type.value} ({state.name}: {state.message}); "
        f"CLI exit code {exit_code}; datasets staged: {sorted(dataset_ids(sandbox) - datasets_before)}\n{output()}"
    )
    assert final_job["state"] == JobState.Canceled and after < 15, report
    assert state.type in (StateType.CRASHED, StateType.CANCELLED), report
    assert dataset_ids(sandbox) == datasets_before, "no stage-out after a cancellation\n" + report
    assert exit_code is not None and exit_code != 0, report
