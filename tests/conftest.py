"""Shared fixtures: an isolated Prefect home, and Prefect's test harness for tests that need a server."""

from __future__ import annotations

import os
import tempfile

# Before Prefect is imported anywhere: nothing may touch ~/.prefect, and the
# embedded server's telemetry heartbeat locks SQLite ("database is locked").
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="lexis-prefect-tests-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """A throwaway Prefect server and SQLite database for the whole session (started on first use)."""
    from prefect.logging.configuration import setup_logging
    from prefect.testing.utilities import prefect_test_harness

    # Prefect's console log handler keeps the stderr it finds when logging is first set up; a
    # test that first runs a flow inside typer's CliRunner would leave it a closed stream for
    # every later test. Set it up here, on the real stderr.
    setup_logging()
    with prefect_test_harness(server_startup_timeout=60):
        yield
