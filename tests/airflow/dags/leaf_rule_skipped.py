"""Skipped leaves count as success for the run, even when a non-leaf failed before them."""

import pendulum

from airflow import DAG
from airflow.exceptions import AirflowSkipException
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator


def fail():
    raise RuntimeError("fails on purpose")


def skip():
    raise AirflowSkipException("nothing to do")


with DAG(
    dag_id="leaf_rule_skipped",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    broken = PythonOperator(task_id="broken", python_callable=fail)
    gate = PythonOperator(task_id="gate", python_callable=skip, trigger_rule="all_done")
    broken >> gate >> EmptyOperator(task_id="leaf_a")
    gate >> EmptyOperator(task_id="leaf_b", trigger_rule="none_failed_min_one_success")

if __name__ == "__main__":
    dag.test()
