"""A DAG no module-level name holds: a ``@dag`` function called at the bottom, its DAG not bound.

Airflow 2.4+ finds it by auto-registration (``DagContext``); so must the shim's loader, the CLI and
a Prefect entrypoint ``discovery_decorator.py:discovery_decorator``.
"""

import pendulum

from airflow.decorators import dag, task


@task
def produce(n):
    return list(range(n))


@task
def check(values, n):
    if values != list(range(n)):
        raise AssertionError(values)


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def discovery_decorator(n: int = 3):
    check(produce(n), n)


discovery_decorator()

if __name__ == "__main__":
    discovery_decorator().test()
