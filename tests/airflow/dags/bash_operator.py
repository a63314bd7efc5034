"""BashOperator: exit codes, skip_on_exit_code, env/append_env, cwd, templated command, last line to XCom."""

import os

import pendulum

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator

CASES = [None, {"word": "other"}]

os.environ["CONFORMANCE_OUTER"] = "outer"


def expect_xcom(task_id, expected):
    def check(ti):
        value = ti.xcom_pull(task_ids=task_id)
        if value != expected:
            raise AssertionError(f"{task_id} pushed {value!r}, expected {expected!r}")

    return check


with DAG(
    dag_id="bash_operator",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"word": "hello"},
) as dag:
    BashOperator(task_id="exit_0", bash_command="exit 0")
    BashOperator(task_id="exit_1", bash_command="exit 1")
    BashOperator(task_id="exit_99", bash_command="exit 99")
    BashOperator(task_id="exit_99_no_skip", bash_command="exit 99", skip_on_exit_code=None)
    BashOperator(task_id="exit_3_skip_3", bash_command="exit 3", skip_on_exit_code=3)
    BashOperator(task_id="exit_4_skip_list", bash_command="exit 4", skip_on_exit_code=[3, 4])
    BashOperator(task_id="exit_1_skip_3", bash_command="exit 1", skip_on_exit_code=3)
    # a failing command in the middle does not stop the script (no set -e): the last exit code counts
    BashOperator(task_id="mid_failure", bash_command="false; true")

    BashOperator(
        task_id="env_only",
        bash_command='test "$MY_VAR" = mine && test -z "${CONFORMANCE_OUTER:-}"',
        env={"MY_VAR": "mine"},
    )
    BashOperator(
        task_id="env_append",
        bash_command='test "$MY_VAR" = mine && test "$CONFORMANCE_OUTER" = outer',
        env={"MY_VAR": "mine"},
        append_env=True,
    )
    BashOperator(task_id="env_inherited", bash_command='test "$CONFORMANCE_OUTER" = outer')
    BashOperator(task_id="env_templated", bash_command='test "$W" = hello', env={"W": "{{ params.word }}"})
    # Airflow exports AIRFLOW_CTX_* even when env= replaces the environment
    BashOperator(
        task_id="ctx_vars",
        bash_command='test "$AIRFLOW_CTX_DAG_ID" = bash_operator && test "$AIRFLOW_CTX_TASK_ID" = ctx_vars',
        env={"MY_VAR": "mine"},
    )
    # a command ending in .sh is taken for a template FILE name (template_ext): not found, the task fails;
    # a trailing space is the documented way out
    BashOperator(task_id="ends_in_sh", bash_command="echo run.sh")
    BashOperator(task_id="ends_in_sh_space", bash_command="echo run.sh ")
    BashOperator(task_id="cwd", bash_command='test "$(pwd -P)" = "$(cd / && pwd -P)"', cwd="/")

    templated = BashOperator(task_id="templated", bash_command="echo first; echo '{{ params.word }}-{{ dag.dag_id }}'")
    templated >> PythonOperator(
        task_id="check_templated", python_callable=expect_xcom("templated", "hello-bash_operator")
    )
    lines = BashOperator(task_id="last_line", bash_command="echo one; echo two; echo; echo three")
    lines >> PythonOperator(task_id="check_last_line", python_callable=expect_xcom("last_line", "three"))
    blank = BashOperator(task_id="blank_last_line", bash_command="echo three; echo")
    blank >> PythonOperator(task_id="check_blank_last_line", python_callable=expect_xcom("blank_last_line", ""))
    no_push = BashOperator(task_id="no_push", bash_command="echo hidden", do_xcom_push=False)
    no_push >> PythonOperator(task_id="check_no_push", python_callable=expect_xcom("no_push", None))

if __name__ == "__main__":
    dag.test()
