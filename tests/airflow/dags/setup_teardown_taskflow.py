"""Setup and teardown with TaskFlow: @setup, @teardown, @teardown(on_failure_fail_dagrun=True).

``conf["fail"]`` / ``conf["skip"]`` name the task that fails or skips, so each case shows what a
failure or a skip of a setup, a work task or a teardown does to the others and to the run state.
"""

import pendulum

from airflow.decorators import dag, setup, task, teardown
from airflow.exceptions import AirflowSkipException

CASES = [
    None,
    {"fail": "work"},
    {"fail": "create_cluster"},
    {"skip": "create_cluster"},
    {"fail": "delete_cluster"},
    {"fail": "delete_bucket"},
    {"fail": "create_bucket"},
    {"skip": "work"},
]


def act(name, params):
    """Fail or skip if the run's conf names this task."""
    if params.get("fail") == name:
        raise ValueError(f"{name} fails on purpose")
    if params.get("skip") == name:
        raise AirflowSkipException(f"{name} skips on purpose")
    return name


@dag(
    dag_id="setup_teardown_taskflow",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"fail": "", "skip": ""},
)
def setup_teardown_taskflow():
    @setup
    def create_cluster(params=None):
        return act("create_cluster", params)

    @setup
    def create_bucket(params=None):
        return act("create_bucket", params)

    @task
    def work(cluster, params=None):
        return act("work", params)

    @task
    def report(params=None):
        return act("report", params)

    @teardown
    def delete_cluster(cluster, params=None):
        return act("delete_cluster", params)

    @teardown(on_failure_fail_dagrun=True)
    def delete_bucket(params=None):
        return act("delete_bucket", params)

    cluster = create_cluster()
    bucket = create_bucket()
    done = work(cluster)
    bucket >> done
    done >> report()
    done >> delete_cluster(cluster)
    done >> delete_bucket().as_teardown(setups=bucket)


dag = setup_teardown_taskflow()

if __name__ == "__main__":
    dag.test()
