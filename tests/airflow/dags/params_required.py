"""A Param with no default: a run without it in conf is refused; templates see the conf value."""

import pendulum

from airflow import DAG
from airflow.models.param import Param
from airflow.operators.python import PythonOperator

CASES = [None, {"name": "ada"}, {"name": ""}, {"name": None}]


def greet(name):
    if name != "hello ada":
        raise AssertionError(f"got {name!r}")


with DAG(
    dag_id="params_required",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"name": Param(type="string", minLength=1)},
) as dag:
    PythonOperator(task_id="greet", python_callable=greet, op_kwargs={"name": "hello {{ params.name }}"})

if __name__ == "__main__":
    dag.test()
