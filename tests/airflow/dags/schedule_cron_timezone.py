"""A cron string in a DAG's timezone (Europe/Prague, from its start_date), the day DST begins."""

import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("schedule_cron_timezone", schedule="30 2 * * *", start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Prague")) as dag:
    BashOperator(task_id="dates", bash_command="echo {{ ds }} {{ ts }} {{ run_id }} {{ data_interval_start }} {{ data_interval_end }} {{ prev_ds }} {{ next_ds }}")

TEST_KWARGS, RECORD_XCOMS = {"execution_date": pendulum.parse("2024-03-31T05:00:00+00:00")}, ["dates"]
