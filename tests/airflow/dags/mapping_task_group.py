"""Mapped task groups: index i of a task reads index i of its upstream in the group, a failure
at one index stops only that index, tasks outside see every index; partial and expand_kwargs."""

import pendulum

from airflow.decorators import dag, task, task_group
from airflow.exceptions import AirflowSkipException

CASES = [{"bad": 2}, {"bad": -1}]


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    dag_id="mapping_task_group",
    params={"bad": 2},
)
def mapping_task_group():
    @task
    def inputs():
        return [1, 2, 3]

    @task
    def first(x, params=None):
        if x == params["bad"]:
            raise RuntimeError(f"{x} is bad")
        if x == 3:
            raise AirflowSkipException("three skips")
        return x * 10

    @task
    def second(y, x):
        assert y == x * 10, (y, x)  # this index's value of first, not the whole list
        return y + 1

    @task(trigger_rule="all_done")
    def third(z, x, offset):
        return (z or 0) + offset + x

    @task_group
    def pipeline(x, offset):
        y = first(x)
        return third(second(y, x), x, offset)

    @task(trigger_rule="all_done")
    def collect(values):
        return sorted(v for v in values)

    collect(pipeline.partial(offset=100).expand(x=inputs()))

    @task
    def label(name, n):
        return f"{name}-{n}"

    @task_group
    def kw_group(name, n):
        return label(name, n)

    @task
    def check_labels(values):
        assert list(values) == ["a-1", "b-2"], list(values)

    check_labels(kw_group.expand_kwargs([{"name": "a", "n": 1}, {"name": "b", "n": 2}]))

    @task
    def empty():
        return []

    @task_group
    def never(x):
        label.override(task_id="never_label")("x", x)

    never.expand(x=empty())


dag = mapping_task_group()
