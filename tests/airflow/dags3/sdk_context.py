"""Airflow 3's context, run id and logical date under ``dag.test()``: keys removed since 2.10 are gone.

Each check is a task that fails when Airflow 3's rule does not hold; the templates that use a removed
key fail to render (the DAG's StrictUndefined), so those tasks end ``failed`` in real Airflow 3.
"""

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, get_current_context, task

REMOVED = [
    "execution_date", "next_ds", "next_ds_nodash", "next_execution_date", "prev_ds", "prev_ds_nodash",
    "prev_execution_date", "prev_execution_date_success", "tomorrow_ds", "tomorrow_ds_nodash",
    "yesterday_ds", "yesterday_ds_nodash", "conf", "test_mode", "triggering_dataset_events",
]  # fmt: skip
PRESENT = [
    "dag", "dag_run", "ds", "ds_nodash", "logical_date", "params", "run_id", "task", "task_instance",
    "ti", "ts", "ts_nodash", "ts_nodash_with_tz", "data_interval_start", "data_interval_end", "var",
    "conn", "macros", "outlets", "inlets", "outlet_events", "inlet_events", "task_instance_key_str",
    "triggering_asset_events", "task_reschedule_count",
]  # fmt: skip


def check_keys(**context):
    gone = [k for k in REMOVED if k in context]
    missing = [k for k in PRESENT if k not in context]
    if gone or missing:
        raise AssertionError(f"still there: {gone}; missing: {missing}")


def check_run(**context):
    run = context["dag_run"]
    if run.logical_date is None or context["logical_date"] is None:
        raise AssertionError("dag.test() gives a logical date (now) unless told otherwise")
    if not context["run_id"].startswith("manual__"):
        raise AssertionError(context["run_id"])
    if context["ds"] != context["logical_date"].strftime("%Y-%m-%d"):
        raise AssertionError(context["ds"])
    if context["task_instance_key_str"] != f"sdk_context__check_run__{context['ds_nodash']}":
        raise AssertionError(context["task_instance_key_str"])


with DAG("sdk_context", start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:
    keys = PythonOperator(task_id="check_keys", python_callable=check_keys)
    run = PythonOperator(task_id="check_run", python_callable=check_run)
    ds = BashOperator(task_id="template_ds", bash_command='test "{{ ds }}" = "{{ logical_date | ds }}"')
    old = BashOperator(task_id="template_execution_date", bash_command="echo {{ execution_date }}")
    nxt = BashOperator(task_id="template_next_ds", bash_command="echo {{ next_ds }}")

    @task
    def current_context():
        context = get_current_context()
        if "execution_date" in context or "logical_date" not in context:
            raise AssertionError(sorted(context))

    end = EmptyOperator(task_id="end", trigger_rule="all_done")
    [keys, run, ds, old, nxt, current_context()] >> end

if __name__ == "__main__":
    dag.test()
