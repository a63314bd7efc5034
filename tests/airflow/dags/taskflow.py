"""TaskFlow: @dag (its arguments become params), @task, multiple_outputs, XComArgs, override, @task_group."""

import pendulum

from airflow.decorators import dag as dag_decorator
from airflow.decorators import task, task_group
from airflow.operators.bash import BashOperator

CASES = [None, {"n": 5}]


@task
def numbers(n):
    return list(range(n))


@task(multiple_outputs=True)
def stats(values):
    return {"total": sum(values), "count": len(values)}


@task
def annotated() -> dict:  # a dict return annotation turns multiple_outputs on
    return {"a": 1}


@task
def mean(total, count):
    return total / count


@task
def expect(value, expected):
    if value != expected:
        raise AssertionError(f"got {value!r}, expected {expected!r}")


@task
def double(x):
    return 2 * x


@task_group
def doubled_twice(x):
    return double.override(task_id="second")(double.override(task_id="first")(x))


@task(multiple_outputs=True)
def expectations(n):
    return {"mean": (n - 1) / 2, "count": n, "group": 4 * n, "echo": str(n)}


@task
def read_context(**context):
    return context["params"]["n"]


@dag_decorator(
    dag_id="taskflow",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
)
def taskflow(n: int = 3):
    values = numbers(n)
    summary = stats(values)
    avg = mean(summary["total"], summary["count"])
    want = expectations(n)
    expect.override(task_id="check_annotated")(annotated()["a"], 1)
    expect.override(task_id="check_mean")(avg, want["mean"])
    expect.override(task_id="check_count")(summary["count"], want["count"])
    expect.override(task_id="check_group")(doubled_twice(summary["count"]), want["group"])
    expect.override(task_id="check_context")(read_context(), want["count"])
    echo = BashOperator(task_id="echo", bash_command="echo {{ params.n }}")
    expect.override(task_id="check_operator_output")(echo.output, want["echo"])


dag = taskflow()

if __name__ == "__main__":
    dag.test()
