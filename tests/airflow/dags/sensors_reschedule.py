"""PythonSensor in reschedule mode: success after pokes, timeout counted from the first poke, soft_fail."""

import os
import re
import tempfile
from pathlib import Path

import pendulum

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.sensors.python import PythonSensor

DAG_ID = "sensors_reschedule"


def counter(context, name):
    run = re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
    return Path(os.environ.get("CONFORMANCE_TMP", tempfile.gettempdir())) / f"{DAG_ID}-{run}-{name}"


def pokes(context, name):
    path = counter(context, name)
    return int(path.read_text()) if path.exists() else 0


def poke(context, name):
    count = pokes(context, name) + 1
    counter(context, name).write_text(str(count))
    return count


def third_time(**context):
    return poke(context, "third_poke") >= 3


def never(name):
    def check(**context):
        poke(context, name)
        return False

    return check


def expect_pokes(name, low, high):
    def check(**context):
        seen = pokes(context, name)
        if not low <= seen <= high:
            raise AssertionError(f"{name} poked {seen} times, expected {low}..{high}")

    return check


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"mode": "reschedule", "poke_interval": 0.2},
) as dag:
    third = PythonSensor(task_id="third_poke", python_callable=third_time, timeout=30)
    times_out = PythonSensor(task_id="times_out", python_callable=never("times_out"), timeout=1)
    soft_fail = PythonSensor(task_id="soft_fail", python_callable=never("soft_fail"), timeout=1, soft_fail=True)
    for sensor, low, high in [(third, 3, 3), (times_out, 2, 20), (soft_fail, 2, 20)]:
        sensor >> EmptyOperator(task_id=f"{sensor.task_id}_next")
        sensor >> PythonOperator(
            task_id=f"check_{sensor.task_id}",
            python_callable=expect_pokes(sensor.task_id, low, high),
            trigger_rule="all_done",
        )

if __name__ == "__main__":
    dag.test()
