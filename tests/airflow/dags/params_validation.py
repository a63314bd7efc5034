"""Params with JSON schemas: good conf, bad conf (ParamValidationError before any task), whole-dict replacement."""

import pendulum

from airflow import DAG
from airflow.models.param import Param
from airflow.operators.python import PythonOperator

CASES = [
    None,
    {"count": 7, "mode": "slow"},
    {"cfg": {"x": 2}},
    {"extra": "not declared"},
    {"maybe": "text"},
    {"count": 0},
    {"count": "3"},
    {"mode": "medium"},
    {"cfg": {"y": 1}},
    {"cfg": {"x": "2"}},
    {"maybe": 5},
    {"email": "not-an-email"},
]


def expect_params(params, dag_run):
    conf = dag_run.conf or {}
    want = {"count": 3, "mode": "fast", "cfg": {"x": 1, "y": "keep"}, "maybe": None, "email": "a@example.org"}
    want.update(conf)  # conf replaces a whole value: no deep merge into cfg
    for key, value in want.items():
        if params[key] != value:
            raise AssertionError(f"params[{key!r}] = {params[key]!r}, expected {value!r}")


with DAG(
    dag_id="params_validation",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "count": Param(3, type="integer", minimum=1, description="how many"),
        "mode": Param("fast", enum=["fast", "slow"]),
        "cfg": Param(
            {"x": 1, "y": "keep"},
            schema={"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
        ),
        "maybe": Param(None, type=["null", "string"]),
        "email": Param("a@example.org", type="string", format="email"),
    },
) as dag:
    PythonOperator(task_id="check_params", python_callable=expect_params)

if __name__ == "__main__":
    dag.test()
