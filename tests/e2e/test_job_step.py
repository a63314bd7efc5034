"""End to end: the seed workflow `lexis_hpc_simple` and its `build_hpc_job_step` subflow on a real sandbox.

Each test runs the flow as a user would (`await lexis_hpc_simple(...)`) on
Prefect's test server against the module's sandbox subprocess, then reads back
what the run left behind: the sandbox's jobs and datasets, and the run's task
runs, logs and artifacts through the Prefect API.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import State
from prefect.logging.handlers import APILogHandler
from prefect.results import ResultRecord
from prefect.settings import get_current_settings
from pydantic import SecretStr

from lexis_prefect.exceptions import (
    AuthenticationError,
    ConfigurationError,
    HpcJobFailedError,
    JobValidationError,
    LexisError,
    NoLocationError,
)
from lexis_prefect import hpc
from lexis_prefect.hpc import build_hpc_job_step
from lexis_prefect.models.job import SEED_JOB
from lexis_prefect.sandbox import SandboxProcess
from tests.e2e.conftest import demo_token, load_flow_module

flow_module = load_flow_module("lexis_hpc_simple")
lexis_hpc_simple = flow_module.lexis_hpc_simple

JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{27,}(?:\.[A-Za-z0-9_\-]*)*")
TASK_FIELDS = {"command_template_name", "node_type_name", "walltime_limit", "max_cores", "template_parameter_values"}
REQUIREMENT_FIELDS = {"job_name", "project_shortname", "policy", "locations", "tasks"}


# -- helpers -----------------------------------------------------------------------------------


def job1(**changes: Any) -> dict[str, Any]:
    """The seed's job1 (deep-copied) with changes: task fields go to tasks[0], requirement fields to requirements."""
    job = copy.deepcopy(SEED_JOB)
    for key, value in changes.items():
        if key in TASK_FIELDS:
            job["requirements"]["tasks"][0][key] = value
        elif key in REQUIREMENT_FIELDS:
            job["requirements"][key] = value
        else:
            job[key] = value
    return job


def location(name: str) -> dict[str, str]:
    return {"location_name": name, "location_resource": "your-resource-name"}


def job_ids(sandbox: SandboxProcess) -> set[Any]:
    return {job["id"] for job in sandbox.jobs()}


def dataset_ids(sandbox: SandboxProcess) -> set[str]:
    return {entry["id"] for entry in sandbox.control("GET", "datasets")}


async def run(sandbox: SandboxProcess, *, token: SecretStr | str | None = None, **parameters: Any) -> State:
    """Run the seed flow to its final state (never raises for a failed run)."""
    token = demo_token(sandbox) if token is None else token
    return await lexis_hpc_simple(access_token=token, return_state=True, **parameters)


async def run_error(state: State) -> BaseException:
    """The exception a failed run ended with."""
    assert state.is_failed(), f"expected a failed run, got {state.type.name}: {state.message}"
    error = await state.aresult(raise_on_failure=False)
    assert isinstance(error, BaseException), error
    return error


class RunRecord:
    """What the Prefect API holds about one flow run and its subflow runs."""

    def __init__(self, flow_run_id: UUID) -> None:
        self.flow_run_id = flow_run_id
        self.flow_runs: list[Any] = []
        self.task_runs: list[Any] = []
        self.logs: list[Any] = []
        self.artifacts: list[Any] = []

    @classmethod
    async def read(cls, state: State) -> RunRecord:
        record = cls(state.state_details.flow_run_id)
        await APILogHandler.aflush()
        async with get_client() as client:
            ids, frontier = [record.flow_run_id], [record.flow_run_id]
            while frontier:  # the run and its subflow runs, at any depth
                children = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=frontier))
                )
                frontier = [child.id for child in children if child.id not in ids]
                ids += frontier
            record.flow_runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
            record.task_runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
            record.logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))
            record.artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
            )
        return record

    @property
    def flow_run(self) -> Any:
        return next(flow_run for flow_run in self.flow_runs if flow_run.id == self.flow_run_id)

    def task_states(self) -> dict[str, str]:
        """Task run name -> its final state name."""
        return {task_run.name: task_run.state.name for task_run in self.task_runs}

    @property
    def messages(self) -> list[str]:
        return [log.message for log in self.logs]

    def artifact(self, key: str) -> Any:
        found = [a for a in self.artifacts if a.key == key]
        assert len(found) == 1, f"{len(found)} artifact(s) with key {key!r}: {[a.key for a in self.artifacts]}"
        return found[0]


async def offline_token_secret(record: RunRecord) -> Secret | None:
    """The Secret block `refresh_token` keeps the run's offline token in, if it still exists."""
    try:
        return await Secret.aload(f"lexis-offline-token-{record.flow_run_id}")
    except ValueError:
        return None


