"""Zero-length and unmappable expansions: an empty literal or upstream list skips the mapped task,
an upstream that returns None or a string fails, and a mapped task after a failed input is upstream_failed."""

import pendulum

from airflow.decorators import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, dag_id="mapping_zero")
def mapping_zero():
    @task
    def empty():
        return []

    @task
    def nothing():
        return None

    @task
    def text():
        return "abc"

    @task
    def boom():
        raise RuntimeError("the input cannot be made")

    @task
    def echo(x):
        return x

    @task
    def after(values):
        return len(values)

    @task(trigger_rule="all_done")
    def after_all_done(values):
        return 0 if values is None else len(values)

    after(echo.override(task_id="over_empty_literal").expand(x=[]))
    over_empty = echo.override(task_id="over_empty_upstream").expand(x=empty())
    after.override(task_id="after_empty")(over_empty)
    after_all_done.override(task_id="after_empty_all_done")(over_empty)
    echo.override(task_id="over_none").expand(x=nothing())
    echo.override(task_id="over_text").expand(x=text())
    over_failed = echo.override(task_id="over_failed_all_done", trigger_rule="all_done").expand(x=boom())
    after_all_done.override(task_id="after_failed_all_done")(over_failed)


dag = mapping_zero()
