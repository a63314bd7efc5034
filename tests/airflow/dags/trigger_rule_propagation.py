"""How failed and skipped states travel down chains under different trigger rules."""

import pendulum

from airflow import DAG
from airflow.exceptions import AirflowSkipException
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.utils.trigger_rule import TriggerRule


def fail():
    raise ValueError("this task fails on purpose")


def skip():
    raise AirflowSkipException("this task skips on purpose")


with DAG(
    dag_id="trigger_rule_propagation",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    fails = PythonOperator(task_id="fails", python_callable=fail)
    skips = PythonOperator(task_id="skips", python_callable=skip)

    # failure: upstream_failed two levels down, then rules that accept it
    fails >> EmptyOperator(task_id="f_1") >> EmptyOperator(task_id="f_2")
    fails >> EmptyOperator(task_id="f_a") >> EmptyOperator(task_id="f_a_all_done", trigger_rule="all_done")
    fails >> EmptyOperator(task_id="f_b") >> EmptyOperator(
        task_id="f_b_one_failed", trigger_rule=TriggerRule.ONE_FAILED
    )
    fails >> EmptyOperator(task_id="f_c") >> EmptyOperator(task_id="f_c_all_failed", trigger_rule="all_failed")
    f_d_done = EmptyOperator(task_id="f_d_all_done", trigger_rule="all_done")
    fails >> f_d_done >> EmptyOperator(task_id="f_d_after")

    # skip: skipped two levels down, then rules that accept it
    skips >> EmptyOperator(task_id="k_1") >> EmptyOperator(task_id="k_2")
    skips >> EmptyOperator(task_id="k_a") >> EmptyOperator(task_id="k_a_none_failed", trigger_rule="none_failed")
    skips >> EmptyOperator(task_id="k_b") >> EmptyOperator(task_id="k_b_all_skipped", trigger_rule="all_skipped")
    skips >> EmptyOperator(task_id="k_c") >> EmptyOperator(task_id="k_c_one_failed", trigger_rule="one_failed")
    k_d_done = EmptyOperator(task_id="k_d_all_done", trigger_rule="all_done")
    skips >> k_d_done >> EmptyOperator(task_id="k_d_after")

    # both
    mixed = EmptyOperator(task_id="mixed_none_failed_min_one_success", trigger_rule="none_failed_min_one_success")
    [fails, skips] >> mixed
    mixed >> EmptyOperator(task_id="mixed_after", trigger_rule="all_done")

if __name__ == "__main__":
    dag.test()
