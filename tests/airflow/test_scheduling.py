"""Datasets, schedules and timetables at definition: the shim answers ``definition_checks.checks()``
exactly as Airflow 2.10.5 did (``recorded/definitions.json``, written by that file under the real
Airflow), item by item; and what a DAG file with them does under the shim's loader and CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.airflow import definition_checks

RECORDED = json.loads(definition_checks.RECORDED.read_text())


@pytest.fixture(scope="module")
def answers() -> dict[str, Any]:
    from lexis_prefect.airflow import _finder

    _finder.install(force=True)
    return json.loads(json.dumps(definition_checks.checks(), sort_keys=True))


def _items() -> list[Any]:
    return [
        pytest.param(part, key, id=f"{part}-{key}") for part, values in sorted(RECORDED.items()) for key in sorted(values)
    ]


@pytest.mark.parametrize(("part", "key"), _items())
def test_definition_as_airflow(part: str, key: str, answers: dict[str, Any]) -> None:
    assert answers[part][key] == RECORDED[part][key]


def test_every_recorded_item_is_answered(answers: dict[str, Any]) -> None:
    assert {p: sorted(v) for p, v in answers.items()} == {p: sorted(v) for p, v in RECORDED.items()}


#: Where a scheduled run's logical date differs from Airflow's on purpose (docs/airflow-compat.md):
#: the cron time 02:30 Europe/Prague falls in the spring-forward gap on 2024-03-31; Airflow's
#: scheduler takes that run's interval start from the previous run's end, a Prefect run knows
#: only when it is due, and gets Airflow's manual-run inference (a zero-width interval).
DST_GAP = {("cron_prague", 2): "2024-03-31T01:30:00+00:00"}
#: Not deployable (Prefect has no calendar interval), so never a scheduled run here.
NOT_DEPLOYABLE = {"delta_month"}


def _recorded_scheduled_runs() -> list[Any]:
    """(timetable, run due at, logical date) of the scheduled runs Airflow's timetables gave."""
    return [
        pytest.param(name, row[2], DST_GAP.get((name, index), row[3]), id=f"{name}-{index}")
        for name, found in sorted(RECORDED["intervals"].items())
        if name not in NOT_DEPLOYABLE
        for index, row in enumerate(found["rows"])
        if row[2] is not None
    ]


@pytest.mark.parametrize(("name", "due", "logical_date"), _recorded_scheduled_runs())
def test_a_run_of_the_deployments_schedule_has_airflows_logical_date(name: str, due: str, logical_date: str, answers: dict[str, Any]) -> None:
    """A flow run Prefect's scheduler made, due when Airflow's timetable has a run due, gets that
    run's logical date and a ``scheduled__`` run id."""
    from types import SimpleNamespace

    import pendulum

    from lexis_prefect.airflow.scheduling.runs import run_dates_of_flow_run

    dag = SimpleNamespace(timetable=definition_checks._timetables()[name])
    flow_run = SimpleNamespace(auto_scheduled=True, expected_start_time=pendulum.parse(due), idempotency_key="scheduled x")
    dates = run_dates_of_flow_run(dag, flow_run)
    assert (dates.run_type, dates.logical_date.isoformat()) == ("scheduled", pendulum.parse(logical_date).in_timezone("UTC").isoformat())
    assert dates.run_id == f"scheduled__{dates.logical_date.isoformat()}"
    assert dates.data_interval.end == pendulum.parse(due) or name.startswith("events")
