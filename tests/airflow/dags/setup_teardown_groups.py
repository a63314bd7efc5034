"""Teardowns in task groups: a group's leaves look through its teardowns, so ``group >> after`` waits
for the work, not for the teardown; ``@task_group`` holding setup/work/teardown; a group of only
setup and teardown around outer work.
"""

import pendulum

from airflow import DAG
from airflow.decorators import setup, task, task_group, teardown
from airflow.exceptions import AirflowSkipException
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.utils.task_group import TaskGroup

CASES = [None, {"fail": "g1.work"}, {"fail": "g1.down"}, {"fail": "g2.body"}, {"skip": "g2.up"}, {"fail": "outer_work"}]


def act(params, task):
    """Fail or skip if the run's conf names this task."""
    if task.task_id == params["fail"]:
        raise ValueError(f"{task.task_id} fails on purpose")
    if task.task_id == params["skip"]:
        raise AirflowSkipException(f"{task.task_id} skips on purpose")


def op(task_id):
    return PythonOperator(task_id=task_id, python_callable=act)


with DAG(
    dag_id="setup_teardown_groups",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"fail": "", "skip": ""},
) as dag:
    before = EmptyOperator(task_id="before")
    with TaskGroup("g1") as g1:
        up = op("up").as_setup()
        up >> op("work") >> op("down").as_teardown(setups=up)
    before >> g1 >> EmptyOperator(task_id="after_g1")

    @task_group
    def g2():
        @setup
        def up(params=None, task=None):
            act(params, task)

        @task
        def body(params=None, task=None):
            act(params, task)

        @teardown
        def down(params=None, task=None):
            act(params, task)

        made = up()
        made >> body() >> down() << made

    g2() >> EmptyOperator(task_id="after_g2")

    with TaskGroup("resource") as resource:
        create = op("create").as_setup()
        delete = op("delete").as_teardown(setups=create)
    outer_work = op("outer_work")
    create >> outer_work >> delete
    resource >> EmptyOperator(task_id="after_resource")

if __name__ == "__main__":
    dag.test()
