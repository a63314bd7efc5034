"""ShortCircuitOperator and @task.short_circuit, with ignore_downstream_trigger_rules True and False.

The param ``cond`` is what the callables return: truthy lets everything run, falsy short-circuits.
"""

import pendulum

from airflow import DAG
from airflow.decorators import task
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import ShortCircuitOperator

CASES = [None, {"cond": False}, {"cond": ""}, {"cond": "no"}, {"cond": []}, {"cond": 0}]


def condition(params):
    return params["cond"]


@task.short_circuit(ignore_downstream_trigger_rules=False)
def deco_sc(**context):
    return context["params"]["cond"]


with DAG(
    dag_id="short_circuit",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"cond": True},
) as dag:
    # default (True): everything downstream is skipped, whatever its trigger rule
    sc_ignore = ShortCircuitOperator(task_id="sc_ignore", python_callable=condition)
    sc_ignore >> EmptyOperator(task_id="ignore_1") >> EmptyOperator(task_id="ignore_2_all_done", trigger_rule="all_done")

    # False: only direct children are skipped; the rest follow their trigger rules
    sc_respect = ShortCircuitOperator(
        task_id="sc_respect", python_callable=condition, ignore_downstream_trigger_rules=False
    )
    respect_1 = EmptyOperator(task_id="respect_1")
    sc_respect >> respect_1
    respect_1 >> EmptyOperator(task_id="respect_2_all_done", trigger_rule="all_done")
    respect_1 >> EmptyOperator(task_id="respect_2_default")

    deco = deco_sc()
    deco >> EmptyOperator(task_id="deco_1") >> EmptyOperator(task_id="deco_2_none_failed", trigger_rule="none_failed")

if __name__ == "__main__":
    dag.test()
