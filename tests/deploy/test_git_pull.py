"""`deployments/prefect-git.yaml`: deployments whose runs clone the code from git (multi-host).

A bare repository under tmp_path stands for the project's git server: the test pushes to it a
clone of this repository's HEAD plus one commit of its own, a marker module that only that
remote has, imported and printed by the native flow. It deploys the git project file (`--all`,
as the README says) on a stack of its own (server, pool, a `process` worker whose folder is not
the checkout, the LEXIS sandbox), runs `native`, and checks that the run completed and that the flow file and the
`lexis_prefect` package the run imported are the clone's: without the pull step the entrypoint
is not in the run's folder, and with the installed package winning the marker import fails.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import PrefectClient

from lexis_prefect.models.heappe import JobState
from lexis_prefect.sandbox import SandboxProcess
from tests.deploy.conftest import REPO, Stack, _clean_environment, dumps, load_stack_script, run_id_of
from tests.deploy.test_deployments import final, job_named, log_lines, sandbox_job, wait_for

GIT_FILE = REPO / "deployments" / "prefect-git.yaml"
BRANCH = "multi-host"
MARKER = f"git-pull-{secrets.token_hex(6)}"
MARKER_LINE = re.compile(rf"{MARKER} package=(?P<package>\S+) flow=(?P<flow>\S+) cwd=(?P<cwd>\S+)")


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A bare repository holding HEAD of this checkout plus the marker commit, as a file:// URL."""
    where = tmp_path_factory.mktemp("git-remote")
    work, bare = where / "work", where / "remote.git"
    git("clone", "--quiet", "--no-hardlinks", str(REPO), str(work))
    (work / "lexis_prefect" / "_git_pull_marker.py").write_text(
        '"""Only in the remote of tests/deploy/test_git_pull.py."""\n\n' f"MARKER = {MARKER!r}\n"
    )
    with (work / "flows" / "lexis_hpc_simple.py").open("a") as flow:
        flow.write(
            "\n\n# tests/deploy/test_git_pull.py: where this run's code came from\n"
            "import os as _os\n\n"
            "import lexis_prefect as _package\n"
            "from lexis_prefect._git_pull_marker import MARKER as _MARKER\n\n"
            'print(f"{_MARKER} package={_os.path.abspath(_package.__file__)} '
            'flow={_os.path.abspath(__file__)} cwd={_os.getcwd()}", flush=True)\n'
        )
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "git pull test marker", cwd=work)
    git("init", "--quiet", "--bare", str(bare))
    git("push", "--quiet", str(bare), f"HEAD:refs/heads/{BRANCH}", cwd=work)
    return bare.as_uri()


@pytest.fixture(scope="module")
def git_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """conftest's stack (server, `lexis-hpc` pool, worker, sandbox, the two Blocks), without its
    `deploy --all` (and `block register`: saving a block registers its type).

    A stack of its own: the git deployments have the names of prefect.yaml's, which the session's
    stack deploys. The worker runs in the stack's worker-home folder, away from this checkout.
    LEXIS_SUSPEND=false: the run waits for its HEAppE job itself instead of suspending for a
    `lexis-prefect watch` process (ignored by code without suspension).
    """
    script = load_stack_script()
    where = tmp_path_factory.mktemp("git-stack")
    env = _clean_environment(where / "client-home")
    with SandboxProcess("--job-seconds", "2") as sandbox:
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        info = script.up(where, env=env, worker=False)
        try:
            env = {**env, "PREFECT_API_URL": info["api_url"]}
            info = script.start_worker(where, worker_env={"LEXIS_SUSPEND": "false"}, env=env)
            stack = Stack(info["api_url"], info["ui_url"], sandbox, env, where, info)
            stack.cli("lexis-prefect", "blocks", "save-credentials", "lexis", "--sandbox", sandbox.url)
            stack.cli("lexis-prefect", "blocks", "save-token", "--login", "--credentials", "lexis")
            yield stack
        finally:
            survivors = script.down(where, purge=True)
            assert not survivors, f"still running after down: {survivors}"


