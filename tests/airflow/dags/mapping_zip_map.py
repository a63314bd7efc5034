"""XComArg.map, zip (with and without fillvalue) and concat as mapping inputs; a map function
that raises AirflowSkipException skips that index."""

import pendulum

from airflow.decorators import dag, task
from airflow.exceptions import AirflowSkipException


def to_pair(n):
    if n == 3:
        raise AirflowSkipException("no pair for three")
    return {"a": n, "b": n * n}


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, dag_id="mapping_zip_map")
def mapping_zip_map():
    @task
    def left():
        return [1, 2, 3]

    @task
    def right():
        return ["x", "y"]

    @task
    def show(value):
        return repr(value)

    @task
    def pair(a, b):
        return a + b

    @task
    def check(values, expected):
        assert list(values) == expected, list(values)

    lhs, rhs = left(), right()
    check.override(task_id="check_zip")(show.override(task_id="zipped").expand(value=lhs.zip(rhs)), ["(1, 'x')", "(2, 'y')"])
    check.override(task_id="check_zip_fill")(
        show.override(task_id="zipped_fill").expand(value=lhs.zip(rhs, fillvalue=None)),
        ["(1, 'x')", "(2, 'y')", "(3, None)"],
    )
    check.override(task_id="check_concat")(
        show.override(task_id="concatenated").expand(value=lhs.concat(rhs)), ["1", "2", "3", "'x'", "'y'"]
    )
    check.override(task_id="check_map")(show.override(task_id="mapped").expand(value=lhs.map(lambda n: n * 100)), ["100", "200", "300"])
    pairs = pair.expand_kwargs(lhs.map(to_pair))
    check.override(task_id="check_pairs", trigger_rule="all_done")(pairs, [2, 6])


dag = mapping_zip_map()
