"""`lexis-prefect api`: its options, and what it refuses before serving."""

from __future__ import annotations

from typer.testing import CliRunner

from lexis_prefect.cli import app


def test_api_command_is_listed_with_its_options():
    done = CliRunner().invoke(app, ["api", "--help"])
    assert done.exit_code == 0
    for option in ("--host", "--port", "--credentials", "--token-cache-seconds"):
        assert option in done.output


def test_a_negative_cache_time_is_refused():
    done = CliRunner().invoke(app, ["api", "--token-cache-seconds", "-1"])
    assert done.exit_code == 2
