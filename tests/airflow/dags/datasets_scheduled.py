"""A DAG scheduled on datasets (an & / | expression): dag.test runs it once, now, as a manual run."""

import pendulum
from airflow import DAG
from airflow.datasets import Dataset
from airflow.decorators import task

with DAG(
    "datasets_scheduled",
    schedule=(Dataset("s3://lake/raw") & Dataset("s3://lake/clean")) | Dataset("file:///data/ready/"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
) as dag:

    @task
    def consume(*, triggering_dataset_events, data_interval_start, data_interval_end, run_id, dag_run, dag):
        return {
            "triggering": dict(triggering_dataset_events),
            "interval": [data_interval_start.isoformat(), data_interval_end.isoformat()],
            "run_id": run_id,
            "run_type": str(dag_run.run_type),
            "summary": dag.timetable.summary,
            "condition": dag.timetable.dataset_condition.as_expression(),
        }

    consume()

TEST_KWARGS = {"execution_date": pendulum.parse("2024-03-05T12:00:00+00:00")}
RECORD_XCOMS = ["consume"]
