"""Airflow 3 DAG files on the shim: what ``airflow.sdk`` changes (``lexis_prefect.airflow.majors``).

The run-time behaviour under ``dag.test()`` is recorded with real Airflow 3.3.2 (``dags3/``,
``expected3/``); here are the parts a recording cannot show: the DAG arguments Airflow 3 refuses,
a run that is not ``dag.test()``'s (no logical date), and the names the shim does not serve.
Airflow 3's rules are cited from its source (``airflow/sdk/definitions/dag.py``,
``airflow/models/dagrun.py``, ``airflow/sdk/execution_time/task_runner.py``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from lexis_prefect.airflow import _finder
from lexis_prefect.airflow.exceptions import UnsupportedArgument
from lexis_prefect.airflow.majors import Airflow3DAG

_finder.install(force=True)


@pytest.mark.parametrize(
    "argument",
    [{"schedule_interval": "@daily"}, {"timetable": None}, {"concurrency": 2}, {"fail_stop": True},
     {"default_view": "grid"}, {"orientation": "LR"}, {"full_filepath": "x.py"}],
)  # fmt: skip
def test_arguments_airflow_3_removed_are_refused(argument: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        Airflow3DAG("removed", **argument)


def test_defaults_are_airflow_3s() -> None:
    from airflow.sdk import DAG, dag

    plain = DAG("plain")
    assert (plain.schedule, plain.catchup, plain.airflow_major) == (None, False, 3)

    @dag()
    def decorated():
        pass

    built = decorated()
    assert isinstance(built, Airflow3DAG) and built.catchup is False


def test_a_dag_from_airflow_keeps_airflow_2_semantics() -> None:
    from airflow import DAG

    assert DAG("two").airflow_major == 2


def test_deadline_alerts_fail_at_definition() -> None:
    with pytest.raises(UnsupportedArgument, match="deadline"):
        Airflow3DAG("late", deadline=object())


@pytest.mark.parametrize("name", ["Asset", "AssetAlias", "ObjectStoragePath", "WeightRule"])
def test_a_name_of_airflow_sdk_the_shim_lacks_fails_naming_the_feature(name: str) -> None:
    with pytest.raises(ImportError, match=re.escape("docs/airflow-compat.md")) as excinfo:
        exec(f"from airflow.sdk import {name}", {})
    assert name in str(excinfo.value)


def test_a_name_airflow_sdk_never_had_is_a_plain_attribute_error() -> None:
    import airflow.sdk

    assert not hasattr(airflow.sdk, "NoSuchThing")


def _recording_dag(seen: list[dict[str, Any]]) -> Airflow3DAG:
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    def record(**context: Any) -> None:
        seen.append({k: context.get(k) for k in ("logical_date", "run_id", "ds", "data_interval_start")})
        seen[-1]["dag_run.logical_date"] = context["dag_run"].logical_date
        seen[-1]["task_instance_key_str"] = context["task_instance_key_str"]

    with DAG("no_logical_date") as dag:
        PythonOperator(task_id="record", python_callable=record)
        BashOperator(task_id="template_ds", bash_command="echo {{ ds }}")
    return dag


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_given_no_logical_date_has_none_and_a_random_run_id_suffix() -> None:
    """``dag.test(logical_date=None)``, and every run but ``dag.test()``'s (a deployment run is a
    manual trigger): Airflow 3 gives no logical date, so no ``ds``; the run id gets 8 random letters."""
    seen: list[dict[str, Any]] = []
    result = _recording_dag(seen).test(logical_date=None)
    assert result.logical_date is None
    assert re.fullmatch(r"manual__\S+\+00:00_[A-Za-z0-9]{8}", result.run_id)
    (record,) = seen
    assert record == {
        "logical_date": None,
        "run_id": result.run_id,
        "ds": None,
        "data_interval_start": None,
        "dag_run.logical_date": None,
        "task_instance_key_str": f"no_logical_date__record__{result.run_id}",
    }
    assert result.tasks == {"record": "success", "template_ds": "failed"}  # 'ds' is undefined


@pytest.mark.usefixtures("prefect_harness")
def test_a_deployment_style_run_has_no_logical_date() -> None:
    seen: list[dict[str, Any]] = []
    state = _recording_dag(seen)(return_state=True)
    assert state.is_failed()  # template_ds, a leaf, cannot render without a logical date
    (record,) = seen
    assert record["logical_date"] is None
    assert re.fullmatch(r"manual__\S+_[A-Za-z0-9]{8}", record["run_id"])


@pytest.mark.usefixtures("prefect_harness")
def test_dag_test_given_a_logical_date_uses_it() -> None:
    import pendulum

    seen: list[dict[str, Any]] = []
    when = pendulum.datetime(2024, 5, 6, tz="UTC")
    result = _recording_dag(seen).test(logical_date=when)
    assert result.logical_date == when and seen[0]["ds"] == "2024-05-06"
    assert result.tasks == {"record": "success", "template_ds": "success"}
    assert re.fullmatch(r"manual__\S+\+00:00", result.run_id)  # run_after (now), not the logical date


@pytest.mark.parametrize("argument", ["run_after", "conn_file_path", "variable_file_path", "mark_success_pattern"])
def test_dag_test_arguments_the_shim_lacks_are_refused(argument: str) -> None:
    with pytest.raises(UnsupportedArgument, match=argument):
        Airflow3DAG("t").test(**{argument: "x"})
