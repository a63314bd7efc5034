"""Datasets and schedules against a real Prefect server: the events a task's outlets emit, the
deployment ``lexis-prefect airflow deploy`` makes (schedule, dataset trigger), and a
dataset-scheduled deployment started by those events."""

from __future__ import annotations

import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_harness")

#: How long to wait for the server to store events / for its triggers to act (a deadline, not a measure).
DEADLINE = 90.0


def _poll(read: Any, done: Any) -> Any:
    end = time.monotonic() + DEADLINE
    while True:
        value = read()
        if done(value) or time.monotonic() > end:
            return value
        time.sleep(0.5)


def _dataset_events(dag_id: str) -> list[Any]:
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

    from lexis_prefect.airflow.scheduling.events import EVENT_NAME

    wanted = EventFilter(event=EventNameFilter(name=[EVENT_NAME]), related=EventRelatedFilter(id=[f"airflow.dag.{dag_id}"]))
    with get_client(sync_client=True) as client:
        return client.read_events(wanted, limit=50).events


def test_a_successful_task_emits_one_event_per_outlet_dataset(tmp_path: Path) -> None:
    from lexis_prefect.airflow import _finder

    _finder.install(force=True)
    from airflow import DAG
    from airflow.datasets import Dataset, DatasetAlias
    from airflow.datasets.metadata import Metadata
    from airflow.decorators import task
    from airflow.exceptions import AirflowSkipException

    tag = uuid.uuid4().hex[:8]
    raw, clean, alias = Dataset(f"s3://lake/{tag}/raw"), Dataset(f"s3://lake/{tag}/clean"), DatasetAlias(f"out-{tag}")
    with DAG(f"events_{tag}", schedule=None) as dag:

        @task(outlets=[raw])
        def produce(*, outlet_events):
            outlet_events[raw].extra = {"rows": 10}

        @task(outlets=clean)
        def yielded():
            yield Metadata(clean, {"rows": 7}, alias=alias)
            return 1

        @task(outlets=[alias])
        def through_alias(*, outlet_events):
            outlet_events[alias].add(Dataset(f"s3://lake/{tag}/day"), extra={"day": 1})

        @task(outlets=[Dataset(f"s3://lake/{tag}/skipped")])
        def skipped():
            raise AirflowSkipException()

        @task(outlets=[Dataset(f"s3://lake/{tag}/failed")])
        def failed():
            raise ValueError("no")

        produce(), yielded(), through_alias(), skipped(), failed()

    result = dag.test()
    assert result.tasks == {"produce": "success", "yielded": "success", "through_alias": "success", "skipped": "skipped", "failed": "failed"}
    events = _poll(lambda: _dataset_events(dag.dag_id), lambda found: len(found) >= 3)
    assert {e.payload["run_id"] for e in events} == {result.run_id}
    seen = {e.resource.id: (e.payload["extra"], e.payload["task_id"], e.payload["source_alias_names"]) for e in events}
    assert seen == {
        f"airflow.dataset.s3://lake/{tag}/raw": ({"rows": 10}, "produce", []),
        f"airflow.dataset.s3://lake/{tag}/clean": ({"rows": 7}, "yielded", []),
        f"airflow.dataset.s3://lake/{tag}/day": ({"day": 1}, "through_alias", [f"out-{tag}"]),
    }
    day = next(e for e in events if e.payload["task_id"] == "through_alias")
    related = {r.id: r.role for r in day.related}
    assert related[f"airflow.dataset-alias.out-{tag}"] == "airflow-dataset-alias"
    assert related[f"airflow.dag.events_{tag}"] == "airflow-dag"
    assert any(r.startswith("prefect.flow-run.") for r in related)


def _deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, *args: str) -> Any:
    from lexis_prefect.cli import app

    (tmp_path / "dag_file.py").write_text(textwrap.dedent(source))
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(app, ["airflow", "deploy", "dag_file.py", "--name", "from-dag", *args])


