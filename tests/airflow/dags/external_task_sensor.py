"""ExternalTaskSensor against this DAG's own run (same DAG id, same logical date): the run and task
states it sees are those of the run itself. Also a DAG that does not exist (soft_fail timeout, and
check_existence), ExternalTaskMarker and a TriggerDagRunOperator naming an unknown DAG.

Waiting for a task group is tested in test_standard.py: Airflow's dag.test cannot (it looks the
group up in the serialized DAG table, which dag.test does not fill: AttributeError).
"""

import pendulum

from airflow import DAG
from airflow.exceptions import AirflowSkipException
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sensors.external_task import ExternalTaskMarker, ExternalTaskSensor

DAG_ID = "external_task_sensor"
FAST = {"poke_interval": 1, "timeout": 120}


def skip():
    raise AirflowSkipException("skips on purpose")


def fail():
    raise RuntimeError("fails on purpose")


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    done = EmptyOperator(task_id="done")
    skipped = PythonOperator(task_id="skipped", python_callable=skip)
    failed = PythonOperator(task_id="failed", python_callable=fail)

    done >> ExternalTaskSensor(task_id="wait_task", external_dag_id=DAG_ID, external_task_id="done", **FAST)
    [done, skipped] >> ExternalTaskSensor(
        task_id="wait_tasks_skip",
        external_dag_id=DAG_ID,
        external_task_ids=["done", "skipped"],
        skipped_states=["skipped"],
        trigger_rule="all_done",
        **FAST,
    )
    failed >> ExternalTaskSensor(
        task_id="wait_failed",
        external_dag_id=DAG_ID,
        external_task_id="failed",
        failed_states=["failed"],
        trigger_rule="all_done",
        **FAST,
    )
    failed >> ExternalTaskSensor(
        task_id="wait_failed_soft",
        external_dag_id=DAG_ID,
        external_task_id="failed",
        failed_states=["failed", "upstream_failed"],
        soft_fail=True,
        trigger_rule="all_done",
        **FAST,
    )
    ExternalTaskSensor(task_id="wait_run_running", external_dag_id=DAG_ID, allowed_states=["running"], **FAST)
    ExternalTaskSensor(
        task_id="wait_yesterday",
        external_dag_id=DAG_ID,
        execution_delta=pendulum.duration(days=1),
        timeout=1,
        poke_interval=1,
        soft_fail=True,
    )
    ExternalTaskSensor(
        task_id="wait_unknown_dag", external_dag_id="no_such_dag_xyz", timeout=1, poke_interval=1, soft_fail=True
    )
    ExternalTaskSensor(
        task_id="check_unknown_dag", external_dag_id="no_such_dag_xyz", check_existence=True, timeout=5, poke_interval=1
    )
    ExternalTaskMarker(task_id="marker", external_dag_id="other_dag", external_task_id="other_task")
    TriggerDagRunOperator(task_id="trigger_unknown", trigger_dag_id="no_such_dag_xyz")

if __name__ == "__main__":
    dag.test()
