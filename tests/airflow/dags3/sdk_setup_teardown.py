"""Airflow 3 setup/teardown through ``airflow.sdk`` (``setup``, ``teardown``): the teardown runs
after its work fails, and the run's state ignores the leaf teardown."""

import pendulum

from airflow.sdk import dag, setup, task, teardown


@setup
def create():
    return "resource"


@task
def work(resource):
    raise RuntimeError(f"the work on {resource} fails")


@teardown
def delete(resource):
    return f"deleted {resource}"


@task
def report():
    return "never runs: its upstream failed"


@dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
def sdk_setup_teardown():
    resource = create()
    done = work(resource)
    done >> delete(resource)
    done >> report()


dag = sdk_setup_teardown()
