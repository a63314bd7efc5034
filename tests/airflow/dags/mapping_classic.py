"""Mapped classic operators: PythonOperator and BashOperator .partial().expand() and
.expand_kwargs(), mapping over an operator's output, map_index_template, a failing Bash index."""

import pendulum

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator


def emit():
    return ["one", "two", "three"]


def shout(word, suffix, **context):
    assert context["ti"].map_index in (0, 1, 2)
    return word.upper() + suffix


def check(**context):
    values = context["ti"].xcom_pull(task_ids="shout")
    assert list(values) == ["ONE!", "TWO!", "THREE!"], list(values)
    lines = context["ti"].xcom_pull(task_ids="echo")
    assert list(lines) == ["hello 0", "hello 1"], list(lines)


with DAG(
    dag_id="mapping_classic",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    words = PythonOperator(task_id="emit", python_callable=emit)
    shouted = PythonOperator.partial(
        task_id="shout", python_callable=shout, op_kwargs={"suffix": "!"}, map_index_template="{{ task.op_args[0] }}"
    ).expand(op_args=words.output.map(lambda w: [w]))
    echo = BashOperator.partial(task_id="echo", do_xcom_push=True).expand(
        bash_command=["echo hello 0", "echo hello 1"]
    )
    codes = BashOperator.partial(task_id="codes").expand_kwargs(
        [{"bash_command": "exit 0"}, {"bash_command": "exit 1"}, {"bash_command": "echo $N", "env": {"N": "3"}}]
    )
    checked = PythonOperator(task_id="check", python_callable=check)
    [shouted, echo] >> checked
    codes >> PythonOperator(task_id="after_codes", python_callable=lambda: None, trigger_rule="one_failed")
