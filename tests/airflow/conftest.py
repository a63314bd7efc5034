"""Fixtures of the Airflow-shim tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_flow_heartbeat() -> Any:
    """Prefect's flow-run heartbeat thread sleeps in 1 s steps and is joined at the end of every
    run (flow_engine._send_heartbeats): ~1 s per dag.test. Crash detection is not needed here."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
