"""Dynamic task mapping with TaskFlow: literals, an upstream's list, partial, a cross product,
expand_kwargs, the list a downstream task receives, ti.map_index and expanded_ti_count.

Checker tasks raise when what they received differs from what Airflow gives, so the states say it.
"""

import pendulum

from airflow.decorators import dag, task
from airflow.operators.python import get_current_context


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, dag_id="mapping_basic")
def mapping_basic():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def add(x, y):
        context = get_current_context()
        ti = context["ti"]
        assert context["expanded_ti_count"] in (2, 3, 6), context["expanded_ti_count"]
        return {"x": x, "y": y, "index": ti.map_index}

    @task
    def check_partial(values):
        got = [(v["x"], v["y"], v["index"]) for v in values]
        assert got == [(1, 10, 0), (2, 10, 1), (3, 10, 2)], got
        assert len(values) == 3

    @task
    def check_cross(values):
        got = [(v["x"], v["y"]) for v in values]
        assert got == [(1, "a"), (1, "b"), (2, "a"), (2, "b"), (3, "a"), (3, "b")], got

    @task
    def check_kwargs(values):
        assert [v["x"] + v["y"] for v in values] == [3, 30], list(values)

    @task
    def pull_mapped(ti=None):
        whole = ti.xcom_pull(task_ids="square")
        assert list(whole) == [1, 4, 9], list(whole)
        assert ti.xcom_pull(task_ids="square", map_indexes=1) == 4
        assert ti.xcom_pull(task_ids="square", map_indexes=[2, 0]) == [9, 1]
        return sum(whole)

    @task
    def square(x):
        return x * x

    @task
    def literal_dict(item):
        key, value = item  # mapping over a dict gives (key, value) pairs
        return f"{key}={value}"

    @task
    def check_dict(values):
        assert list(values) == ["a=1", "b=2"], list(values)

    nums = numbers()
    check_partial(add.partial(y=10).expand(x=nums))
    check_cross(add.expand(x=nums, y=["a", "b"]))
    check_kwargs(add.expand_kwargs([{"x": 1, "y": 2}, {"x": 10, "y": 20}]))
    squares = square.expand(x=nums)
    squares >> pull_mapped()
    check_dict(literal_dict.expand(item={"a": 1, "b": 2}))


dag = mapping_basic()
