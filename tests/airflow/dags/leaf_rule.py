"""The run's state comes from its leaves only; the param ``fail`` picks which task raises."""

import pendulum

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator

# none: all succeed; middle: a non-leaf fails, the all_done cleanup and the leaves succeed -> success;
# leaf: one leaf fails, the other succeeds -> failed; side: a leaf is upstream_failed -> failed
CASES = [None, {"fail": "middle"}, {"fail": "leaf"}, {"fail": "side"}]


def work(params, task):
    if params["fail"] == task.task_id:
        raise RuntimeError(f"{task.task_id} fails on purpose")


with DAG(
    dag_id="leaf_rule",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"fail": "none"},
) as dag:
    start = EmptyOperator(task_id="start")
    middle = PythonOperator(task_id="middle", python_callable=work)
    cleanup = EmptyOperator(task_id="cleanup", trigger_rule="all_done")
    leaf = PythonOperator(task_id="leaf", python_callable=work)
    other_leaf = EmptyOperator(task_id="other_leaf")
    side = PythonOperator(task_id="side", python_callable=work)
    start >> middle >> cleanup >> [leaf, other_leaf]
    start >> side >> EmptyOperator(task_id="side_leaf")

if __name__ == "__main__":
    dag.test()
