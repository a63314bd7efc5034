"""Every trigger rule of Airflow 2.10 against every combination of finished upstream states.

Sources: s1, s2 succeed; f1, f2 fail; k1, k2 skip; u1 ends upstream_failed (its parent fails).
Target ``<rule>__<combo>`` has exactly the upstreams named by the combo letters and succeeds if it runs.
k1 and k2 start only once f1 and f2 are done: Airflow decides all_success eagerly, so with F and K
upstreams the outcome depends on which finishes first (see trigger_rule_eager_order.py); here F is first.
"""

import pendulum

from airflow import DAG
from airflow.exceptions import AirflowSkipException
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator

RULES = [
    "all_success",
    "all_failed",
    "all_done",
    "all_done_setup_success",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_or_skipped",
    "none_skipped",
    "dummy",
    "always",
    "none_failed_min_one_success",
    "all_skipped",
]
COMBOS = ["S", "F", "K", "U", "SF", "SK", "FK", "SS", "FF", "KK", "SU"]


def succeed():
    return None


def fail():
    raise ValueError("this task fails on purpose")


def skip():
    raise AirflowSkipException("this task skips on purpose")


with DAG(
    dag_id="trigger_rule_matrix",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    sources = {
        "S": [PythonOperator(task_id=f"s{i}", python_callable=succeed) for i in (1, 2)],
        "F": [PythonOperator(task_id=f"f{i}", python_callable=fail) for i in (1, 2)],
        "K": [PythonOperator(task_id=f"k{i}", python_callable=skip, trigger_rule="all_done") for i in (1, 2)],
    }
    sources["F"] >> sources["K"][0]
    sources["F"] >> sources["K"][1]
    u_parent = PythonOperator(task_id="u_parent", python_callable=fail)
    u1 = EmptyOperator(task_id="u1")
    u_parent >> u1
    sources["U"] = [u1]

    for rule in RULES:
        for combo in COMBOS:
            target = PythonOperator(task_id=f"{rule}__{combo}", python_callable=succeed, trigger_rule=rule)
            used = {"S": 0, "F": 0, "K": 0, "U": 0}
            for letter in combo:
                sources[letter][used[letter]] >> target
                used[letter] += 1

if __name__ == "__main__":
    dag.test()
