"""EventsTimetable restricted to its events: a manual run takes the latest past event."""

import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.timetables.events import EventsTimetable

with DAG("schedule_events", schedule=EventsTimetable([pendulum.datetime(2024, 3, 1, 8, tz="UTC"), pendulum.datetime(2024, 3, 10, 8, tz="UTC"), pendulum.datetime(2024, 2, 1, tz="UTC")], restrict_to_events=True), start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:
    BashOperator(task_id="dates", bash_command="echo {{ ds }} {{ ts }} {{ run_id }} {{ data_interval_start }} {{ data_interval_end }} {{ prev_ds }} {{ next_ds }}")

TEST_KWARGS, RECORD_XCOMS = {"execution_date": pendulum.parse("2024-03-05T12:00:00+00:00")}, ["dates"]
