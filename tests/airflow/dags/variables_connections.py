"""Variables and connections read from AIRFLOW_VAR_* / AIRFLOW_CONN_* environment variables (URI
and JSON forms), in code and in templates; a missing one fails its task, a default saves it."""

import json
import os

import pendulum

from airflow import DAG
from airflow.hooks.base import BaseHook
from airflow.models import Variable
from airflow.models.connection import Connection
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator

os.environ["AIRFLOW_VAR_GREETING"] = "hello"
os.environ["AIRFLOW_VAR_SETTINGS"] = json.dumps({"nodes": [1, 2, 3], "queue": "qcpu"})
os.environ["AIRFLOW_CONN_WAREHOUSE"] = "postgres://us%40er:p%3Ass@db.example.com:5432/sales?sslmode=require&x=1"
os.environ["AIRFLOW_CONN_API_JSON"] = json.dumps(
    {"conn_type": "http", "host": "api.example.com", "login": "bot", "password": "s3cret", "port": "8443",
     "extra": {"verify": False, "timeout": 30}}
)  # fmt: skip


def expect(actual, expected):
    if actual != expected:
        raise ValueError(f"got {actual!r}, expected {expected!r}")


def read_variables():
    expect(Variable.get("greeting"), "hello")
    expect(Variable.get("settings", deserialize_json=True)["queue"], "qcpu")
    expect(Variable.get("no_such_variable_xyz", default_var="fallback"), "fallback")
    expect(Variable.get("no_such_variable_xyz", default_var=None), None)


def missing_variable():
    Variable.get("no_such_variable_xyz")


def read_connections():
    conn = BaseHook.get_connection("warehouse")
    expect((conn.conn_type, conn.host, conn.login, conn.password, conn.port, conn.schema),
           ("postgres", "db.example.com", "us@er", "p:ss", 5432, "sales"))  # fmt: skip
    expect(conn.extra_dejson, {"sslmode": "require", "x": "1"})
    expect(conn.get_uri(), "postgres://us%40er:p%3Ass@db.example.com:5432/sales?sslmode=require&x=1")
    api = Connection.get_connection_from_secrets("api_json")
    expect((api.conn_type, api.host, api.login, api.password, api.port), ("http", "api.example.com", "bot", "s3cret", 8443))
    expect(api.extra_dejson, {"verify": False, "timeout": 30})
    expect(Connection(uri="mysql://h:3306").host, "h")


def missing_connection():
    BaseHook.get_connection("no_such_connection_xyz")


def templated(greeting, queue, host, port, default):
    expect((greeting, queue, host, port, default), ("hello", "qcpu", "db.example.com", "5432", "none"))


with DAG(
    dag_id="variables_connections",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    PythonOperator(task_id="read_variables", python_callable=read_variables)
    PythonOperator(task_id="missing_variable", python_callable=missing_variable)
    PythonOperator(task_id="read_connections", python_callable=read_connections)
    PythonOperator(task_id="missing_connection", python_callable=missing_connection)
    PythonOperator(
        task_id="templated",
        python_callable=templated,
        op_kwargs={
            "greeting": "{{ var.value.greeting }}",
            "queue": "{{ var.json.settings.queue }}",
            "host": "{{ conn.warehouse.host }}",
            "port": "{{ conn.warehouse.port }}",
            "default": "{{ var.value.get('no_such_variable_xyz', 'none') }}",
        },
    )
    BashOperator(task_id="template_missing_var", bash_command="echo {{ var.value.no_such_variable_xyz }}")
    BashOperator(task_id="template_missing_conn", bash_command="echo {{ conn.no_such_connection_xyz.host }}")

if __name__ == "__main__":
    dag.test()
