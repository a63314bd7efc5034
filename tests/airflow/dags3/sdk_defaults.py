"""Airflow 3's DAG defaults: ``schedule`` None and ``catchup`` False; ``fail_fast`` (2.10's
``fail_stop``) stops the run at the first failure."""

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, chain, task

with DAG("sdk_defaults", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), fail_fast=True) as dag:

    @task
    def check_defaults(**context):
        dag = context["dag"]
        if dag.schedule is not None or dag.catchup is not False:
            raise AssertionError((dag.schedule, dag.catchup))

    @task
    def boom():
        raise RuntimeError("the first failure stops a fail_fast DAG")

    after = BashOperator(task_id="never_runs", bash_command="echo never")
    chain(check_defaults(), boom(), after)

if __name__ == "__main__":
    dag.test()
