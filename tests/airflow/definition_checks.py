"""What Airflow 2.10.5 does at DAG definition with datasets, schedules and timetables, recorded.

``checks()`` uses only public Airflow imports; it runs under the real Airflow to write
``recorded/definitions.json``, and under the shim in ``test_scheduling.py``, which wants the same
answers: URI normalisation and refusals, the errors of bad ``schedule`` arguments, the timetable a
schedule becomes (type, summary, ``schedule_interval``), dataset expressions, and data intervals
and next runs computed by each timetable (across a DST change too). Record with::

    <airflow-venv>/bin/python tests/airflow/definition_checks.py
"""

from __future__ import annotations

import datetime
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

RECORDED = Path(__file__).resolve().parent / "recorded" / "definitions.json"

URIS = [
    "s3://Bucket/a/b/",
    "S3://user:pw@host:5432/db?b=2&a=1#frag",
    "file:///data/x/",
    "x-custom://Keep/This/",
    "no-scheme/path",
    "postgres://h/db/schema/table",
    "s3://",
    "ftp://host",
    "gs://bucket/with space/?q=a b",
]
BAD_URIS = ["", "   ", "s3://\u00fc", "airflow://x", "x" * 3001]
RUN_AFTER = [
    "2024-03-05T12:34:56+00:00",
    "2024-03-05T00:00:00+00:00",
    "2024-03-31T00:45:00+00:00",
    "2024-03-31T05:00:00+00:00",
    "2024-10-27T00:30:00+00:00",
    "2024-10-27T01:30:00+00:00",
]


def _error(call: Callable[[], Any]) -> str | None:
    try:
        call()
    except Exception as exc:  # the check is what Airflow raises
        return f"{type(exc).__name__}: {exc}"
    return None


def _iso(value: Any) -> str:
    return value.isoformat()


def _timetables() -> dict[str, Any]:
    import pendulum
    from airflow.timetables.events import EventsTimetable
    from airflow.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable
    from airflow.timetables.trigger import CronTriggerTimetable
    from dateutil.relativedelta import relativedelta

    prague = pendulum.timezone("Europe/Prague")
    return {
        "cron_daily_utc": CronDataIntervalTimetable("@daily", pendulum.timezone("UTC")),
        "cron_prague": CronDataIntervalTimetable("30 2 * * *", prague),
        "cron_hourly_prague": CronDataIntervalTimetable("15 * * * *", prague),
        "cron_weekdays": CronDataIntervalTimetable("0 6 * * 1-5", prague),
        "trigger_prague": CronTriggerTimetable("0 */4 * * *", timezone="Europe/Prague"),
        "trigger_interval": CronTriggerTimetable("0 1 * * *", timezone="UTC", interval=datetime.timedelta(hours=3)),
        "trigger_relative": CronTriggerTimetable("0 0 1 * *", timezone="UTC", interval=relativedelta(months=1)),
        "delta_6h": DeltaDataIntervalTimetable(datetime.timedelta(hours=6)),
        "delta_month": DeltaDataIntervalTimetable(relativedelta(months=1)),
        "events": EventsTimetable(
            [pendulum.datetime(2024, 3, 31, 1, tz="UTC"), pendulum.datetime(2024, 1, 1, tz="UTC")], restrict_to_events=True
        ),
    }


def _intervals() -> dict[str, Any]:
    """Data intervals of manual runs, and the scheduled run after each, per timetable and time."""
    import pendulum
    from airflow.timetables.base import TimeRestriction

    found: dict[str, Any] = {}
    for name, timetable in _timetables().items():
        rows = []
        for text in RUN_AFTER:
            interval = timetable.infer_manual_data_interval(run_after=pendulum.parse(text))
            following = timetable.next_dagrun_info(
                last_automated_data_interval=interval, restriction=TimeRestriction(None, None, True)
            )
            rows.append(
                [_iso(interval.start), _iso(interval.end)]
                + ([_iso(following.run_after), _iso(following.logical_date)] if following else [None, None])
            )
        found[name] = {"summary": timetable.summary, "rows": rows}
    return found


