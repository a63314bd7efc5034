"""PythonVirtualenvOperator, ExternalPythonOperator, their branch forms and decorators.

Each callable runs in another interpreter: values go over pickled and come back as XComs, which
the ``check_*`` tasks compare (a wrong value fails them). Cheap on purpose: no requirements (no
network), one cached environment per case (``venv_cache_path``), the external interpreter is the
one running the DAG.
"""

import os
import sys

import pendulum

from airflow import DAG
from airflow.decorators import task
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import (
    BranchExternalPythonOperator,
    BranchPythonVirtualenvOperator,
    ExternalPythonOperator,
    PythonOperator,
    PythonVirtualenvOperator,
)

VENVS = os.path.join(os.environ.get("CONFORMANCE_TMP", "/tmp"), "venvs")


def add(a, b, scale=1, ds=None):
    import sys

    print("adding in", sys.executable)
    return {"sum": (a + int(b)) * scale, "ds_len": len(ds)}


def string_args():
    return virtualenv_string_args  # noqa: F821 - a global of the script Airflow writes


def exit_with(code):
    import sys

    sys.exit(code)


def fails():
    raise ValueError("fails on purpose in the other interpreter")


def choose(which):
    return which


def check(ti, task_id, expected):
    value = ti.xcom_pull(task_ids=task_id)
    if value != expected:
        raise ValueError(f"{task_id} returned {value!r}, expected {expected!r}")


with DAG(
    dag_id="virtualenv_operators",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"b": 2},
) as dag:
    venv_add = PythonVirtualenvOperator(
        task_id="venv_add",
        python_callable=add,
        op_args=[1, "{{ params.b }}"],
        op_kwargs={"scale": 10},
        venv_cache_path=VENVS,
    )
    external_add = ExternalPythonOperator(
        task_id="external_add", python=sys.executable, python_callable=add, op_args=[3, 4]
    )
    venv_strings = PythonVirtualenvOperator(
        task_id="venv_strings",
        python_callable=string_args,
        string_args=["a", "{{ params.b }}"],
        venv_cache_path=VENVS,
    )
    isolated = PythonVirtualenvOperator(
        task_id="isolated",
        python_callable=add,
        op_args=[5, 5],
        system_site_packages=False,
        expect_airflow=False,
        venv_cache_path=VENVS,
    )
    skip_code = PythonVirtualenvOperator(
        task_id="skip_code", python_callable=exit_with, op_args=[3], skip_on_exit_code=3, venv_cache_path=VENVS
    )
    other_code = ExternalPythonOperator(
        task_id="other_code", python=sys.executable, python_callable=exit_with, op_args=[4], skip_on_exit_code=3
    )
    raising = PythonVirtualenvOperator(task_id="raising", python_callable=fails, venv_cache_path=VENVS)
    after_skip = EmptyOperator(task_id="after_skip")
    after_raise = EmptyOperator(task_id="after_raise")
    skip_code >> after_skip
    raising >> after_raise

    branch = BranchPythonVirtualenvOperator(
        task_id="branch", python_callable=choose, op_args=["left"], venv_cache_path=VENVS
    )
    branch >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]
    ext_branch = BranchExternalPythonOperator(
        task_id="ext_branch", python=sys.executable, python_callable=choose, op_args=[["x2"]]
    )
    ext_branch >> [EmptyOperator(task_id="x1"), EmptyOperator(task_id="x2")]

    @task.virtualenv(venv_cache_path=VENVS, multiple_outputs=True)
    def deco_venv(n: int, ds=None) -> dict:
        return {"double": n * 2, "has_ds": bool(ds)}

    @task.external_python(python=sys.executable)
    def deco_external(value):
        return value + 1

    doubled = deco_venv(21)
    plus_one = deco_external(doubled["double"])

    checks = {
        "venv_add": {"sum": 30, "ds_len": 10},
        "external_add": {"sum": 7, "ds_len": 10},
        "venv_strings": ["a", "{{ params.b }}"],  # string_args are not templated
        "isolated": {"sum": 10, "ds_len": 10},
        "deco_external": 43,
    }
    for task_id, expected in checks.items():
        PythonOperator(
            task_id=f"check_{task_id}", python_callable=check, op_kwargs={"task_id": task_id, "expected": expected}
        ).set_upstream(dag.get_task(task_id))

if __name__ == "__main__":
    dag.test()
