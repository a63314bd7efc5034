"""Retries with retry_delay=0: flaky then success, retries exhausted, AirflowFailException and skips not retried.

Each attempt is counted in a file named after the run id; an all_done checker after each task asserts the count.
"""

import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import pendulum

from airflow import DAG
from airflow.exceptions import AirflowFailException, AirflowSkipException
from airflow.operators.python import PythonOperator

DAG_ID = "retries"


def counter(context, name):
    """The file that counts the attempts of ``name`` in this run."""
    run = re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
    return Path(os.environ.get("CONFORMANCE_TMP", tempfile.gettempdir())) / f"{DAG_ID}-{run}-{name}"


def attempts(context, name):
    path = counter(context, name)
    return int(path.read_text()) if path.exists() else 0


def bump(context, name):
    """Count one more attempt of ``name``; return the new count."""
    count = attempts(context, name) + 1
    counter(context, name).write_text(str(count))
    return count


def flaky(**context):
    if bump(context, "flaky") < 3:
        raise RuntimeError("not yet")


def always_fails(**context):
    bump(context, "exhausted")
    raise RuntimeError("never works")


def fail_fast(**context):
    bump(context, "fail_fast")
    raise AirflowFailException("no point in retrying")


def skip(**context):
    bump(context, "skips")
    raise AirflowSkipException("skip is final")


def flaky_default_args(**context):
    if bump(context, "flaky_default_args") < 2:
        raise RuntimeError("not yet")


def expect(name, count):
    def check(**context):
        seen = attempts(context, name)
        if seen != count:
            raise AssertionError(f"{name} ran {seen} times, expected {count}")

    return check


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(0)},
) as dag:
    for task_id, fn, retries, count in [
        ("flaky", flaky, 3, 3),
        ("exhausted", always_fails, 2, 3),
        ("fail_fast", fail_fast, 3, 1),
        ("skips", skip, 3, 1),
    ]:
        PythonOperator(task_id=task_id, python_callable=fn, retries=retries) >> PythonOperator(
            task_id=f"check_{task_id}", python_callable=expect(task_id, count), trigger_rule="all_done"
        )
    # retries=1 comes from default_args
    PythonOperator(task_id="flaky_default_args", python_callable=flaky_default_args) >> PythonOperator(
        task_id="check_flaky_default_args", python_callable=expect("flaky_default_args", 2), trigger_rule="all_done"
    )

if __name__ == "__main__":
    dag.test()
