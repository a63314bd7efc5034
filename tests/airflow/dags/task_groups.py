"""TaskGroups: nested ids, prefix_group_id=False, group >> group, group default_args, late members.

``gate`` skips, so a task shows whether it has an edge from it: linked tasks end skipped, unlinked ones run.
"""

import pendulum

from airflow import DAG
from airflow.exceptions import AirflowSkipException
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.utils.task_group import TaskGroup


def skip():
    raise AirflowSkipException("gate closed")


def fail():
    raise ValueError("this task fails on purpose")


with DAG(
    dag_id="task_groups",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    start = EmptyOperator(task_id="start")
    with TaskGroup("outer") as outer:
        with TaskGroup("inner") as inner:
            EmptyOperator(task_id="x") >> EmptyOperator(task_id="y")
        EmptyOperator(task_id="z")
        inner >> EmptyOperator(task_id="after_inner")
    with TaskGroup("flat", prefix_group_id=False) as flat:
        EmptyOperator(task_id="flat_task")
    start >> outer >> flat >> EmptyOperator(task_id="end")

    gate = PythonOperator(task_id="gate", python_callable=skip)
    with TaskGroup("g1") as g1:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    with TaskGroup("g2") as g2:
        EmptyOperator(task_id="c")
        EmptyOperator(task_id="d")
    gate >> g1 >> g2
    # added after the >> above: no edge from gate, none to g2
    with g1:
        EmptyOperator(task_id="late")

    # the group's default_args reach its tasks: both run although their upstream failed
    boom = PythonOperator(task_id="boom", python_callable=fail)
    with TaskGroup("tolerant", default_args={"trigger_rule": "all_done"}) as tolerant:
        EmptyOperator(task_id="p") >> EmptyOperator(task_id="q")
    boom >> tolerant

if __name__ == "__main__":
    dag.test()
