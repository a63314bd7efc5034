"""Failures and skips of map indexes and how they reach downstream tasks' trigger rules and the
run state (the leaf rule looks at every map index). CASES choose which index fails or skips."""

import pendulum

from airflow.decorators import dag, task
from airflow.exceptions import AirflowSkipException
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import get_current_context

CASES = [
    {"fail": [1], "skip": []},
    {"fail": [], "skip": [0]},
    {"fail": [0, 2], "skip": [1]},
    {"fail": [], "skip": []},
    {"fail": [], "skip": [0, 1, 2]},
]


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    dag_id="mapping_failures",
    params={"fail": [], "skip": []},
)
def mapping_failures():
    @task
    def work(x):
        params = get_current_context()["params"]
        if x in params["fail"]:
            raise RuntimeError(f"index {x} fails")
        if x in params["skip"]:
            raise AirflowSkipException(f"index {x} skips")
        return x

    @task(trigger_rule="all_done")
    def leaf_after(x):
        return x

    mapped = work.expand(x=[0, 1, 2])
    for rule in (
        "all_success",
        "all_failed",
        "all_done",
        "one_success",
        "one_failed",
        "one_done",
        "none_failed",
        "none_failed_min_one_success",
        "none_skipped",
        "all_skipped",
    ):
        mapped >> EmptyOperator(task_id=f"after_{rule}", trigger_rule=rule)
    # a mapped task downstream of a mapped one, over its results, and then a mapped leaf
    again = work.override(task_id="again", trigger_rule="all_done").expand(x=mapped)
    leaf_after.expand(x=again)


dag = mapping_failures()
