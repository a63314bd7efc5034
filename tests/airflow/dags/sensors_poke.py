"""PythonSensor in poke mode: success after pokes, timeout (no retries), soft_fail, backoff, PokeReturnValue."""

import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import pendulum

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.sensors.base import PokeReturnValue
from airflow.sensors.python import PythonSensor

DAG_ID = "sensors_poke"


def counter(context, name):
    run = re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
    return Path(os.environ.get("CONFORMANCE_TMP", tempfile.gettempdir())) / f"{DAG_ID}-{run}-{name}"


def pokes(context, name):
    path = counter(context, name)
    return int(path.read_text()) if path.exists() else 0


def poke(context, name):
    """Count one more poke of ``name``; return the new count."""
    count = pokes(context, name) + 1
    counter(context, name).write_text(str(count))
    return count


def third_time(name):
    def check(**context):
        return poke(context, name) >= 3

    return check


def never(name):
    def check(**context):
        poke(context, name)
        return False

    return check


def with_value(**context):
    return PokeReturnValue(is_done=poke(context, "with_value") >= 2, xcom_value={"found": "it"})


def broken(name):
    def check(**context):
        poke(context, name)
        raise RuntimeError("poke blew up")

    return check


def expect_pokes(name, low, high):
    def check(**context):
        seen = pokes(context, name)
        if not low <= seen <= high:
            raise AssertionError(f"{name} poked {seen} times, expected {low}..{high}")

    return check


def expect_xcom(ti):
    value = ti.xcom_pull(task_ids="with_value")
    if value != {"found": "it"}:
        raise AssertionError(f"got {value!r}")


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"poke_interval": 0.1, "retry_delay": timedelta(0)},
) as dag:
    fast = dict(poke_interval=0.1, timeout=0.5)
    sensors = [
        # (sensor, low, high): the checker runs all_done and asserts the number of pokes
        (PythonSensor(task_id="third_poke", python_callable=third_time("third_poke"), timeout=10), 3, 3),
        # a timeout is not retried: one try of ~0.5 s at 0.1 s is about 6 pokes, three tries would be ~18
        (PythonSensor(task_id="times_out", python_callable=never("times_out"), retries=2, **fast), 2, 9),
        (PythonSensor(task_id="soft_fail", python_callable=never("soft_fail"), soft_fail=True, **fast), 2, 9),
        (
            PythonSensor(
                task_id="backoff",
                python_callable=third_time("backoff"),
                exponential_backoff=True,
                max_wait=timedelta(seconds=0.2),
                timeout=10,
            ),
            3,
            3,
        ),
        # an error in poke fails the sensor and IS retried (once here)
        (PythonSensor(task_id="broken", python_callable=broken("broken"), retries=1, timeout=10), 2, 2),
        # never_fail: an error in poke skips the sensor; silent_fail: it counts as "not yet" until the timeout
        (PythonSensor(task_id="never_fail", python_callable=broken("never_fail"), never_fail=True, timeout=10), 1, 1),
        (PythonSensor(task_id="silent_fail", python_callable=broken("silent_fail"), silent_fail=True, **fast), 2, 9),
    ]
    for sensor, low, high in sensors:
        sensor >> EmptyOperator(task_id=f"{sensor.task_id}_next")
        sensor >> PythonOperator(
            task_id=f"check_{sensor.task_id}",
            python_callable=expect_pokes(sensor.task_id, low, high),
            trigger_rule="all_done",
        )
    with_value_sensor = PythonSensor(task_id="with_value", python_callable=with_value, timeout=10)
    with_value_sensor >> PythonOperator(task_id="check_with_value", python_callable=expect_xcom)

if __name__ == "__main__":
    dag.test()
