"""Contract tests: the foundation clients against a started sandbox, through whole lifecycles."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from pydantic import SecretStr

from lexis_prefect import AAIClient, AuthenticationError, DDIStagingClient, HEAppEClient
from lexis_prefect.models import FileType, JobState, StageRequest, SubmittedJobInfo, TaskFileOffset, TaskState
from lexis_prefect.sandbox import SandboxProcess
from lexis_prefect.models.ddi import zone_path
from tests.sandbox.conftest import FAST_POLL, FAST_RETRY, Kit, login


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def tail(kit: Kit, job_id: int, task_id: int) -> tuple[str, str, SubmittedJobInfo]:
    """Follow stdout and stderr by offset until the job ends, as a job step will."""
    offsets = {FileType.StandardOutputFile: 0, FileType.StandardErrorFile: 0}
    text = {FileType.StandardOutputFile: "", FileType.StandardErrorFile: ""}
    while True:
        info = await kit.heappe.job_info(job_id)
        parts = await kit.heappe.download_file_parts(
            job_id, [TaskFileOffset(submitted_task_info_id=task_id, file_type=t, offset=o) for t, o in offsets.items()]
        )
        for part in parts:
            text[part.file_type] += part.content or ""
            # HEAppE answers the offset it was sent: the file goes on after what was read.
            offsets[part.file_type] = part.offset + len((part.content or "").encode())
        if info.is_terminal:
            return text[FileType.StandardOutputFile], text[FileType.StandardErrorFile], info
        await asyncio.sleep(0.2)


# -- tokens ----------------------------------------------------------------------------------


async def test_token_lifecycle_with_expiry_refresh_and_offline_exchange():
    with SandboxProcess("--token-lifetime", "2") as sb:
        async with AAIClient(sb.aai_url(), "lexis-prefect", retry=FAST_RETRY) as aai:
            tokens = await aai.password_grant("demo", SecretStr("demo"))
            offline = await aai.exchange_token(tokens.access_token, offline_access=True)
            assert tokens.expires_in == 2 and tokens.refresh_expires_in > 0 and tokens.username == "demo"
            assert offline.is_offline and offline.refresh_expires_in == 0
            async with DDIStagingClient(sb.staging_url, tokens.access_token, retry=FAST_RETRY) as ddi:
                assert "your-resource" in await ddi.info()
                await asyncio.sleep(2.5)
                # `/info` reads no token (ddi-service-apis 9e96c41 views.py `get_targets`); `/stage` does.
                expired = StageRequest(source_system="your-resource", source_path="a", target_system="it4i_iRODS", target_path="b")
                with pytest.raises(AuthenticationError, match="Inactive token"):
                    await ddi.stage(expired)
            with pytest.raises(AuthenticationError, match="invalid_token"):
                await aai.exchange_token(tokens.access_token)  # an expired subject token
            renewed = await aai.refresh(offline)  # the offline token outlives its access tokens
            async with DDIStagingClient(sb.staging_url, renewed.access_token, retry=FAST_RETRY) as ddi:
                assert "your-resource" in await ddi.info()


async def test_heappe_renews_an_expired_session_transparently(kit: Kit):
    await kit.heappe.list_available_clusters()
    expired = kit.sandbox.control("POST", "sessions/expire")["expired"]
    assert expired >= 1
    [cluster] = await kit.heappe.list_available_clusters()
    assert cluster.name == "Karolina"


# -- a job from stage-in to stage-out --------------------------------------------------------


async def test_stage_in_run_tail_and_stage_out(kit: Kit):
    job = await kit.create(name="full-run")
    assert job.state is JobState.Configuring
    staged = await kit.ddi.wait(await kit.stage_in(job), poll=FAST_POLL)
    directory = await kit.heappe.job_directory(job.id)
    # ddi-service-apis 9e96c41 staging_api.py `nfs_to_local_hpc`: `ServerHostname + ":/" + target_path`.
    assert staged.status == "Transfer completed"
    assert staged.target_path == f"{directory.server_hostname}:/{directory.task_path(job.tasks[0].id, 'inputs')}"

    submitted = await kit.heappe.submit_job(job.id)
    assert submitted.state is JobState.Submitted
    stdout, stderr, final = await tail(kit, job.id, job.tasks[0].id)

    assert final.state is JobState.Finished and final.tasks[0].state is TaskState.Finished
    assert "TestTemplate started with input_param=sandbox" in stdout
    assert "./inputs/input.txt" in stdout and "./inputs/data/sample.csv" in stdout
    assert stdout.endswith("TestTemplate finished\n") and stderr == ""
    files = {f.file_name for f in await kit.heappe.list_changed_files(job.id)}
    assert f"{job.tasks[0].id}/results/result.txt" in files

    out = await kit.ddi.wait(await kit.stage_out(job), poll=FAST_POLL)
    dataset_id = out.target_path.rsplit("/", 1)[-1]
    # irods_transfer.py: a new `<uuid1>` collection below `/<zone>/project/proj<md5>`, answered absolute.
    assert out.target_path == f"/YOURLOCATIONLexisZone/{zone_path('project', 'myproject')}/{dataset_id}"
    assert kit.sandbox.dataset_files(dataset_id) == {"result.txt": "result for sandbox\n"}
    assert await kit.heappe.download_file(job.id, f"{job.tasks[0].id}/results/result.txt") == b"result for sandbox\n"


async def test_states_pass_through_submitted_queued_running_in_order(kit: Kit):
    job = await kit.create(name="states")
    await kit.heappe.submit_job(job.id)
    seen: list[JobState] = []
    while not seen or seen[-1] not in (JobState.Finished, JobState.Failed):
        state = (await kit.heappe.job_info(job.id)).state
        if not seen or seen[-1] is not state:
            seen.append(state)
        await asyncio.sleep(0.03)
    order = [JobState.Submitted, JobState.Queued, JobState.Running, JobState.Finished]
    assert [s for s in order if s in seen] == seen  # never out of order; fast phases may be skipped
    assert seen[-1] is JobState.Finished and JobState.Running in seen


async def test_failing_job_ends_failed_with_its_stderr(kit: Kit):
    job = await kit.create(template="FailingTemplate", name="failing")
    await kit.heappe.submit_job(job.id)
    _, stderr, final = await tail(kit, job.id, job.tasks[0].id)
    assert final.state is JobState.Failed and final.tasks[0].state is TaskState.Failed
    assert final.tasks[0].error_message == "exit status 3"
    assert stderr == "simulated failure: input_param=sandbox\n"


async def test_walltime_kills_the_job_and_fails_it(kit: Kit):
    kit.sandbox.settings(job_seconds=30)
    try:
        job = await kit.create(walltime=1, name="walltime")
        await kit.heappe.submit_job(job.id)
        started = time.monotonic()
        final = await kit.wait_job(job.id)
    finally:
        kit.sandbox.settings(job_seconds=1)
    assert final.state is JobState.Failed
    assert final.tasks[0].error_message == "walltime limit of 1 s exceeded"
    assert time.monotonic() - started < 10
    [record] = [j for j in kit.sandbox.jobs() if j["id"] == job.id]
    assert not pid_alive(record["tasks"][0]["pid"])


async def test_cancel_kills_a_running_job(kit: Kit):
    kit.sandbox.settings(job_seconds=30)
    try:
        job = await kit.create(name="cancel")
        await kit.heappe.submit_job(job.id)
        while (await kit.heappe.job_info(job.id)).state is not JobState.Running:
            await asyncio.sleep(0.05)
        canceled = await kit.heappe.cancel_job(job.id)
    finally:
        kit.sandbox.settings(job_seconds=1)
    assert canceled.state is JobState.Canceled and canceled.tasks[0].state is TaskState.Canceled
    [record] = [j for j in kit.sandbox.jobs() if j["id"] == job.id]
    assert not pid_alive(record["tasks"][0]["pid"])
    assert (await kit.heappe.job_info(job.id)).state is JobState.Canceled


async def test_delete_removes_the_job_directory(kit: Kit):
    job = await kit.create(name="delete")
    await kit.ddi.wait(await kit.stage_in(job), poll=FAST_POLL)
    assert await kit.heappe.list_changed_files(job.id)
    assert await kit.heappe.delete_job(job.id) == "Job was deleted"
    assert (await kit.heappe.job_info(job.id)).state is JobState.Deleted
    assert await kit.heappe.list_changed_files(job.id) == []


async def test_second_location_has_its_own_heappe(kit: Kit):
    token = await login(kit.sandbox)
    async with HEAppEClient(kit.sandbox.heappe_url("Barbora"), token, retry=FAST_RETRY) as barbora:
        [cluster] = await barbora.list_available_clusters()
    assert kit.sandbox.heappe_url("Barbora").endswith("/locations/Barbora")
    assert (cluster.name, cluster.id) == ("Barbora", 2)


# -- restart ---------------------------------------------------------------------------------


async def test_restart_with_state_dir_keeps_a_running_jobs_record(tmp_path):
    state_dir = tmp_path / "state"
    with SandboxProcess("--job-seconds", "4", state_dir=state_dir) as first:
        token = await login(first)
        async with HEAppEClient(first.heappe_url(), token, retry=FAST_RETRY) as heappe:
            kit = Kit(first, None, heappe, None)  # type: ignore[arg-type]
            job = await kit.create(name="survivor")
            await heappe.submit_job(job.id)
            while (await heappe.job_info(job.id)).state is not JobState.Running:
                await asyncio.sleep(0.05)
    with SandboxProcess("--job-seconds", "4", state_dir=state_dir) as second:
        # The token, the session and the job all survived: the same client state works.
        async with HEAppEClient(second.heappe_url(), token, retry=FAST_RETRY) as heappe:
            info = await heappe.job_info(job.id)
            assert info.state in (JobState.Running, JobState.Finished)
            final = await Kit(second, None, heappe, None).wait_job(job.id)  # type: ignore[arg-type]
        assert final.state is JobState.Finished, final.tasks[0].error_message
        assert [j["name"] for j in second.jobs()] == ["survivor"]


# -- the command -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sandbox_command_serves_in_the_foreground_and_stops_on_ctrl_c():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lexis_prefect.cli", "sandbox", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert first_line.strip() == f"LEXIS sandbox listening on http://127.0.0.1:{port} (Ctrl-C stops it)"
        answer = httpx.post(
            f"http://127.0.0.1:{port}/auth/realms/LEXIS_AAI/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "lexis-prefect", "username": "demo", "password": "demo"},
        )
        assert answer.status_code == 200 and answer.json()["token_type"] == "Bearer"
        discovery = httpx.get(f"http://127.0.0.1:{port}/auth/realms/LEXIS_AAI/.well-known/openid-configuration")
        assert discovery.json()["token_endpoint"].endswith("/protocol/openid-connect/token")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert output.strip().endswith("LEXIS sandbox stopped") and "Traceback" not in output
