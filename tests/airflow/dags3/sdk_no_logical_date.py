"""An Airflow 3 run without a logical date (``dag.test(logical_date=None)``, as a trigger without one):
no ``logical_date``/``ds``/``ts``/data interval in the context, so templates using them fail, and the
run id ends with Airflow's 8 random letters."""

import re

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

#: keyword arguments of every case's dag.test() (record_expected.py and the conformance test)
TEST_KWARGS = {"logical_date": None}


def check(**context):
    absent = [k for k in ("logical_date", "ds", "ts", "data_interval_start", "data_interval_end") if k in context]
    if absent or context["dag_run"].logical_date is not None:
        raise AssertionError(f"present without a logical date: {absent}")
    if not re.fullmatch(r"manual__.+_[A-Za-z0-9]{8}", context["run_id"]):
        raise AssertionError(context["run_id"])
    if context["task_instance_key_str"] != f"sdk_no_logical_date__check__{context['run_id']}":
        raise AssertionError(context["task_instance_key_str"])


with DAG("sdk_no_logical_date", start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:
    PythonOperator(task_id="check", python_callable=check)
    BashOperator(task_id="template_ds", bash_command="echo {{ ds }}")
    BashOperator(task_id="template_run_id", bash_command="echo {{ run_id }}")

if __name__ == "__main__":
    dag.test(logical_date=None)
