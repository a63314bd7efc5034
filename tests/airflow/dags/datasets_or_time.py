"""DatasetOrTimeSchedule: a cron trigger or a dataset; a manual run's interval follows the cron part."""

import pendulum
from airflow import DAG
from airflow.datasets import Dataset
from airflow.decorators import task
from airflow.timetables.datasets import DatasetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

with DAG(
    "datasets_or_time",
    schedule=DatasetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 1 * * *", timezone="UTC"), datasets=[Dataset("s3://lake/a"), Dataset("s3://lake/b")]
    ),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
) as dag:

    @task
    def dates(*, data_interval_start, data_interval_end, ds, dag):
        return [data_interval_start.isoformat(), data_interval_end.isoformat(), ds, dag.timetable.summary]

    dates()

TEST_KWARGS = {"execution_date": pendulum.parse("2024-03-05T12:00:00+00:00")}
RECORD_XCOMS = ["dates"]
