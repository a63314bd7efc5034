"""TimeDeltaSensor, TimeSensor, DateTimeSensor, their async forms and DayOfWeekSensor, with targets
that are already past (success) or never reached (a 1 s timeout: skipped with soft_fail)."""

import datetime

import pendulum

from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.sensors.date_time import DateTimeSensor, DateTimeSensorAsync
from airflow.sensors.time_delta import TimeDeltaSensor, TimeDeltaSensorAsync
from airflow.sensors.time_sensor import TimeSensor, TimeSensorAsync
from airflow.sensors.weekday import DayOfWeekSensor
from airflow.utils.weekday import WeekDay

NEVER = {"timeout": 1, "poke_interval": 1, "soft_fail": True}

with DAG(
    dag_id="time_sensors",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    # past targets
    TimeDeltaSensor(task_id="delta_past", delta=datetime.timedelta(seconds=-60))
    TimeDeltaSensor(task_id="delta_soon", delta=datetime.timedelta(seconds=1), poke_interval=1)
    TimeDeltaSensorAsync(task_id="delta_async_past", delta=datetime.timedelta(seconds=-60))
    TimeDeltaSensorAsync(task_id="delta_async_soon", delta=datetime.timedelta(seconds=1))
    TimeSensor(task_id="time_past", target_time=datetime.time(0, 0))
    TimeSensorAsync(task_id="time_async_past", target_time=datetime.time(0, 0))
    DateTimeSensor(task_id="datetime_ts", target_time="{{ ts }}")
    DateTimeSensor(task_id="datetime_obj", target_time=pendulum.datetime(2020, 1, 1, tz="UTC"))
    DateTimeSensorAsync(task_id="datetime_async_ts", target_time="{{ data_interval_end }}")
    DayOfWeekSensor(task_id="weekday_any", week_day=set(WeekDay))
    DayOfWeekSensor(task_id="weekday_logical", week_day=set(WeekDay), use_task_logical_date=True)

    # targets never reached within the timeout
    never = [
        TimeDeltaSensor(task_id="delta_never", delta=datetime.timedelta(days=1), **NEVER),
        TimeSensor(task_id="time_never", target_time=datetime.time.max, **NEVER),
        DateTimeSensor(task_id="datetime_never", target_time="2100-01-01T00:00:00+00:00", **NEVER),
        DayOfWeekSensor(task_id="weekday_never", week_day=[], **NEVER),
    ]
    never >> EmptyOperator(task_id="after_never", trigger_rule="all_done")
    # a timeout without soft_fail fails
    TimeSensor(task_id="time_never_fails", target_time=datetime.time.max, timeout=1, poke_interval=1)

if __name__ == "__main__":
    dag.test()
