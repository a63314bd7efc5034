"""The deprecated schedule_interval argument (a cron string), read as schedule."""

import datetime

import pendulum
from airflow import DAG
from airflow.operators.python import PythonOperator


TEMPLATE = (
    "ds={{ ds }} ts={{ ts }} logical_date={{ logical_date }} run_id={{ run_id }} "
    "start={{ data_interval_start }} end={{ data_interval_end }} prev_ds={{ prev_ds }} next_ds={{ next_ds }} "
    "yesterday={{ yesterday_ds }} key={{ task_instance_key_str }} run_type={{ dag_run.run_type }}"
)


def seen(rendered, data_interval_start, data_interval_end, logical_date, dag):
    return {
        "rendered": rendered,
        "start": data_interval_start.isoformat(),
        "end": data_interval_end.isoformat(),
        "logical_date": logical_date.isoformat(),
        "summary": dag.timetable.summary,
        "timezone": str(dag.timezone),
    }


with DAG("schedule_interval_legacy", schedule_interval="@hourly", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False) as dag:
    PythonOperator(task_id="dates", python_callable=seen, op_kwargs={"rendered": TEMPLATE})

TEST_KWARGS = {"execution_date": pendulum.parse("2024-03-05T12:34:56+00:00")}
RECORD_XCOMS = ["dates"]
