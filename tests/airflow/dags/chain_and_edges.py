"""Edges from chain(), lists, <<, set_upstream/set_downstream; a skipping or failing task shows each edge."""

import pendulum

from airflow import DAG
from airflow.exceptions import AirflowSkipException
from airflow.models.baseoperator import chain
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator


def skip():
    raise AirflowSkipException("skips on purpose")


def fail():
    raise RuntimeError("fails on purpose")


def empty(task_id):
    return EmptyOperator(task_id=task_id)


with DAG(
    dag_id="chain_and_edges",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    # two lists of equal length next to each other are linked pairwise: b1 >> c1, b2 >> c2 (not b1 >> c2)
    b1 = PythonOperator(task_id="b1", python_callable=skip)
    chain(empty("a"), [b1, empty("b2")], [empty("c1"), empty("c2")], empty("d"))

    # a list on the left of >>
    [empty("e1"), PythonOperator(task_id="e2", python_callable=fail)] >> empty("f")

    # << and the set_* methods
    empty("g") << PythonOperator(task_id="h", python_callable=skip)
    empty("i").set_upstream(PythonOperator(task_id="j", python_callable=fail))
    PythonOperator(task_id="k", python_callable=skip).set_downstream([empty("l1"), empty("l2")])

    # a >> b >> c returns its right operand, so the chain continues from it
    m = PythonOperator(task_id="m", python_callable=skip)
    last = m >> empty("n") >> empty("o")
    last >> empty("p")

if __name__ == "__main__":
    dag.test()