def happy_job_id(sandbox: SandboxProcess, before: set[Any]) -> Any:
    new = job_ids(sandbox) - before
    assert len(new) == 1, f"expected one new HEAppE job, got {new}"
    return new.pop()


# -- 1. happy path -----------------------------------------------------------------------------


STEP_TASKS = [
    "job.create_job[Karolina]",
    "job.stage_input[0]",
    "job.submit_job",
    "job.wait_for_job",
    "job.stage_output[0]",
]
KEEPER_TASKS = ["refresh_token", "ref_token_keeper", "ref_token_stop"]


async def test_happy_path_result_sandbox_and_prefect_records(lexis_env):
    jobs_before, datasets_before = job_ids(lexis_env), dataset_ids(lexis_env)
    # 2 s rather than 1: the first polls (at ~0 s and ~1 s) must see the job Running to log it
    lexis_env.settings(job_seconds=2)
    try:
        state = await run(lexis_env)
    finally:
        lexis_env.settings(job_seconds=1)

    assert state.is_completed(), state.message
    result = await state.aresult()
    assert result.location == "Karolina"
    assert result.state == "Finished"
    assert result.group_id == "job"
    assert set(result.timings_seconds) == {"stage_in", "queued", "running", "stage_out", "total"}
    assert all(seconds >= 0 for seconds in result.timings_seconds.values())
    assert result.timings_seconds["total"] >= result.timings_seconds["running"] > 0

    # exactly one HEAppE job for this run, and it is the one the result names
    assert happy_job_id(lexis_env, jobs_before) == result.job_id
    # one new dataset, holding the job's result
    assert len(result.output_dataset_ids) == 1 == len(result.output_datasets)
    assert dataset_ids(lexis_env) - datasets_before == set(result.output_dataset_ids)
    assert result.output_datasets[0].endswith("/" + result.output_dataset_ids[0])
    files = lexis_env.dataset_files(result.output_dataset_ids[0])
    assert files.get("results/result.txt") == "result for value\n"

    record = await RunRecord.read(state)
    states = record.task_states()
    for name in STEP_TASKS + KEEPER_TASKS:
        assert states.get(name) == "Completed", f"task run {name}: {states.get(name)} (all: {states})"

    summary = record.artifact("job-summary")
    assert summary.type == "markdown"
    assert "Karolina" in summary.data and str(result.job_id) in summary.data and "Finished" in summary.data
    assert result.output_datasets[0] in summary.data
    progress = record.artifact("job-progress")
    assert progress.type == "progress"
    assert float(progress.data) == 100.0

    text = "\n".join(record.messages)
    assert "TestTemplate started with input_param=value" in text
    assert f"HEAppE job {result.job_id}: Running" in record.messages
    assert f"HEAppE job {result.job_id}: Finished" in record.messages


async def test_multi_task_job_logs_each_output_line_exactly_once(lexis_env):
    # Three tasks tail nine files: more than one DownloadParts request, each within HEAppE's
    # 480 bytes; HEAppE answers the offset it was sent, so each read must move on by what it read.
    job = job1()
    job["requirements"]["tasks"] = [
        {**job["requirements"]["tasks"][0], "template_parameter_values": {"input_param": f"p{i}"}} for i in range(3)
    ]
    lexis_env.settings(job_seconds=4)
    try:
        state = await run(lexis_env, job1=job)
    finally:
        lexis_env.settings(job_seconds=1)

    assert state.is_completed(), state.message
    record = await RunRecord.read(state)
    task_ids = sorted({int(m) for m in re.findall(r"stdout \(task (\d+)\)", "\n".join(record.messages))})
    assert len(task_ids) == 3, record.messages
    for task_id in task_ids:
        lines = [
            line
            for message in record.messages
            if message.startswith(f"stdout (task {task_id}):")
            for line in message.splitlines()[1:]
        ]
        expected = [f"step {i} of 4" for i in range(1, 5)]
        assert [line for line in lines if line.startswith("step ")] == expected, lines
        assert sum(line.startswith("TestTemplate started") for line in lines) == 1, lines


# -- 2. a failing job --------------------------------------------------------------------------


async def test_failing_job_fails_the_run_with_exit_status_and_stderr_and_stages_nothing_out(lexis_env):
    jobs_before, datasets_before = job_ids(lexis_env), dataset_ids(lexis_env)

    state = await run(lexis_env, job1=job1(command_template_name="FailingTemplate"))

    error = await run_error(state)
    assert isinstance(error, HpcJobFailedError), repr(error)
    job_id = happy_job_id(lexis_env, jobs_before)
    assert error.job_id == job_id and error.location == "Karolina" and error.state == "Failed"
    message = str(error)
    assert f"HPC job {job_id} at Karolina ended Failed" in message
    assert "exit status 3" in message
    assert "simulated failure: input_param=value" in message
    assert "simulated failure: input_param=value" in error.stderr_tail
    # partial results must not pass for results
    assert dataset_ids(lexis_env) == datasets_before

    record = await RunRecord.read(state)
    states = record.task_states()
    assert states["ref_token_stop"] == "Completed", states
    assert states["ref_token_keeper"] == "Completed", states
    assert "job.stage_output[0]" not in states, states
    assert "Failed" in record.artifact("job-summary").data
    assert await offline_token_secret(record) is None


