"""What survives an XCom round trip: values go through Airflow's JSON serialisation; unserialisable ones fail the task."""

import datetime

import pendulum

from airflow import DAG
from airflow.operators.python import PythonOperator


class Opaque:
    pass


VALUES = {
    # producer suffix: (returned value, value pulled back; its type must match exactly)
    "tuple": ((1, 2), (1, 2)),
    "set": ({1, 2}, {1, 2}),
    "nested_tuples": ({"a": (1, [2, (3,)])}, {"a": [1, [2, [3]]]}),
    "int_keys": ({1: "a"}, {"1": "a"}),
    "float": (1.5, 1.5),
    "bool": (False, False),
}


def produce(value):
    return lambda: value


def same(expected):
    def check(ti, task):
        value = ti.xcom_pull(task_ids=task.task_id.replace("check_", "produce_"))
        if type(value) is not type(expected) or value != expected:
            raise AssertionError(f"got {type(value).__name__} {value!r}, expected {expected!r}")

    return check


def same_datetime(ti):
    value = ti.xcom_pull(task_ids="produce_datetime")
    if not isinstance(value, datetime.datetime) or value != datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.timezone.utc):
        raise AssertionError(f"got {type(value).__name__} {value!r}")


with DAG(
    dag_id="xcom_serialization",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    for name, (value, expected) in VALUES.items():
        PythonOperator(task_id=f"produce_{name}", python_callable=produce(value)) >> PythonOperator(
            task_id=f"check_{name}", python_callable=same(expected)
        )
    PythonOperator(
        task_id="produce_datetime",
        python_callable=produce(datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)),
    ) >> PythonOperator(task_id="check_datetime", python_callable=same_datetime)
    # the callable returns normally, but the value cannot be stored: the task fails
    for name, value in [("object", Opaque()), ("bytes", b"raw")]:
        PythonOperator(task_id=f"produce_{name}", python_callable=produce(value)) >> PythonOperator(
            task_id=f"check_{name}", python_callable=same(None), trigger_rule="all_done"
        )

if __name__ == "__main__":
    dag.test()
