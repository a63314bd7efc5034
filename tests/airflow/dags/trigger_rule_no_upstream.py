"""A task without upstreams runs whatever its trigger rule says (Airflow passes the rule at once)."""

import pendulum

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    dag_id="trigger_rule_no_upstream",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    for rule in [
        TriggerRule.ALL_SUCCESS,
        TriggerRule.ALL_FAILED,
        TriggerRule.ALL_DONE,
        TriggerRule.ONE_SUCCESS,
        TriggerRule.ONE_FAILED,
        TriggerRule.ONE_DONE,
        TriggerRule.NONE_FAILED,
        TriggerRule.NONE_SKIPPED,
        TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        TriggerRule.ALL_SKIPPED,
        TriggerRule.ALWAYS,
    ]:
        EmptyOperator(task_id=f"root_{rule.value}", trigger_rule=rule)

if __name__ == "__main__":
    dag.test()