def deployments_of(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())["deployments"]


def test_the_git_file_keeps_the_deployments_of_prefect_yaml():
    """Same names, entrypoints, parameters, pool and env; only the local `working_dir` goes."""
    local = deployments_of(REPO / "prefect.yaml")
    for deployment in local:
        job_variables = dict(deployment["work_pool"]["job_variables"])  # the anchor's one dict, shared
        assert job_variables.pop("working_dir") == "{{ $PWD }}"
        deployment["work_pool"] = {**deployment["work_pool"], "job_variables": job_variables}
    assert deployments_of(GIT_FILE) == local
    pull = yaml.safe_load(GIT_FILE.read_text())["pull"]
    assert pull == [{"prefect.deployments.steps.git_clone": {
        "repository": "{{ $LEXIS_PREFECT_REPOSITORY }}", "branch": "{{ $LEXIS_PREFECT_BRANCH }}",
        "clone_directory_name": "lexis-prefect"}}]


def test_a_git_deployment_runs_the_code_cloned_from_the_remote(git_stack: Stack, remote: str):
    started = time.monotonic()
    deployer = dataclasses.replace(
        git_stack, env={**git_stack.env, "LEXIS_PREFECT_REPOSITORY": remote, "LEXIS_PREFECT_BRANCH": BRANCH}
    )
    # the README's command
    deployer.cli("prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(GIT_FILE))
    deployed_s = time.monotonic() - started

    async def read(client: PrefectClient) -> list[Any]:
        return await client.read_deployments()

    deployments = git_stack.api(read)
    assert sorted(d.name for d in deployments) == sorted(d["name"] for d in deployments_of(GIT_FILE))
    for deployment in deployments:
        # resolved when deploying: the worker, which has neither variable, clones what the deployer named
        assert deployment.pull_steps == [{"prefect.deployments.steps.git_clone": {
            "repository": remote, "branch": BRANCH, "clone_directory_name": "lexis-prefect"}}]
        assert deployment.job_variables == {"env": {"LEXIS_CREDENTIALS_BLOCK": "lexis"}}
        assert deployment.work_pool_name == "lexis-hpc"

    output = git_stack.cli("prefect", "deployment", "run", "lexis_hpc_simple/native",
                           "--param", f"job1={dumps(job_named('git pull native'))}").stdout
    run_id = run_id_of(output)
    ended = wait_for(lambda: final(git_stack, run_id), 80, "the git deployment's run to end", git_stack)
    assert ended.state.type.value == "COMPLETED", f"{ended.state}\n{git_stack.logs()}"
    job = sandbox_job(git_stack, "git pull native")
    assert job is not None and job["state"] == JobState.Finished, job

    lines = "\n".join(log_lines(git_stack, run_id))
    assert "Executing deployment step: git_clone" in lines, lines
    assert "TestTemplate finished" in lines

    worker_log = Path(git_stack.info["logs"]["worker"]).read_text(errors="replace")
    found = MARKER_LINE.search(worker_log)
    assert found, f"the flow did not print the marker of the remote's commit:\n{git_stack.logs()}"
    cwd = Path(found["cwd"])
    assert cwd.name == "lexis-prefect"  # the clone_directory_name, in the run's temporary folder
    assert Path(found["flow"]) == cwd / "flows" / "lexis_hpc_simple.py"
    assert Path(found["package"]) == cwd / "lexis_prefect" / "__init__.py"  # not the installed one
    for elsewhere in (REPO, git_stack.dir):
        assert not cwd.is_relative_to(elsewhere), (cwd, elsewhere)
    print(f"git deployments: deployed in {deployed_s:.1f} s, deployed and run in {time.monotonic() - started:.1f} s; "
          f"the run's code was in {cwd}")
