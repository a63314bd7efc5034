"""The default string rendering (render_template_as_native_obj=False), for comparison with native_templating."""

import pendulum

from airflow import DAG
from airflow.operators.python import PythonOperator

CASES = [None, {"tok": 12345}]

PARAMS = {
    "tok": "12345",
    "flag": "True",
    "cfg": {"a": 1, "b": [1, 2]},
    "a": 1,
    "b": 2,
    "n": 7,
    "nothing": None,
}

EXPECT = {
    # task_id: (template, expected value; its type must match exactly)
    "tok_str": ("{{ params.tok }}", "12345"),
    "flag_str": ("{{ params.flag }}", "True"),
    "cfg_repr": ("{{ params.cfg }}", "{'a': 1, 'b': [1, 2]}"),
    "cfg_json": ("{{ params.cfg | tojson }}", '{"a": 1, "b": [1, 2]}'),
    "concat_str": ("{{ params.a }}{{ params.b }}", "12"),
    "arithmetic_str": ("{{ params.n + 1 }}", "8"),
    "none_param_str": ("{{ params.nothing }}", "None"),
    "no_jinja_str": ("42", "42"),
    "nested_rendered": (["{{ params.tok }}", {"k": "{{ params.flag }}"}, ("{{ params.a }}",)], ["12345", {"k": "True"}, ("1",)]),
    "keys_not_rendered": ({"{{ params.a }}": "{{ params.b }}"}, {"{{ params.a }}": "2"}),
    "context_values": ("{{ dag.dag_id }}/{{ task.task_id }}/{{ ti.task_id }}", "string_templating/context_values/context_values"),
}


def check(expected):
    def _check(value):
        if type(value) is not type(expected) or value != expected:
            raise AssertionError(f"got {type(value).__name__} {value!r}, expected {type(expected).__name__} {expected!r}")

    return _check


with DAG(
    dag_id="string_templating",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params=PARAMS,
) as dag:
    for task_id, (template, expected) in EXPECT.items():
        PythonOperator(task_id=task_id, python_callable=check(expected), op_kwargs={"value": template})
    PythonOperator(task_id="missing_fails", python_callable=check(""), op_kwargs={"value": "{{ params.missing }}"})

if __name__ == "__main__":
    dag.test()
