"""The `lexis-prefect` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from typer.testing import CliRunner

from lexis_prefect.cli import app
from lexis_prefect.models.job import SEED_JOB, SingleHPCJob

runner = CliRunner()


def test_schema_prints_the_models_json_schema():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == SingleHPCJob.model_json_schema()


def test_schema_command_works_as_an_installed_console_script():
    result = subprocess.run(
        [sys.executable, "-m", "lexis_prefect.cli", "schema", "--indent", "0"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert json.loads(result.stdout)["title"] == "SingleHPCJob"
    assert len(result.stdout.strip().splitlines()) == 1


def test_validate_accepts_the_seed_job(tmp_path):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(SEED_JOB))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0
    assert "ok: job 'My HPC Job', 1 task(s), 1 input(s), 1 output(s)" in result.stdout


def test_validate_names_bad_fields_and_exits_1():
    bad = json.loads(json.dumps(SEED_JOB))
    bad["requirements"]["tasks"][0]["max_cores"] = 0
    result = runner.invoke(app, ["validate", "-"], input=json.dumps(bad))
    assert result.exit_code == 1
    assert "requirements.tasks[0].max_cores: Input should be greater than 0" in result.stderr


def test_validate_reports_a_missing_file(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "nope.json" in result.stderr


def test_check_runs_a_real_prefect_flow(prefect_harness, monkeypatch):
    monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
    monkeypatch.delenv("LEXIS_AAI_URL", raising=False)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "Prefect flow run completed: job 'My HPC Job' for project 'myproject'" in result.stdout
    assert "on the sandbox, cluster Karolina (id 1), node type qcpu_exp (id 101), project myproject" in result.stdout
    assert "LEXIS: not configured" in result.stdout


def test_prefect_yaml_is_a_valid_project_file():
    project = yaml.safe_load((Path(__file__).parents[1] / "prefect.yaml").read_text())
    assert project["name"] == "lexis-prefect"
    assert isinstance(project["deployments"], list)