def _schedules() -> dict[str, Any]:
    """The timetable a DAG's scheduling arguments give, or the error."""
    import pendulum
    from airflow import DAG
    from airflow.datasets import Dataset, DatasetAlias
    from airflow.models.param import Param
    from airflow.timetables.datasets import DatasetOrTimeSchedule
    from airflow.timetables.trigger import CronTriggerTimetable

    start = pendulum.datetime(2024, 1, 1, tz="UTC")
    arguments: dict[str, dict[str, Any]] = {
        "cron": {"schedule": "5 4 * * *", "start_date": start},
        "preset": {"schedule": "@weekly", "start_date": start},
        "none": {"schedule": None},
        "once": {"schedule": "@once", "start_date": start},
        "continuous": {"schedule": "@continuous", "start_date": start, "max_active_runs": 1},
        "continuous_parallel": {"schedule": "@continuous", "start_date": start},
        "timedelta": {"schedule": datetime.timedelta(hours=2), "start_date": start},
        "implicit": {"start_date": start},
        "legacy_interval": {"schedule_interval": "@hourly", "start_date": start},
        "legacy_timetable": {"timetable": CronTriggerTimetable("0 1 * * *", timezone="UTC"), "start_date": start},
        "two_arguments": {"schedule": "@daily", "schedule_interval": "@hourly", "start_date": start},
        "no_start_date": {"schedule": "@daily"},
        "datasets": {"schedule": [Dataset("s3://a"), Dataset("s3://b")], "start_date": start},
        "expression": {"schedule": (Dataset("a") | Dataset("b")) & Dataset("c"), "start_date": start},
        "list_with_text": {"schedule": [Dataset("a"), "b"], "start_date": start},
        "bad_type": {"schedule": 3, "start_date": start},
        "alias": {"schedule": DatasetAlias("al"), "start_date": start},
        "dataset_or_time": {
            "schedule": DatasetOrTimeSchedule(timetable=CronTriggerTimetable("0 1 * * *", timezone="UTC"), datasets=[Dataset("x")]),
            "start_date": start,
        },
        "required_param": {"schedule": "@daily", "start_date": start, "params": {"x": Param(type="integer")}},
        "required_param_unscheduled": {"schedule": None, "params": {"x": Param(type="integer")}},
        "zone_from_start": {"schedule": "@daily", "start_date": pendulum.datetime(2024, 1, 1, tz="Asia/Tokyo")},
    }
    found: dict[str, Any] = {}
    for name, kwargs in arguments.items():
        made: dict[str, Any] = {}

        def build(kwargs: dict[str, Any] = kwargs, made: dict[str, Any] = made) -> None:
            made["dag"] = DAG(f"schedule_{name}", **kwargs)

        error = _error(build)
        if error:
            found[name] = {"error": error}
            continue
        dag = made["dag"]
        timetable = dag.timetable
        found[name] = {
            "timetable": type(timetable).__name__,
            "summary": timetable.summary,
            "schedule_interval": str(dag.schedule_interval),
            "timezone": str(dag.timezone),
            "can_be_scheduled": timetable.can_be_scheduled,
            "condition": timetable.dataset_condition.as_expression(),
            "validate": _error(dag.validate),
        }
    for text in ["not a cron", "61 * * * *"]:
        dag = DAG(f"bad_{len(text)}", schedule=text, start_date=start)
        found[f"invalid cron {text!r}"] = {"validate": _error(dag.validate)}
    for delta in [datetime.timedelta(0), datetime.timedelta(hours=-1)]:
        dag = DAG(f"delta_{delta.days}", schedule=delta, start_date=start)
        found[f"delta {delta!r}"] = {"timetable": type(dag.timetable).__name__, "validate": _error(dag.validate)}
    return found


def _datasets() -> dict[str, Any]:
    from airflow.datasets import Dataset, DatasetAlias
    from airflow.datasets.metadata import Metadata

    a, b, c = Dataset("a"), Dataset("b"), Dataset("c")
    expression = (a | b) & c
    metadata = Metadata(Dataset("s3://x/"), {"k": 1}, alias=DatasetAlias("z"))
    return {
        "uris": {uri: Dataset(uri).uri for uri in URIS},
        "bad_uris": {uri[:20]: _error(lambda uri=uri: Dataset(uri)) for uri in BAD_URIS},
        "expression": [repr(expression), expression.as_expression()],
        "flattened": [repr(a | b | c), repr(a & b & c), repr(a & (b & c))],
        "evaluate": [expression.evaluate({"a": True, "c": True}), expression.evaluate({"a": True, "b": True})],
        "equal": [Dataset("s3://x/") == Dataset("s3://x"), DatasetAlias("n") == DatasetAlias("n"), len({a, Dataset("a")})],
        "fspath": __import__("os").fspath(Dataset("file:///p/")),
        "metadata": [metadata.uri, metadata.extra, metadata.alias_name],
    }


def checks() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"datasets": _datasets(), "schedules": _schedules(), "intervals": _intervals()}


def main() -> int:
    import airflow

    if getattr(airflow, "__lexis_prefect_shim__", False):
        print("run me with the real Airflow's interpreter (see tests/airflow/README.md)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from record_expected import _prepare_airflow_home

    with tempfile.TemporaryDirectory(prefix="definitions-airflow-home-") as home:
        _prepare_airflow_home(home)
        RECORDED.parent.mkdir(exist_ok=True)
        RECORDED.write_text(json.dumps(checks(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORDED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
