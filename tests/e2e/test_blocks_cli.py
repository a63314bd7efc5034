"""`lexis-prefect blocks save-credentials / save-token` against a sandbox, on the Prefect test server."""

from __future__ import annotations

from prefect.blocks.system import Secret
from pydantic import SecretStr
from typer.testing import CliRunner

from lexis_prefect.blocks import LexisCredentials
from lexis_prefect.cli import app
from lexis_prefect.models.aai import is_offline_token


def test_save_credentials_from_a_sandbox_then_an_offline_token_by_login(sandbox, prefect_harness, monkeypatch):
    for name in ("LEXIS_CREDENTIALS_BLOCK", "LEXIS_ACCESS_TOKEN", "LEXIS_AAI_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    saved = runner.invoke(app, ["blocks", "save-credentials", "lexis-cli-test", "--sandbox", sandbox.url])
    assert saved.exit_code == 0, saved.output
    endpoints = LexisCredentials.load("lexis-cli-test").endpoints
    assert endpoints.aai_url == sandbox.aai_url()
    assert endpoints.dataset_url == sandbox.dataset_url

    kept = runner.invoke(app, ["blocks", "save-token", "token-cli-test", "--login", "--credentials", "lexis-cli-test"])
    assert kept.exit_code == 0, kept.output
    token = SecretStr(Secret.load("token-cli-test").get())
    assert is_offline_token(token)
    assert token.get_secret_value() not in kept.output
    assert '"block_document_slug": "secret/token-cli-test"' in kept.output


def test_save_token_exchanges_a_given_access_token_or_keeps_it_as_asked(sandbox, prefect_harness, monkeypatch):
    monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
    for name, value in sandbox.environment().items():
        monkeypatch.setenv(name, value)
    access = sandbox.demo_token().get_secret_value()
    monkeypatch.setenv("LEXIS_ACCESS_TOKEN", access)
    runner = CliRunner()
    assert runner.invoke(app, ["blocks", "save-token", "offline-cli-test"]).exit_code == 0
    assert is_offline_token(SecretStr(Secret.load("offline-cli-test").get()))
    assert runner.invoke(app, ["blocks", "save-token", "access-cli-test", "--access-token"]).exit_code == 0
    assert Secret.load("access-cli-test").get() == access


def test_save_token_without_a_token_source_or_login_fails_naming_what_is_missing(sandbox, prefect_harness, monkeypatch):
    monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
    for name, value in sandbox.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LEXIS_USERNAME", raising=False)
    done = CliRunner().invoke(app, ["blocks", "save-token", "--login"])
    assert done.exit_code == 2 and "LEXIS_USERNAME" in done.output


def test_save_credentials_from_a_sandbox_that_is_not_there_exits_2_naming_it(prefect_harness):
    done = CliRunner().invoke(app, ["blocks", "save-credentials", "x", "--sandbox", "http://127.0.0.1:9"])
    assert done.exit_code == 2 and "127.0.0.1:9" in done.output, done.output


def test_save_token_with_a_token_the_aai_refuses_exits_2_without_printing_it(sandbox, prefect_harness, monkeypatch):
    monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
    for name, value in sandbox.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LEXIS_ACCESS_TOKEN", "not-a-token-the-aai-knows")
    done = CliRunner().invoke(app, ["blocks", "save-token", "refused-cli-test"])
    assert done.exit_code == 2 and "invalid_token" in done.output, done.output
    assert "not-a-token-the-aai-knows" not in done.output
