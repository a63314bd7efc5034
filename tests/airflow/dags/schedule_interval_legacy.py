"""The deprecated schedule_interval argument (a cron string), read as schedule."""

import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("schedule_interval_legacy", schedule_interval="@hourly", start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:
    BashOperator(task_id="dates", bash_command="echo {{ ds }} {{ ts }} {{ run_id }} {{ data_interval_start }} {{ data_interval_end }} {{ prev_ds }} {{ next_ds }}")

TEST_KWARGS, RECORD_XCOMS = {"execution_date": pendulum.parse("2024-03-05T12:34:56+00:00")}, ["dates"]
