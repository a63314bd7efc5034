"""The DAG the Airflow 2.10 recording (record.py) asks about: params shaped like the seed DAG's
(a string `access_token`, an object job with a schema), two tasks."""

import pendulum
from airflow import DAG
from airflow.models.param import Param
from airflow.operators.empty import EmptyOperator

with DAG(
    dag_id="api_conformance",
    description="Params shaped like the LEXIS seed DAG's",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lexis", "airflow"],
    params={
        "access_token": Param("", type="string"),
        "job1": Param(
            {"name": "My HPC Job", "walltime_limit": 3600},
            type="object",
            description="The job",
            properties={"name": {"type": "string"}, "walltime_limit": {"type": "integer", "minimum": 1}},
            additionalProperties=False,
        ),
    },
) as dag:
    EmptyOperator(task_id="start") >> EmptyOperator(task_id="end")
