"""Setup and teardown with classic operators: .as_setup(), .as_teardown(setups=..., on_failure_fail_dagrun=...).

``s1 >> w1 >> w2``: ``w2`` depends on the setup ``s1`` only through ``w1`` (an indirect setup), and its
trigger rule is all_done, so it shows the setup constraint: a failed or skipped setup marks it even though
all_done would run it. ``t1`` tears down two setups (it runs if at least one of them succeeded); ``t2`` is
``on_failure_fail_dagrun``; ``after_t3`` follows a teardown, so that teardown is not a leaf.
"""

import pendulum

from airflow import DAG
from airflow.exceptions import AirflowSkipException
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator

CASES = [
    None,
    {"fail": "s1"},
    {"skip": "s1"},
    {"fail": "s2"},
    {"fail": "s1,s2"},
    {"fail": "w1"},
    {"fail": "t1"},
    {"fail": "t2"},
    {"fail": "t3"},
    {"skip": "w1"},
]


def act(params, task):
    """Fail or skip if the run's conf names this task."""
    name = task.task_id
    if name in params["fail"].split(","):
        raise ValueError(f"{name} fails on purpose")
    if name in params["skip"].split(","):
        raise AirflowSkipException(f"{name} skips on purpose")


def op(task_id, **kwargs):
    return PythonOperator(task_id=task_id, python_callable=act, **kwargs)


with DAG(
    dag_id="setup_teardown_operators",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"fail": "", "skip": ""},
) as dag:
    s1 = op("s1").as_setup()
    s2 = op("s2")
    w1 = op("w1")
    w2 = op("w2", trigger_rule="all_done")
    s1 >> w1 >> w2
    s2 >> w1
    t1 = op("t1").as_teardown(setups=[s1, s2])
    w2 >> t1
    t2 = op("t2").as_teardown(setups=s2, on_failure_fail_dagrun=True)
    w1 >> t2
    s3 = EmptyOperator(task_id="s3").as_setup()
    t3 = op("t3")
    w1 >> t3.as_teardown(setups=s3) >> EmptyOperator(task_id="after_t3")

if __name__ == "__main__":
    dag.test()
