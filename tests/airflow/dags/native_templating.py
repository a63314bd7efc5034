"""render_template_as_native_obj=True: each task asserts the exact type and value its template renders to.

A rendered str goes through ast.literal_eval (even with no Jinja in it); a single non-str node is kept as is.
"""

import pendulum

from airflow import DAG
from airflow.operators.python import PythonOperator

CASES = [None, {"tok": "eyJhbGciOi"}, {"tok": 12345}]

PARAMS = {
    "tok": "12345",
    "flag": "True",
    "cfg": {"a": 1, "b": [1, 2]},
    "a": 1,
    "b": 2,
    "lst": "[1, 2]",
    "n": 7,
    "nothing": None,
    "zip": "01234",
    "quoted": "'hi'",
    "pair": "1, 2",
    "hex": "0x10",
}

EXPECT = {
    # task_id: (template, expected value; its type must match exactly)
    "tok_int": ("{{ params.tok }}", 12345),
    "tok_trailing_space_int": ("{{ params.tok }} ", 12345),
    "tok_leading_space_str": (" {{ params.tok }}", " 12345"),
    "flag_bool": ("{{ params.flag }}", True),
    "cfg_dict": ("{{ params.cfg }}", {"a": 1, "b": [1, 2]}),
    "cfg_item_int": ("{{ params.cfg.a }}", 1),
    "concat_int": ("{{ params.a }}{{ params.b }}", 12),
    "prefixed_str": ("x-{{ params.a }}", "x-1"),
    "list_string_list": ("{{ params.lst }}", [1, 2]),
    "arithmetic_int": ("{{ params.n + 1 }}", 8),
    "none_param_none": ("{{ params.nothing }}", None),
    "literal_none_none": ("None", None),
    "no_jinja_int": ("42", 42),
    "leading_zero_str": ("{{ params.zip }}", "01234"),
    "quoted_str_unquoted": ("{{ params.quoted }}", "hi"),
    "pair_tuple": ("{{ params.pair }}", (1, 2)),
    "hex_int": ("{{ params.hex }}", 16),
    "nested_rendered": (["{{ params.tok }}", {"k": "{{ params.flag }}"}], [12345, {"k": True}]),
}


def check(expected):
    def _check(value):
        if type(value) is not type(expected) or value != expected:
            raise AssertionError(f"got {type(value).__name__} {value!r}, expected {type(expected).__name__} {expected!r}")

    return _check


def is_undefined(value):
    if type(value).__name__ != "StrictUndefined":
        raise AssertionError(f"got {type(value).__name__} {value!r}")


with DAG(
    dag_id="native_templating",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params=PARAMS,
    render_template_as_native_obj=True,
) as dag:
    for task_id, (template, expected) in EXPECT.items():
        PythonOperator(task_id=task_id, python_callable=check(expected), op_kwargs={"value": template})
    # a lone missing name renders to an Undefined object; with text around it, rendering fails
    PythonOperator(task_id="missing_alone_undefined", python_callable=is_undefined, op_kwargs={"value": "{{ params.missing }}"})
    PythonOperator(task_id="missing_in_text_fails", python_callable=check("x"), op_kwargs={"value": "x{{ params.missing }}"})

if __name__ == "__main__":
    dag.test()
