"""Shared fixtures: an isolated Prefect home, and Prefect's test harness for tests that need a server."""

from __future__ import annotations

import os
import tempfile

# Before Prefect is imported anywhere: nothing may touch ~/.prefect, and the
# embedded server's telemetry heartbeat locks SQLite ("database is locked").
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="lexis-prefect-tests-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The harness's SQLite answers 503 when a request's deferred transaction cannot upgrade to a write
# after another write committed (SQLITE_BUSY_SNAPSHOT: no busy wait helps). Prefect's client retries
# 503 five times, 2**n s apart (62 s); a 20-step fan-out on 2 busy cores once saw one subflow's
# task-run insert refused six times in a row. Three more tries (2+ more minutes) only in such storms.
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "8")
# No test may run on a Prefect server that happens to run on this machine (lexis_prefect.local_server);
# subprocesses inherit it. test_local_server.py turns it on where it tests the reuse itself.
os.environ["LEXIS_PREFECT_REUSE_SERVER"] = "false"

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
