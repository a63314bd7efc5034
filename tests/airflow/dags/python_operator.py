"""PythonOperator: how the callable receives context, op_args/op_kwargs (templated), templates_dict."""

import pendulum

from airflow import DAG
from airflow.operators.python import PythonOperator, get_current_context

CASES = [None, {"who": "bob"}]


def by_name(ds, run_id, params, dag_run, ti, task):
    # only the context keys named in the signature are passed
    assert isinstance(ds, str) and len(ds) == 10, ds
    assert run_id == dag_run.run_id and run_id, run_id
    assert ti.task_id == task.task_id == "by_name"
    assert params["who"] == (dag_run.conf or {}).get("who", "ann")


def by_kwargs(**context):
    assert context["task"].task_id == "by_kwargs"
    assert context["dag"].dag_id == "python_operator"
    assert context["params"]["who"] == (context["dag_run"].conf or {}).get("who", "ann")
    for key in ("ds", "ds_nodash", "ts", "logical_date", "run_id", "ti", "task_instance", "conf", "macros", "var"):
        assert key in context, key


def positional_and_context(first, second, *, greeting, params):
    assert (first, second) == (f"{params['who']}-1", 2), (first, second)
    assert greeting == f"hi {params['who']}", greeting


def explicit_context():
    context = get_current_context()
    assert context["ti"].task_id == "explicit_context"


def with_templates_dict(templates_dict, **context):
    assert templates_dict == {"who": context["params"]["who"], "n": "3"}, templates_dict


def op_kwargs_win(ds):
    # an op_kwargs entry named like a context key wins over the context value
    assert ds == "not-a-date", ds


with DAG(
    dag_id="python_operator",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"who": "ann"},
) as dag:
    PythonOperator(task_id="by_name", python_callable=by_name)
    PythonOperator(task_id="by_kwargs", python_callable=by_kwargs)
    PythonOperator(
        task_id="positional_and_context",
        python_callable=positional_and_context,
        op_args=["{{ params.who }}-1", 2],
        op_kwargs={"greeting": "hi {{ params.who }}"},
    )
    PythonOperator(task_id="explicit_context", python_callable=explicit_context)
    PythonOperator(
        task_id="with_templates_dict",
        python_callable=with_templates_dict,
        templates_dict={"who": "{{ params.who }}", "n": "{{ 1 + 2 }}"},
    )
    PythonOperator(task_id="op_kwargs_win", python_callable=op_kwargs_win, op_kwargs={"ds": "not-a-date"})

if __name__ == "__main__":
    dag.test()
