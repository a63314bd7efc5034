"""BranchPythonOperator: the param ``path`` picks the branch; joins with two trigger rules."""

import pendulum

from airflow import DAG
from airflow.models.param import Param
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator

CASES = [None, {"path": "right"}]


def choose(params):
    return params["path"]


with DAG(
    dag_id="branch_python_operator",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"path": Param("left", enum=["left", "right"])},
) as dag:
    branch = BranchPythonOperator(task_id="branch", python_callable=choose)
    left = EmptyOperator(task_id="left")
    right = EmptyOperator(task_id="right")
    left_next = EmptyOperator(task_id="left_next")
    join_min_one = EmptyOperator(task_id="join_min_one", trigger_rule="none_failed_min_one_success")
    join_default = EmptyOperator(task_id="join_default")

    EmptyOperator(task_id="start") >> branch >> [left, right]
    left >> left_next
    [left_next, right] >> join_min_one
    [left_next, right] >> join_default

if __name__ == "__main__":
    dag.test()
