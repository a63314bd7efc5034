"""XCom: push by key, return_value, pulls of one id / a list of ids / a missing value, templated xcom_pull."""

import pendulum

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator


def produce(ti):
    ti.xcom_push(key="extra", value={"x": 1})
    return "rv"


def produce_number():
    return 2


def produce_nothing():
    return None


def expect(expected, **pull_kwargs):
    def check(ti):
        value = ti.xcom_pull(**pull_kwargs)
        if isinstance(value, (list, tuple)) or type(value).__name__ == "LazySelectSequence":
            value = list(value)
        if value != expected:
            raise AssertionError(f"xcom_pull({pull_kwargs}) gave {value!r}, expected {expected!r}")

    return check


def expect_arg(expected):
    def check(value):
        if value != expected:
            raise AssertionError(f"got {value!r}, expected {expected!r}")

    return check


with DAG(
    dag_id="xcom",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    producers = [
        PythonOperator(task_id="produce", python_callable=produce),
        PythonOperator(task_id="produce_number", python_callable=produce_number),
        PythonOperator(task_id="produce_nothing", python_callable=produce_nothing),
        PythonOperator(task_id="produce_unpushed", python_callable=produce_number, do_xcom_push=False),
        EmptyOperator(task_id="empty"),
    ]
    checks = [
        PythonOperator(task_id="pull_return_value", python_callable=expect("rv", task_ids="produce")),
        PythonOperator(task_id="pull_by_key", python_callable=expect({"x": 1}, task_ids="produce", key="extra")),
        PythonOperator(
            task_id="pull_list", python_callable=expect([2, "rv"], task_ids=["produce_number", "produce"])
        ),
        # ids with nothing stored drop out of the list
        PythonOperator(
            task_id="pull_list_with_gaps",
            python_callable=expect(
                ["rv", 2], task_ids=["produce", "produce_nothing", "produce_unpushed", "empty", "produce_number"]
            ),
        ),
        PythonOperator(task_id="pull_none_returned", python_callable=expect(None, task_ids="produce_nothing")),
        PythonOperator(task_id="pull_not_pushed", python_callable=expect(None, task_ids="produce_unpushed")),
        PythonOperator(task_id="pull_missing_key", python_callable=expect(None, task_ids="produce", key="nope")),
        PythonOperator(
            task_id="pull_missing_default", python_callable=expect("dflt", task_ids="produce", key="nope", default="dflt")
        ),
        PythonOperator(
            task_id="pull_templated",
            python_callable=expect_arg("rv/1"),
            op_kwargs={"value": "{{ ti.xcom_pull(task_ids='produce') }}/{{ ti.xcom_pull(task_ids='produce', key='extra')['x'] }}"},
        ),
        PythonOperator(
            task_id="pull_templated_macro_style",
            python_callable=expect_arg("2"),
            op_kwargs={"value": "{{ task_instance.xcom_pull('produce_number') }}"},
        ),
    ]
    for check in checks:
        producers >> check

if __name__ == "__main__":
    dag.test()