def _deployment(dag_id: str) -> Any:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(f"{dag_id}/from-dag")


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ('"@daily"', {"cron": "0 0 * * *", "timezone": "Europe/Prague"}),
        ('"*/10 6-18 * * 1-5"', {"cron": "*/10 6-18 * * 1-5", "timezone": "Europe/Prague"}),
        ('CronTriggerTimetable("0 3 * * *", timezone="America/New_York")', {"cron": "0 3 * * *", "timezone": "America/New_York"}),
        ("datetime.timedelta(hours=6)", {"interval": 21600.0, "timezone": "Europe/Prague"}),
        (
            "EventsTimetable([pendulum.datetime(2030, 5, 1, 8, tz='UTC'), pendulum.datetime(2030, 1, 2, tz='Europe/Prague')])",
            {"rrule": "DTSTART:20300101T230000Z\nRDATE:20300101T230000Z,20300501T080000Z"},
        ),
    ],
)
def test_deploy_gives_the_deployment_the_dags_schedule(
    schedule: str, expected: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag_id = f"sched_{uuid.uuid4().hex[:8]}"
    result = _deploy(
        tmp_path,
        monkeypatch,
        f"""
        import datetime
        import pendulum
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator
        from airflow.timetables.events import EventsTimetable
        from airflow.timetables.trigger import CronTriggerTimetable

        with DAG("{dag_id}", schedule={schedule}, start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Prague")) as dag:
            EmptyOperator(task_id="t")
        """,
    )
    assert result.exit_code == 0, result.output
    deployment = _deployment(dag_id)
    assert deployment.entrypoint == "dag_file.py:dag"
    [schedule_row] = deployment.schedules
    got = schedule_row.schedule.model_dump(mode="json")
    assert {k: got[k] for k in expected} == expected


def test_deploy_refuses_a_timetable_prefect_cannot_express(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _deploy(
        tmp_path,
        monkeypatch,
        """
        import pendulum
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator

        with DAG("continuous_dag", schedule="@continuous", max_active_runs=1, start_date=pendulum.datetime(2024, 1, 1)) as dag:
            EmptyOperator(task_id="t")
        """,
    )
    assert result.exit_code == 2
    assert "'@continuous' (ContinuousTimetable) has no Prefect schedule" in result.output
    assert "--no-schedule" in result.output


def _flow_runs(deployment_id: Any) -> list[Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def _emit(uri: str) -> None:
    from prefect.events import emit_event
    from prefect.events.clients import get_events_client  # noqa: F401  (the worker below sends it)
    from prefect.events.worker import EventsWorker

    from lexis_prefect.airflow.scheduling.events import DATASET_RESOURCE, EVENT_NAME

    emit_event(EVENT_NAME, resource={"prefect.resource.id": f"{DATASET_RESOURCE}{uri}"}, payload={"uri": uri, "extra": {}})
    EventsWorker.drain_all()


def test_a_dataset_scheduled_deployment_runs_when_all_its_datasets_are_updated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = uuid.uuid4().hex[:8]
    dag_id = f"consumer_{tag}"
    result = _deploy(
        tmp_path,
        monkeypatch,
        f"""
        import pendulum
        from airflow import DAG
        from airflow.datasets import Dataset
        from airflow.operators.empty import EmptyOperator

        with DAG("{dag_id}", schedule=[Dataset("s3://{tag}/a"), Dataset("s3://{tag}/b")], start_date=pendulum.datetime(2024, 1, 1)) as dag:
            EmptyOperator(task_id="t")
        """,
    )
    assert result.exit_code == 0, result.output
    deployment = _deployment(dag_id)
    assert deployment.schedules == []
    from prefect import get_client

    with get_client(sync_client=True) as client:
        [automation] = client.read_resource_related_automations(f"prefect.deployment.{deployment.id}")
    assert automation.trigger.type == "compound" and automation.trigger.require == "all"

    _emit(f"s3://{tag}/a")
    time.sleep(3)  # let the server evaluate it: one of two datasets must not start a run
    assert _flow_runs(deployment.id) == []
    _emit(f"s3://{tag}/b")
    runs = _poll(lambda: _flow_runs(deployment.id), lambda found: len(found) >= 1)
    assert len(runs) == 1
