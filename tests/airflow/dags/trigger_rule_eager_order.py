"""Eager trigger rules: all_success decides at the first skip or failure, so the order of upstreams matters.

Each ``*_late`` task starts only after its partner is done (trigger_rule all_done), which fixes the order.
"""

import pendulum

from airflow import DAG
from airflow.exceptions import AirflowSkipException
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator


def fail():
    raise ValueError("this task fails on purpose")


def skip():
    raise AirflowSkipException("this task skips on purpose")


def task(task_id, callable_, **kwargs):
    return PythonOperator(task_id=task_id, python_callable=callable_, **kwargs)


with DAG(
    dag_id="trigger_rule_eager_order",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    # skip first, failure later: all_success is skipped at the skip, before the failure exists
    skip_first = task("skip_first", skip)
    fail_late = task("fail_late", fail, trigger_rule="all_done")
    skip_first >> fail_late
    [skip_first, fail_late] >> EmptyOperator(task_id="all_success_skip_then_fail")

    # failure first, skip later: upstream_failed at the failure
    fail_first = task("fail_first", fail)
    skip_late = task("skip_late", skip, trigger_rule="all_done")
    fail_first >> skip_late
    [fail_first, skip_late] >> EmptyOperator(task_id="all_success_fail_then_skip")

    # the same two orders under none_failed_min_one_success: a lone skip decides nothing yet
    skip_first_2 = task("skip_first_2", skip)
    fail_late_2 = task("fail_late_2", fail, trigger_rule="all_done")
    skip_first_2 >> fail_late_2
    [skip_first_2, fail_late_2] >> EmptyOperator(
        task_id="min_one_success_skip_then_fail", trigger_rule="none_failed_min_one_success"
    )

    # one_success runs at the first success, even if the other upstream fails afterwards
    ok_first = task("ok_first", lambda: None)
    fail_late_3 = task("fail_late_3", fail, trigger_rule="all_done")
    ok_first >> fail_late_3
    [ok_first, fail_late_3] >> EmptyOperator(task_id="one_success_ok_then_fail", trigger_rule="one_success")

if __name__ == "__main__":
    dag.test()
