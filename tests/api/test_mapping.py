"""Prefect -> Airflow states, and task run names -> task ids and map indexes."""

from __future__ import annotations

import pytest
from prefect.client.schemas.objects import StateType
from prefect.states import State

from lexis_prefect.api.states import DAG_RUN_STATES, dag_run_state, task_state
from lexis_prefect.api.task_instances import split_name

AIRFLOW_DAG_STATES = {"queued", "running", "success", "failed"}  # v1.yaml, components/schemas/DagState


def test_every_prefect_state_type_has_an_airflow_dag_run_state():
    assert set(DAG_RUN_STATES) == set(StateType)
    assert set(DAG_RUN_STATES.values()) == AIRFLOW_DAG_STATES
    assert dag_run_state(None) == "queued"


@pytest.mark.parametrize(
    ("kind", "name", "dag_run", "task"),
    [
        (StateType.SCHEDULED, "Scheduled", "queued", "scheduled"),
        (StateType.SCHEDULED, "Late", "queued", "scheduled"),
        (StateType.SCHEDULED, "AwaitingRetry", "queued", "up_for_retry"),
        (StateType.PENDING, "Pending", "queued", "queued"),
        (StateType.RUNNING, "Running", "running", "running"),
        (StateType.PAUSED, "Suspended", "running", "deferred"),
        (StateType.COMPLETED, "Completed", "success", "success"),
        (StateType.COMPLETED, "Skipped", "success", "skipped"),
        (StateType.FAILED, "UpstreamFailed", "failed", "upstream_failed"),
        (StateType.FAILED, "Failed", "failed", "failed"),
        (StateType.CRASHED, "Crashed", "failed", "failed"),
        (StateType.CANCELLING, "Cancelling", "failed", "failed"),
        (StateType.CANCELLED, "Cancelled", "failed", "failed"),
    ],
)
def test_state_tables(kind: StateType, name: str, dag_run: str, task: str):
    state = State(type=kind, name=name)
    assert dag_run_state(state) == dag_run
    assert task_state(state) == task


def test_a_task_run_without_a_state_has_airflows_no_status():
    assert task_state(None) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [("stage_in", ("stage_in", -1)), ("compute[0]", ("compute", 0)), ("compute[12]", ("compute", 12)),
     ("odd[x]", ("odd[x]", -1))],
)
def test_task_run_names_split_into_task_id_and_map_index(name: str, expected: tuple[str, int]):
    assert split_name(name) == expected


def test_a_resumed_run_shows_each_task_once_as_its_newest_task_run():
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    from lexis_prefect.api.task_instances import _latest

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def run(name: str, minutes: int) -> SimpleNamespace:
        return SimpleNamespace(name=name, created=t0 + timedelta(minutes=minutes), start_time=t0 + timedelta(minutes=minutes))

    before, after, other = run("stage_in", 0), run("stage_in", 10), run("compute[0]", 1)
    assert _latest([after, other, before]) == [other, after]


def test_the_prefect_servers_refusal_is_worded_from_its_detail():
    import httpx

    from lexis_prefect.api.dag_runs import _server_detail

    refused = httpx.Response(409, json={"detail": "Error creating flow run: Validation failed for field 'job1'"})
    assert _server_detail(refused) == (
        "The Prefect server refused the run's parameters: Error creating flow run: Validation failed for field 'job1'"
    )
    assert _server_detail(httpx.Response(422, text="not json")).endswith(": 422")
