"""`lexis-prefect doctor`, end to end through the CLI against one LEXIS sandbox subprocess."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from lexis_prefect.cli import app
from lexis_prefect.models.heappe import JobState
from lexis_prefect.models.job import SEED_JOB
from lexis_prefect.sandbox import SandboxProcess

runner = CliRunner()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    from prefect.logging.configuration import setup_logging

    setup_logging()  # on the real stderr, before a CliRunner's (see the prefect_harness fixture)
    with SandboxProcess("--job-seconds", "1") as sb:
        sb.settings(queue_seconds=0.1, staging_seconds=0.1)
        yield sb


@pytest.fixture
def lexis(sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> SandboxProcess:
    """LEXIS_* pointing at the sandbox, as a user would set them, with a fresh user access token."""
    monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
    for name, value in sandbox.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LEXIS_ACCESS_TOKEN", sandbox.demo_token().get_secret_value())
    return sandbox


def doctor(*args: str, job: dict | None = None, tmp_path=None):
    """Run the CLI; a `job` is written to a file and passed with --job."""
    if job is not None:
        path = tmp_path / "job.json"
        path.write_text(json.dumps(job))
        args = ("--job", str(path), *args)
    return runner.invoke(app, ["doctor", *args])


def rows_of(result) -> dict[str, dict]:
    return {row["check"]: row for row in json.loads(result.stdout)}


def changed(edit) -> dict:
    job = copy.deepcopy(SEED_JOB)
    edit(job)
    return job


def test_passes_on_the_sandbox(lexis):
    result = doctor()
    assert result.exit_code == 0, result.output
    for check in ("job", "OIDC discovery", "token exchange", "HEAppE login at Karolina", "names at Karolina",
                  "DDI staging API", "DDI dataset API", "input 0"):
        assert f"\n{check} " in "\n" + result.stdout
    assert " failed " not in result.stdout and " skipped " not in result.stdout


def test_json_lists_every_check_ok_and_holds_no_token(lexis):
    token = lexis.demo_token().get_secret_value()
    result = doctor("--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["check"] for r in rows][:4] == ["job", "configuration", "OIDC discovery", "token exchange"]
    assert all(r["result"] == "ok" for r in rows) and all(set(r) == {"check", "result", "detail", "fix"} for r in rows)
    output = result.stdout + result.stderr
    assert token not in output and "eyJ" not in output  # no token, nor any other JWT


def wrong_project(job: dict) -> None:
    """HEAppE knows a LEXIS project by its resource (else by its short name): both wrong, no project matches."""
    job["requirements"]["project_shortname"] = "notmyproject"
    job["requirements"]["locations"][0]["location_resource"] = "not-a-resource"


@pytest.mark.parametrize(
    ("edit", "failing"),
    [
        pytest.param(lambda j: j["requirements"]["tasks"][0].update(max_cores=0),
                     {"job": "requirements.tasks[0].max_cores"}, id="invalid-field"),
        pytest.param(lambda j: j["requirements"]["tasks"][0].update(node_type_name="qgpu_nope"),
                     {"names at Karolina": "requirements.tasks[0].node_type_name"}, id="unknown-node-type"),
        # The resolution names the resource (HEAppE's key of a LEXIS project) or, before it, the short name.
        pytest.param(wrong_project, {"names at Karolina": ("requirements.locations[0].location_resource",
                                                           "requirements.project_shortname"),
                                     "input 0": "requirements.project_shortname"}, id="wrong-project"),
        pytest.param(lambda j: j["data_inputs"][0]["source"]["info"].update(dataset_id="no-such-dataset"),
                     {"input 0": "data_inputs[0].source.info.dataset_id"}, id="missing-dataset"),
    ],
)
def test_fails_naming_the_field_to_change(lexis, tmp_path, edit, failing):
    result = doctor("--json", job=changed(edit), tmp_path=tmp_path)
    assert result.exit_code == 1, result.output
    rows = rows_of(result)
    assert {name for name, row in rows.items() if row["result"] == "failed"} == set(failing)
    for check, fields in failing.items():
        row = rows[check]
        assert any(f in row["detail"] and f in row["fix"] for f in (fields if isinstance(fields, tuple) else (fields,))), row


def test_an_invalid_job_skips_what_needs_it_and_still_checks_the_services(lexis, tmp_path):
    result = doctor("--json", job=changed(lambda j: j["requirements"].pop("tasks")), tmp_path=tmp_path)
    assert result.exit_code == 1
    rows = rows_of(result)
    assert rows["job"]["detail"] == "requirements.tasks: Field required"
    assert rows["HEAppE"] == {"check": "HEAppE", "result": "skipped", "detail": "skipped: the job does not validate", "fix": ""}
    assert rows["token exchange"]["result"] == rows["DDI staging API"]["result"] == "ok"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_location_is_a_failed_row_with_the_setting_to_fix(lexis, monkeypatch):
    monkeypatch.setenv("LEXIS_HEAPPE_URLS", json.dumps({"Karolina": f"http://127.0.0.1:{_closed_port()}"}))
    result = doctor()
    assert result.exit_code == 1
    assert "fix: nothing answers at http://127.0.0.1:" in result.stdout
    assert "check heappe_url for location Karolina in LEXIS_HEAPPE_URLS" in result.stdout
    assert "skipped: no HEAppE session at Karolina" in result.stdout
    assert "Traceback" not in result.output


def test_each_location_has_its_own_rows_and_an_unavailable_one_fails(lexis, tmp_path):
    two = changed(lambda j: j["requirements"]["locations"].append(
        {"location_name": "Barbora", "location_resource": "your-resource-name"}))
    lexis.set_available("Barbora", False)
    try:
        result = doctor("--json", job=two, tmp_path=tmp_path)
    finally:
        lexis.set_available("Barbora", True)
    assert result.exit_code == 1
    rows = rows_of(result)
    assert rows["HEAppE login at Karolina"]["result"] == rows["names at Karolina"]["result"] == "ok"
    assert rows["HEAppE login at Barbora"]["result"] == "failed"
    assert "is unavailable (503)" in rows["HEAppE login at Barbora"]["fix"]
    assert rows["names at Barbora"]["result"] == "skipped"


def test_without_configuration_everything_after_it_is_skipped(monkeypatch):
    for name in ("LEXIS_CREDENTIALS_BLOCK", "LEXIS_AAI_URL", "LEXIS_STAGING_URL"):
        monkeypatch.delenv(name, raising=False)
    result = doctor("--json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert rows[1]["check"] == "configuration" and "LEXIS_AAI_URL" in rows[1]["detail"]
    assert {r["result"] for r in rows[2:]} == {"skipped"}


def test_test_job_runs_the_whole_path_and_removes_what_it_made(lexis, prefect_harness):
    before = {job["id"] for job in lexis.jobs()}
    result = doctor("--test-job", "--json")
    assert result.exit_code == 0, result.output
    rows = rows_of(result)
    phases = ["create", "stage-in", "submit and run", "stage-out", "clean-up"]
    assert [rows[f"test job: {p}"]["result"] for p in phases] == ["ok"] * 5
    assert "Finished" in rows["test job: submit and run"]["detail"]
    dataset = rows["test job: stage-out"]["detail"]
    assert f"deleted dataset {dataset}" in rows["test job: clean-up"]["detail"]
    made = [job for job in lexis.jobs() if job["id"] not in before]
    assert [job["state"] for job in made] == [JobState.Deleted]
    with pytest.raises(Exception):  # the output dataset is gone too
        lexis.dataset_files(dataset.rsplit("/", 1)[-1])
