"""fail_stop with a teardown: the failure skips the work not started yet but not the teardown, which runs."""

import pendulum

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator


def fail():
    raise ValueError("this task fails on purpose")


with DAG(
    dag_id="setup_teardown_fail_stop",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    fail_stop=True,
) as dag:
    create = EmptyOperator(task_id="create").as_setup()
    broken = PythonOperator(task_id="broken", python_callable=fail)
    later = EmptyOperator(task_id="later")
    delete = EmptyOperator(task_id="delete").as_teardown(setups=create)
    create >> broken >> later >> delete

if __name__ == "__main__":
    dag.test()