# -- 3. walltime -------------------------------------------------------------------------------


async def test_job_over_its_walltime_fails_promptly(lexis_env):
    lexis_env.settings(job_seconds=20)
    try:
        started = time.monotonic()
        state = await run(lexis_env, job1=job1(walltime_limit=1))
        elapsed = time.monotonic() - started
    finally:
        lexis_env.settings(job_seconds=1)

    error = await run_error(state)
    assert isinstance(error, HpcJobFailedError), repr(error)
    assert "walltime limit of 1 s exceeded" in str(error)
    assert elapsed < 15, f"the run took {elapsed:.1f} s to notice a 1 s walltime"


# -- 4. locations ------------------------------------------------------------------------------


async def test_failover_runs_on_the_next_location_when_the_first_is_down(lexis_env):
    lexis_env.set_available("Karolina", False)
    try:
        state = await run(
            lexis_env, job1=job1(policy="failover", locations=[location("Karolina"), location("Barbora")])
        )
    finally:
        lexis_env.set_available("Karolina", True)

    assert state.is_completed(), state.message
    result = await state.aresult()
    assert result.location == "Barbora"
    assert result.state == "Finished"
    assert lexis_env.dataset_files(result.output_dataset_ids[0]).get("results/result.txt") == "result for value\n"
    states = (await RunRecord.read(state)).task_states()
    assert states["job.create_job[Karolina]"] == "Failed", states
    assert states["job.create_job[Barbora]"] == "Completed", states


async def test_preferred_location_down_fails_with_no_location_error(lexis_env, monkeypatch):
    # The only location is retried (STEP_RETRIES) before the step gives up; not worth seconds here.
    monkeypatch.setattr(hpc.create_job, "retry_delay_seconds", [0.1])
    jobs_before = job_ids(lexis_env)
    lexis_env.set_available("Karolina", False)
    try:
        state = await run(
            lexis_env, job1=job1(policy="preferred", locations=[location("Karolina"), location("Barbora")])
        )
    finally:
        lexis_env.set_available("Karolina", True)

    error = await run_error(state)
    assert isinstance(error, NoLocationError), repr(error)
    assert list(error.reasons) == ["Karolina"]  # preferred: Barbora is not tried
    assert "Karolina" in str(error) and "503" in str(error)
    assert job_ids(lexis_env) == jobs_before
    states = (await RunRecord.read(state)).task_states()
    assert "job.create_job[Barbora]" not in states, states
    assert states["ref_token_stop"] == "Completed", states


# -- 5. bad input ------------------------------------------------------------------------------


async def test_invalid_job_fails_before_any_heappe_call(lexis_env):
    jobs_before = job_ids(lexis_env)

    state = await run(lexis_env, job1=job1(walltime_limit=-1))

    error = await run_error(state)
    assert "walltime_limit" in str(error), str(error)
    assert job_ids(lexis_env) == jobs_before
    states = (await RunRecord.read(state)).task_states()
    assert not any(name.startswith("job.") for name in states), states


async def test_subflow_rejects_an_invalid_job_dict_with_job_validation_error(lexis_env):
    state = await build_hpc_job_step(job=job1(walltime_limit=-1), keeper_id="unused", return_state=True)

    error = await run_error(state)
    assert isinstance(error, JobValidationError), f"{type(error).__name__}: {error}"
    assert "requirements.tasks[0].walltime_limit" in str(error)


async def test_unknown_command_template_is_named(lexis_env):
    jobs_before = job_ids(lexis_env)

    state = await run(lexis_env, job1=job1(command_template_name="NoSuchTemplate"))

    error = await run_error(state)
    assert isinstance(error, LexisError), repr(error)
    assert "NoSuchTemplate" in str(error)
    assert job_ids(lexis_env) == jobs_before


async def test_bad_access_token_fails_in_refresh_token_with_authentication_error(lexis_env):
    token = "garbage-not-a-token"
    jobs_before = job_ids(lexis_env)

    state = await run(lexis_env, token=token)

    error = await run_error(state)
    assert isinstance(error, AuthenticationError), f"{type(error).__name__}: {error}"
    assert job_ids(lexis_env) == jobs_before
    states = (await RunRecord.read(state)).task_states()
    assert states == {"refresh_token": "Failed"}, states
    # one line saying what was refused, not a traceback, and not the token
    assert "\n" not in str(error) and "Traceback" not in str(error), str(error)
    assert "openid-connect/token" in str(error) and str(error.status) in str(error)
    assert token not in str(error)


