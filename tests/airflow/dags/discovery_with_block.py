"""DAGs built in ``with DAG(...)`` blocks that bind no name: found unless ``auto_register=False``.

``discovery_with_block`` comes out of a factory called in a loop-free helper (the way DAG
factories are written); ``discovery_hidden`` opts out of auto-registration, so neither Airflow's
DagBag nor the shim finds it.
"""

import pendulum

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")


def fail():
    raise RuntimeError("the hidden DAG must not be found, so never run")


def build(dag_id):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        EmptyOperator(task_id="start") >> PythonOperator(task_id="work", python_callable=lambda: 42)


build("discovery_with_block")

with DAG("discovery_hidden", schedule=None, start_date=START, catchup=False, auto_register=False):
    PythonOperator(task_id="fail", python_callable=fail)
