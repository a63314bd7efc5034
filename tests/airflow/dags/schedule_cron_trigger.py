"""CronTriggerTimetable with an interval: the data interval ends at the run."""

import datetime
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.timetables.trigger import CronTriggerTimetable

with DAG("schedule_cron_trigger", schedule=CronTriggerTimetable("0 */4 * * *", timezone="Europe/Prague", interval=datetime.timedelta(hours=4)), start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:
    BashOperator(task_id="dates", bash_command="echo {{ ds }} {{ ts }} {{ run_id }} {{ data_interval_start }} {{ data_interval_end }} {{ prev_ds }} {{ next_ds }}")

TEST_KWARGS, RECORD_XCOMS = {"execution_date": pendulum.parse("2024-03-05T13:20:00+00:00")}, ["dates"]
