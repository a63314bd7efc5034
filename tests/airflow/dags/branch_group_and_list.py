"""A branch may return a task-group id (its roots are followed), a list of ids, None, or a bad id."""

import pendulum

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator
from airflow.utils.task_group import TaskGroup

CASES = [
    None,
    {"follow": ["x", "y"]},
    {"follow": ["grp", "y"]},
    {"follow": None},
    {"follow": "no_such_task"},
]


def choose(params):
    return params["follow"]


with DAG(
    dag_id="branch_group_and_list",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"follow": "grp"},
) as dag:
    branch = BranchPythonOperator(task_id="branch", python_callable=choose)
    with TaskGroup("grp") as grp:
        first = EmptyOperator(task_id="first")
        second = EmptyOperator(task_id="second")
        first >> EmptyOperator(task_id="after_first")
    x = EmptyOperator(task_id="x")
    y = EmptyOperator(task_id="y")
    branch >> [grp, x, y]
    [grp, x, y] >> EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")

if __name__ == "__main__":
    dag.test()
