"""An Airflow 3 DAG bound to no name (``@dag`` from ``airflow.sdk`` called at the bottom): found by
auto-registration, as Airflow 3's DagBag finds it."""

import pendulum

from airflow.sdk import dag, task


@dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
def discovery_sdk():
    @task
    def hello():
        return "hello"

    hello()


discovery_sdk()
