"""A custom timetable defined in the DAG file: a manual run covers the working day before it."""

import datetime

import pendulum
from airflow import DAG
from airflow.decorators import task
from airflow.timetables.base import DagRunInfo, DataInterval, Timetable


class PreviousWorkday(Timetable):
    """Runs every working day at 06:00 UTC on the previous working day's data."""

    def infer_manual_data_interval(self, *, run_after):
        end = run_after.replace(hour=6, minute=0, second=0, microsecond=0)
        if end > run_after:
            end -= datetime.timedelta(days=1)
        start = end - datetime.timedelta(days=3 if end.weekday() == 0 else 1)
        return DataInterval(start=start, end=end)

    def next_dagrun_info(self, *, last_automated_data_interval, restriction):
        start = last_automated_data_interval.end if last_automated_data_interval else restriction.earliest
        end = start + datetime.timedelta(days=3 if start.weekday() == 4 else 1)
        return DagRunInfo.interval(start=start, end=end)


with DAG("schedule_custom_timetable", schedule=PreviousWorkday(), start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:

    @task
    def dates(*, data_interval_start, data_interval_end, ds, run_id, dag):
        return [data_interval_start.isoformat(), data_interval_end.isoformat(), ds, run_id, dag.timetable.summary]

    dates()

TEST_KWARGS = {"execution_date": pendulum.parse("2024-03-04T09:00:00+00:00")}
RECORD_XCOMS = ["dates"]
