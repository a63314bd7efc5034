"""Eager trigger rules when a failure and a skip reach a task in the same loop turn of ``dag.test()``.

Unlike ``trigger_rule_eager_order.py`` nothing orders the upstreams: every task sleeps a random
moment, so a runner that decides at the first upstream it sees would give different states from run
to run. ``dag.test()`` decides a task once per loop turn, from the tasks that ended before the turn:
a failure and a skip of the same turn give upstream_failed (failures are tested first), and a mark
made in a turn (``upstream_failed``, ``skipped``) is seen by the next task only a turn later.
"""

import random
import time
from datetime import timedelta

import pendulum

from airflow import DAG
from airflow.exceptions import AirflowSkipException
from airflow.operators.python import PythonOperator


RULES = [
    "all_success",
    "all_failed",
    "all_done",
    "all_done_setup_success",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_skipped",
    "always",
    "none_failed_min_one_success",
    "all_skipped",
]


def pause():
    time.sleep(random.uniform(0, 0.2))


def fail():
    pause()
    raise ValueError("this task fails on purpose")


def skip():
    pause()
    raise AirflowSkipException("this task skips on purpose")


def ok():
    pause()


def task(task_id, callable_, **kwargs):
    return PythonOperator(task_id=task_id, python_callable=callable_, **kwargs)


with DAG(
    dag_id="trigger_rule_eager_race",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    # same turn: a failure and a skip (and a success), under every trigger rule
    failing = task("failing", fail)
    skipping = task("skipping", skip)
    succeeding = task("succeeding", ok)
    [failing, skipping] >> task("all_success", ok)
    [failing, skipping] >> task("none_failed_min_one_success", ok, trigger_rule="none_failed_min_one_success")
    for rule in RULES:
        [failing, skipping] >> task(f"{rule}__FK", ok, trigger_rule=rule)
        [failing, skipping, succeeding] >> task(f"{rule}__SFK", ok, trigger_rule=rule)

    # a mark is seen a turn later: turn 1 marks failed_child upstream_failed and sees skip_2 skipped,
    # so deep_skip_wins is skipped; deep_fail_wins sees fail_2 (turn 0) before skipped_child (turn 1)
    fail_1 = task("fail_1", fail)
    failed_child = task("failed_child", ok)
    skip_2 = task("skip_2", skip)
    fail_1 >> failed_child
    [failed_child, skip_2] >> task("deep_skip_wins", ok)
    skip_1 = task("skip_1", skip)
    skipped_child = task("skipped_child", ok)
    fail_2 = task("fail_2", fail)
    skip_1 >> skipped_child
    [skipped_child, fail_2] >> task("deep_fail_wins", ok)

    # a retry takes a turn: the skip (turn 0) is seen before the failure of the second try (turn 1)
    retried = task("retried_fail", fail, retries=1, retry_delay=timedelta(0))
    skip_3 = task("skip_3", skip)
    [retried, skip_3] >> task("skip_before_retried_fail", ok)
    [retried, skip_3] >> task("min_one_success_after_retry", ok, trigger_rule="none_failed_min_one_success")

if __name__ == "__main__":
    dag.test()