async def test_an_empty_access_token_fails_in_refresh_token_naming_it_before_any_call(lexis_env):
    jobs_before = job_ids(lexis_env)

    state = await run(lexis_env, token="")

    error = await run_error(state)
    assert isinstance(error, ConfigurationError), f"{type(error).__name__}: {error}"
    assert str(error).startswith("access_token is empty")
    assert job_ids(lexis_env) == jobs_before
    assert (await RunRecord.read(state)).task_states() == {"refresh_token": "Failed"}


# -- 6. secrets --------------------------------------------------------------------------------


def stored_files(storage: Path) -> set[Path]:
    return {path for path in storage.rglob("*") if path.is_file()} if storage.exists() else set()


def leaks(where: str, text: str, user_token: str) -> list[str]:
    """What in `text` looks like a token: a JWT, or the user's own access token."""
    found = [f"{where}: JWT {match[:12]}...({len(match)} chars)" for match in JWT.findall(text)]
    if user_token in text:
        found.append(f"{where}: the user's access token")
    return found


async def test_no_token_reaches_logs_artifacts_parameters_or_results(lexis_env):
    token = demo_token(lexis_env)
    user_token = token.get_secret_value()
    assert JWT.fullmatch(user_token), "the sandbox's tokens are JWTs: the JWT pattern must be able to see them"
    storage = get_current_settings().results.local_storage_path
    stored_before = stored_files(storage)

    state = await run(lexis_env, token=token)

    assert state.is_completed(), state.message
    result = await state.aresult()
    record = await RunRecord.read(state)
    # the flow's SecretStr parameter is stored masked
    assert record.flow_run.parameters["access_token"] == "**********"
    assert len(record.flow_runs) == 2 and len(record.task_runs) >= len(STEP_TASKS + KEEPER_TASKS)
    assert record.logs and record.artifacts

    places = [("result", result.model_dump_json())]
    places += [(f"log {log.id}", log.message) for log in record.logs]
    places += [(f"artifact {a.key}", f"{a.data} {a.description}") for a in record.artifacts]
    places += [(f"flow run {flow_run.name}", flow_run.model_dump_json()) for flow_run in record.flow_runs]
    places += [(f"task run {task_run.name}", task_run.model_dump_json()) for task_run in record.task_runs]
    places += [(f"state {task_run.name}", repr(task_run.state)) for task_run in record.task_runs]
    async with get_client() as client:  # every Variable (the job records among them)
        places += [(f"variable {v.name}", str(v.value)) for v in await client.read_variables()]
    persisted = sorted(stored_files(storage) - stored_before)
    assert persisted, f"stage_output persists its result: nothing new under {storage}"
    for path in persisted:
        places.append((f"persisted result {path.name}", path.read_text(errors="replace")))
        places.append((f"unpickled result {path.name}", repr(ResultRecord.deserialize(path.read_bytes()).result)))
    found = [leak for where, text in places for leak in leaks(where, text, user_token)]
    assert not found, found

    # the offline token's Secret block is gone with the run
    assert await offline_token_secret(record) is None


# -- stage-out cache ---------------------------------------------------------------------------


@contextmanager
def another_sandbox(*args: str) -> Iterator[SandboxProcess]:
    """A sandbox of this test's own, set up like the module's, with LEXIS_* pointing at it."""
    with SandboxProcess("--job-seconds", "1", *args) as sandbox:
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        with pytest.MonkeyPatch.context() as monkeypatch:
            for name, value in sandbox.environment().items():
                monkeypatch.setenv(name, value)
            yield sandbox


async def test_stage_out_of_a_new_job_is_not_served_from_an_old_jobs_cache(lexis_env):
    """Job ids repeat at one HEAppE URL (a restarted `lexis-prefect sandbox` on its fixed port, a reset
    HEAppE): the stage-out cache of an old run must not answer for a new run's job of the same id."""
    with another_sandbox() as first:
        earlier = await (await run(first)).aresult()
    with another_sandbox("--port", str(urlsplit(first.url).port)) as second:
        assert second.url == first.url
        state = await run(second)

        assert state.is_completed(), state.message
        result = await state.aresult()
        assert result.job_id == earlier.job_id  # the premise: a job id seen before at this URL
        states = (await RunRecord.read(state)).task_states()
        assert states["job.stage_output[0]"] == "Completed", states  # not "Cached"
        assert result.output_dataset_ids != earlier.output_dataset_ids
        assert set(result.output_dataset_ids) <= dataset_ids(second)
        assert second.dataset_files(result.output_dataset_ids[0]).get("results/result.txt") == "result for value\n"
