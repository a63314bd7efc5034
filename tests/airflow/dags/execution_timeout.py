"""execution_timeout: a task that runs too long fails with AirflowTaskTimeout, and that failure IS retried."""

import os
import re
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pendulum

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator

DAG_ID = "execution_timeout"


def counter(context, name):
    run = re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
    return Path(os.environ.get("CONFORMANCE_TMP", tempfile.gettempdir())) / f"{DAG_ID}-{run}-{name}"


def attempts(context, name):
    path = counter(context, name)
    return int(path.read_text()) if path.exists() else 0


def slow(**context):
    count = attempts(context, "slow") + 1
    counter(context, "slow").write_text(str(count))
    time.sleep(5)


def fast_enough():
    time.sleep(0.1)


def expect_attempts(**context):
    seen = attempts(context, "slow")
    if seen != 2:
        raise AssertionError(f"slow ran {seen} times, expected 2")


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    limit = timedelta(seconds=0.5)
    slow_task = PythonOperator(
        task_id="slow", python_callable=slow, execution_timeout=limit, retries=1, retry_delay=timedelta(0)
    )
    slow_task >> PythonOperator(task_id="check_slow", python_callable=expect_attempts, trigger_rule="all_done")
    PythonOperator(task_id="fast_enough", python_callable=fast_enough, execution_timeout=limit)
    BashOperator(task_id="slow_bash", bash_command="sleep 5", execution_timeout=limit)

if __name__ == "__main__":
    dag.test()
