"""Mapped tasks among dag.test()'s turns and setup/teardown: a downstream of a mapped task and of a
slower failing sibling is decided on both (as dag.test does), a mapped group's index follows its
own upstream index, and a teardown runs after mapped work whose index failed."""

import time

import pendulum

from airflow.decorators import dag, setup, task, task_group, teardown
from airflow.exceptions import AirflowSkipException
from airflow.operators.empty import EmptyOperator


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, dag_id="mapping_turns")
def mapping_turns():
    @task
    def quick(x):
        if x == 0:
            raise AirflowSkipException("index 0 skips at once")
        return x

    @task
    def slow_failure():
        time.sleep(1.5)
        raise RuntimeError("fails after the mapped task ended")

    mapped = quick.expand(x=[0, 1])
    failing = slow_failure()
    [mapped, failing] >> EmptyOperator(task_id="all_success_after_both")
    [mapped, failing] >> EmptyOperator(task_id="none_failed_after_both", trigger_rule="none_failed")

    @task
    def step(x):
        if x == 2:
            time.sleep(1)
            raise RuntimeError("index 1 fails late")
        return x

    @task
    def after_step(y):
        return y

    @task_group
    def lane(x):
        after_step(step(x))

    lane.expand(x=[1, 2, 3])

    @setup
    def create():
        return "resource"

    @task
    def use(x):
        if x == "b":
            raise RuntimeError("b fails")
        return x

    @teardown
    def remove():
        return None

    made = create()
    used = use.expand(x=["a", "b"])
    made >> used >> remove().as_teardown(setups=made)


dag = mapping_turns()
