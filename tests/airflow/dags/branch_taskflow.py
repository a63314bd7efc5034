"""@task.branch chosen by the param ``path``, including the "empty branch" join that is also a direct child."""

import pendulum

from airflow import DAG
from airflow.decorators import task
from airflow.operators.empty import EmptyOperator

CASES = [None, {"path": "b"}]


@task.branch
def branch(**context):
    return context["params"]["path"]


with DAG(
    dag_id="branch_taskflow",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"path": "a"},
) as dag:
    chosen = branch()
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    # join is downstream of both the branch and a: choosing "a" must not skip it
    join = EmptyOperator(task_id="join")
    chosen >> [a, b]
    a >> join
    chosen >> join
    b >> EmptyOperator(task_id="after_b")

if __name__ == "__main__":
    dag.test()
