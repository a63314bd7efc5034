"""BranchDateTimeOperator, BranchDayOfWeekOperator and LatestOnlyOperator, with targets chosen so
that the branch taken does not depend on when the case runs."""

import datetime

import pendulum

from airflow import DAG
from airflow.operators.datetime import BranchDateTimeOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.latest_only import LatestOnlyOperator
from airflow.operators.weekday import BranchDayOfWeekOperator
from airflow.utils.task_group import TaskGroup
from airflow.utils.weekday import WeekDay

EVERY_DAY = {WeekDay.MONDAY, "tuesday", "Wednesday", "THURSDAY", WeekDay.FRIDAY, WeekDay.SATURDAY, WeekDay.SUNDAY}


def pair(name):
    return EmptyOperator(task_id=f"{name}_true"), EmptyOperator(task_id=f"{name}_false")


with DAG(
    dag_id="branch_datetime_weekday",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    # now lies between two dates far apart: the true branch
    between = BranchDateTimeOperator(
        task_id="between",
        follow_task_ids_if_true="between_true",
        follow_task_ids_if_false="between_false",
        target_lower=pendulum.datetime(2020, 1, 1, tz="UTC"),
        target_upper=pendulum.datetime(2100, 1, 1, tz="UTC"),
    )
    between >> list(pair("between"))
    # only a lower bound, in the future: the false branch (a list of ids)
    future = BranchDateTimeOperator(
        task_id="future",
        follow_task_ids_if_true=["future_true"],
        follow_task_ids_if_false=["future_false"],
        target_lower=datetime.datetime(2100, 1, 1),
        target_upper=None,
    )
    future >> list(pair("future"))
    # times of day on the logical date's day: the whole day, the true branch
    whole_day = BranchDateTimeOperator(
        task_id="whole_day",
        follow_task_ids_if_true="whole_day_true",
        follow_task_ids_if_false="whole_day_false",
        target_lower=datetime.time(0, 0, 0),
        target_upper=datetime.time(23, 59, 59, 999999),
        use_task_logical_date=True,
    )
    whole_day >> list(pair("whole_day"))
    # an upper time before the lower one spans midnight; a task group as the branch
    with TaskGroup("night") as night:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    overnight = BranchDateTimeOperator(
        task_id="overnight",
        follow_task_ids_if_true="night",
        follow_task_ids_if_false="day",
        target_lower=datetime.time(0, 0, 0),
        target_upper=datetime.time(0, 0, 0),
        use_task_logical_date=True,
    )
    overnight >> [night, EmptyOperator(task_id="day")]

    every_day = BranchDayOfWeekOperator(
        task_id="every_day",
        follow_task_ids_if_true="every_day_true",
        follow_task_ids_if_false="every_day_false",
        week_day=EVERY_DAY,
    )
    every_day >> list(pair("every_day"))
    no_day = BranchDayOfWeekOperator(
        task_id="no_day",
        follow_task_ids_if_true="no_day_true",
        follow_task_ids_if_false="no_day_false",
        week_day=[],
        use_task_logical_date=True,
    )
    no_day >> list(pair("no_day"))

    latest = LatestOnlyOperator(task_id="latest_only")
    latest >> [EmptyOperator(task_id="after_latest"), EmptyOperator(task_id="after_latest_2")]

if __name__ == "__main__":
    dag.test()
