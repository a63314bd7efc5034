"""Outlets and their events: extras set through outlet_events and yielded Metadata, an alias, inlet_events."""

from datetime import datetime, timezone

from airflow import DAG
from airflow.datasets import Dataset, DatasetAlias
from airflow.datasets.metadata import Metadata
from airflow.decorators import task
from airflow.exceptions import AirflowSkipException

RAW = Dataset("s3://lake/raw/")
CLEAN = Dataset("s3://lake/clean")
ALIAS = DatasetAlias("daily-output")

with DAG("datasets_outlets", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)) as dag:

    @task(outlets=[RAW])
    def produce(*, outlet_events):
        outlet_events[RAW].extra = {"rows": 10}
        return "produced"

    @task(outlets=[CLEAN])
    def clean():
        yield Metadata(CLEAN, {"rows": 7})
        return "cleaned"

    @task(outlets=[ALIAS])
    def through_alias(*, outlet_events):
        outlet_events[ALIAS].add(Dataset("s3://lake/daily/2024-01-01"), extra={"day": 1})
        outlet_events[ALIAS].add(Dataset("s3://lake/daily/2024-01-01"), extra={"day": 1})

    @task(outlets=[Dataset("s3://lake/skipped")])
    def skipped():
        raise AirflowSkipException("nothing to do")

    @task(inlets=[RAW, CLEAN, Dataset("s3://lake/skipped"), ALIAS, Dataset("s3://lake/daily/2024-01-01")], trigger_rule="none_failed")
    def consume(*, inlet_events, inlets, run_id, triggering_dataset_events):
        seen = {
            str(i): [e.extra for e in inlet_events[i] if e.source_run_id == run_id] for i in range(len(inlets))
        }
        return {"events": seen, "inlets": [getattr(d, "uri", None) or d.name for d in inlets], "triggering": len(triggering_dataset_events)}

    [produce(), clean(), through_alias(), skipped()] >> consume()

RECORD_XCOMS = ["produce", "clean", "consume"]
SYNC_TO_DB = True
