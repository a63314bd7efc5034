"""An Airflow 3 TaskFlow DAG: ``airflow.sdk`` (``dag``, ``task``, ``task_group``, ``Param``,
``TriggerRule``, ``chain``, ``cross_downstream``) and ``airflow.providers.standard`` operators
(branching, short-circuit, bash, empty), with a bad conf refused by the DAG's Param."""

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, ShortCircuitOperator
from airflow.sdk import Param, TriggerRule, chain, cross_downstream, dag, task, task_group

CASES = [None, {"n": 5}, {"n": -1}]


@task
def numbers(**context):
    return list(range(context["params"]["n"]))


@task(multiple_outputs=True)
def stats(values):
    return {"total": sum(values), "count": len(values)}


@task
def check(total, count, **context):
    n = context["params"]["n"]
    if (total, count) != (sum(range(n)), n):
        raise AssertionError((total, count, n))


@task_group
def doubled(x):
    @task
    def double(v):
        return 2 * v

    return double.override(task_id="second")(double.override(task_id="first")(x))


@dag(
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    params={"n": Param(3, type="integer", minimum=0)},
)
def sdk_taskflow():
    summary = stats(numbers())
    check(summary["total"], summary["count"])
    doubled(summary["count"])
    branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "left")
    left, right = EmptyOperator(task_id="left"), EmptyOperator(task_id="right")
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    chain(branch, [left, right], join)
    gate = ShortCircuitOperator(task_id="gate", python_callable=lambda: False)
    a, b = BashOperator(task_id="a", bash_command="echo a"), BashOperator(task_id="b", bash_command="echo b")
    cross_downstream([gate], [a, b])


dag = sdk_taskflow()
