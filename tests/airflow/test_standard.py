"""The standard operators, sensors and helpers of ``lexis_prefect.airflow.standard``.

Their states in a run are covered by the conformance DAGs (recorded with Airflow 2.10.5:
``virtualenv_operators``, ``time_sensors``, ``branch_datetime_weekday``, ``edge_labels``,
``variables_connections``, ``external_task_sensor``). Here: argument checks and helpers (messages
and values as Airflow 2.10.5 gives them, checked against its source), and what only the shim has
or what Airflow's ``dag.test`` cannot show: Prefect Variables and Secret blocks, a wait for another
DAG's task group, and TriggerDagRunOperator running a DAG in process or through a deployment.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pendulum
import pytest

from lexis_prefect.airflow.exceptions import AirflowException, RemovedInAirflow3Warning

needs_prefect = pytest.mark.usefixtures("prefect_harness")

FACADES = {
    "airflow.operators.latest_only": ["LatestOnlyOperator"],
    "airflow.operators.datetime": ["BranchDateTimeOperator"],
    "airflow.operators.weekday": ["BranchDayOfWeekOperator"],
    "airflow.operators.trigger_dagrun": ["TriggerDagRunOperator"],
    "airflow.operators.python": ["PythonVirtualenvOperator", "ExternalPythonOperator", "BranchPythonVirtualenvOperator"],
    "airflow.sensors.time_delta": ["TimeDeltaSensor", "TimeDeltaSensorAsync"],
    "airflow.sensors.time_sensor": ["TimeSensor", "TimeSensorAsync"],
    "airflow.sensors.date_time": ["DateTimeSensor", "DateTimeSensorAsync"],
    "airflow.sensors.external_task": ["ExternalTaskSensor", "ExternalTaskMarker"],
    "airflow.sensors.weekday": ["DayOfWeekSensor"],
    "airflow.utils.weekday": ["WeekDay"],
    "airflow.utils.dates": ["days_ago", "cron_presets", "date_range"],
    "airflow.utils.edgemodifier": ["Label", "EdgeModifier"],
    "airflow.utils.timezone": ["utcnow", "make_aware"],
    "airflow.models.variable": ["Variable"],
    "airflow.models.connection": ["Connection"],
    "airflow.models": ["Variable", "Connection"],
    "airflow.hooks.base": ["BaseHook"],
}


@pytest.fixture
def airflow_hook() -> None:
    from lexis_prefect.airflow import _finder

    _finder.install(force=True)


@pytest.mark.usefixtures("airflow_hook")
@pytest.mark.parametrize("module", sorted(FACADES))
def test_facade_serves(module: str) -> None:
    from lexis_prefect.airflow.standard import dates

    served = importlib.import_module(module)
    for name in FACADES[module]:
        value = getattr(served, name)
        assert value is dates.cron_presets or value.__module__.startswith("lexis_prefect.airflow.standard")
    from airflow.decorators import task

    for name in ("virtualenv", "branch_virtualenv", "external_python", "branch_external_python"):
        assert callable(getattr(task, name))


# --- weekday, dates, branches ----------------------------------------------------------------------


def test_weekday() -> None:
    from lexis_prefect.airflow.standard.weekday import WeekDay

    assert WeekDay.validate_week_day({"monday", WeekDay.SUNDAY}) == {1, 7}
    assert WeekDay.validate_week_day("Friday") == {5}
    with pytest.raises(AttributeError, match='Invalid Week Day passed: "Funday"'):
        WeekDay.validate_week_day("Funday")
    with pytest.raises(TypeError, match="Unsupported Type for week_day parameter"):
        WeekDay.validate_week_day(3)  # type: ignore[arg-type]


def test_dates() -> None:
    from lexis_prefect.airflow.standard import dates

    utc = datetime.timezone.utc
    with pytest.warns(RemovedInAirflow3Warning):
        daily = dates.date_range(datetime.datetime(2016, 1, 1), datetime.datetime(2016, 1, 3), delta="@daily")
    assert [d.day for d in daily] == [1, 2, 3] and daily[0].tzinfo is not None
    with pytest.warns(RemovedInAirflow3Warning):
        back = dates.date_range(datetime.datetime(2016, 1, 10, tzinfo=utc), num=-2, delta=datetime.timedelta(days=1))
    assert [d.day for d in back] == [9, 10]
    assert dates.round_time(datetime.datetime(2015, 9, 16), datetime.timedelta(1), datetime.datetime(2015, 9, 14)) == datetime.datetime(2015, 9, 16)
    assert dates.infer_time_unit([5400]) == "minutes" and dates.scale_time_units([7200], "hours") == [2.0]
    with pytest.warns(RemovedInAirflow3Warning, match="days_ago"):
        two = dates.days_ago(2)
    assert two == pendulum.today("UTC").add(days=-2)


def test_branch_arguments() -> None:
    from lexis_prefect.airflow.standard.datetime_branch import BranchDateTimeOperator, target_times_as_dates

    with pytest.raises(AirflowException, match="Both target_upper and target_lower are None"):
        BranchDateTimeOperator(task_id="b", follow_task_ids_if_true="t", follow_task_ids_if_false="f", target_lower=None, target_upper=None)
    base = datetime.datetime(2024, 5, 1, 12)
    lower, upper = target_times_as_dates(base, datetime.time(22), datetime.time(2))
    assert (lower, upper) == (datetime.datetime(2024, 5, 1, 22), datetime.datetime(2024, 5, 2, 2))


# --- edge labels -------------------------------------------------------------------------------------


def test_label_records_edge_info() -> None:
    from lexis_prefect.airflow.dag import DAG
    from lexis_prefect.airflow.operators import EmptyOperator
    from lexis_prefect.airflow.standard.edgemodifier import Label

    with DAG("labels", schedule=None) as dag:
        a, b, c = (EmptyOperator(task_id=t) for t in "abc")
        a >> Label("yes") >> [b, c]
    assert a.downstream_task_ids == {"b", "c"}
    assert dag.edge_info == {"a": {"b": {"label": "yes"}, "c": {"label": "yes"}}}
    with pytest.raises(TypeError, match="Cannot use edge labels with str"):
        Label("x").set_downstream("b")


# --- connections -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "fields", "back"),
    [
        ("postgresql://u:p@h:5/db", ("postgres", "h", "u", "p", 5, "db", {}), "postgres://u:p@h:5/db"),
        ("my-type://h", ("my_type", "h", None, None, None, "", {}), "my-type://h"),
        (
            "http://https%3A%2F%2Fexample.com/?__extra__=%7B%22a%22%3A+1%7D",
            ("http", "https://example.com", None, None, None, "", {"a": 1}),
            "http://https://example.com/?__extra__=%7B%22a%22%3A+1%7D",
        ),
        ("spark://spark%3A%2F%2Fmaster:7077", ("spark", "spark://master", None, None, 7077, "", {}), "spark://spark://master:7077"),
        ("aws://?region=eu", ("aws", "", None, None, None, "", {"region": "eu"}), "aws:///?region=eu"),
    ],
)
def test_connection_uri(uri: str, fields: tuple, back: str) -> None:
    """Fields and ``get_uri`` as Airflow 2.10.5's Connection gives them for the same URIs."""
    from lexis_prefect.airflow.standard.connections import Connection

    conn = Connection(conn_id="c", uri=uri)
    assert (conn.conn_type, conn.host, conn.login, conn.password, conn.port, conn.schema, conn.extra_dejson) == fields
    assert conn.get_uri() == back


def test_connection_forms_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from lexis_prefect.airflow.standard.connections import BaseHook, Connection

    with pytest.raises(AirflowException, match="You can't mix these two ways"):
        Connection(uri="a://b", host="c")
    with pytest.raises(AirflowException, match="Invalid connection string"):
        Connection(uri="a://b://c://d")
    conn = Connection.from_json('{"conn_type": "postgresql", "port": "5432", "extra": {"k": "v"}}', conn_id="j")
    assert (conn.conn_type, conn.port, conn.extra_dejson) == ("postgres", 5432, {"k": "v"})
    assert json.loads(conn.as_json()) == {"conn_type": "postgres", "port": 5432, "extra": {"k": "v"}}
    with pytest.raises(ValueError, match="Expected integer value for `port`"):
        Connection.from_json('{"port": "x"}')
    monkeypatch.setenv("AIRFLOW_CONN_MY_CONN", "ftp://user:hunter2@files")
    found = BaseHook.get_connection("my_conn")
    assert (found.host, found.password, repr(found)) == ("files", "hunter2", "my_conn")
    with pytest.raises(AirflowException, match="provider hooks are not part of lexis-prefect"):
        BaseHook.get_hook("my_conn")


# --- external task sensor, trigger: arguments ----------------------------------------------------------


def test_external_task_sensor_arguments() -> None:
    from lexis_prefect.airflow.standard.external_task import ExternalTaskMarker, ExternalTaskSensor

    with pytest.raises(AirflowException, match="Duplicate values provided"):
        ExternalTaskSensor(task_id="s", external_dag_id="d", allowed_states=["success"], failed_states=["success"])
    with pytest.raises(ValueError, match="Only one of `external_task_id` or `external_task_ids`"):
        ExternalTaskSensor(task_id="s", external_dag_id="d", external_task_id="a", external_task_ids=["b"])
    with pytest.raises(ValueError, match="Only one of `external_task_group_id` or `external_task_ids`"):
        ExternalTaskSensor(task_id="s", external_dag_id="d", external_task_id="a", external_task_group_id="g")
    with pytest.raises(ValueError, match="when `external_task_id` and `external_task_group_id` is `None`"):
        ExternalTaskSensor(task_id="s", external_dag_id="d", allowed_states=["skipped"])
    with pytest.raises(ValueError, match="Only one of `execution_delta` or `execution_date_fn`"):
        ExternalTaskSensor(task_id="s", external_dag_id="d", execution_delta=datetime.timedelta(1), execution_date_fn=print)
    with pytest.raises(ValueError, match="recursion_depth should be a positive integer"):
        ExternalTaskMarker(task_id="m", external_dag_id="d", external_task_id="t", recursion_depth=0)


def test_trigger_arguments() -> None:
    from lexis_prefect.airflow.standard.trigger_dagrun import TriggerDagRunOperator

    with pytest.raises(TypeError, match="Expected str or datetime.datetime type for parameter 'logical_date'. Got int"):
        TriggerDagRunOperator(task_id="t", trigger_dag_id="d", logical_date=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'done' is not a valid DagRunState"):
        TriggerDagRunOperator(task_id="t", trigger_dag_id="d", allowed_states=["done"])
    op = TriggerDagRunOperator(task_id="t", trigger_dag_id="d", failed_states=[])
    assert (op.allowed_states, op.failed_states) == (["success"], [])


# --- virtualenv: arguments and source ----------------------------------------------------------------


def _plain(x: int) -> int:
    return x


def test_virtualenv_arguments() -> None:
    from lexis_prefect.airflow.standard.virtualenv import ExternalPythonOperator, PythonVirtualenvOperator

    with pytest.raises(ValueError, match="only supports functions for python_callable arg"):
        PythonVirtualenvOperator(task_id="v", python_callable=lambda: 1)

    def gen() -> Any:
        yield 1

    with pytest.raises(ValueError, match="does not support using 'yield'"):
        PythonVirtualenvOperator(task_id="v", python_callable=gen)
    with pytest.raises(AirflowException, match="Unsupported serializer 'json'"):
        PythonVirtualenvOperator(task_id="v", python_callable=_plain, serializer="json")
    with pytest.raises(ValueError, match="Python Path must be defined"):
        ExternalPythonOperator(task_id="e", python="", python_callable=_plain)
    op = PythonVirtualenvOperator(task_id="v", python_callable=_plain, requirements="numpy", system_site_packages=False, serializer="dill")
    assert op._requirements_list() == ["dill", "numpy"]


def test_remove_task_decorator() -> None:
    from lexis_prefect.airflow.standard.venv_build import remove_task_decorator

    source = textwrap.dedent(
        '''\
        @task.virtualenv(
            requirements=["x"],
        )
        @other
        def f(a):
            return a
        '''
    )
    assert remove_task_decorator(source, "@task.virtualenv") == "@other\ndef f(a):\n    return a\n"


# --- with Prefect ---------------------------------------------------------------------------------------


@needs_prefect
def test_variables_prefect_and_environment(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from prefect.variables import Variable as PrefectVariable

    from lexis_prefect.airflow.standard.variables import Variable, prefect_name

    key = f"My.Key-{uuid.uuid4().hex[:6]}"
    assert prefect_name(key) == key.lower().replace(".", "_")
    with pytest.raises(KeyError, match=f"Variable {key} does not exist"):
        Variable.get(key)
    with pytest.raises(KeyError):
        Variable.update(key, "x")
    Variable.set(key, {"a": [1, 2]}, serialize_json=True)
    assert PrefectVariable.get(prefect_name(key)) == json.dumps({"a": [1, 2]}, indent=2)
    assert Variable.get(key, deserialize_json=True) == {"a": [1, 2]}
    Variable.update(key, 42)
    assert Variable.get(key) == "42"
    monkeypatch.setenv(f"AIRFLOW_VAR_{key.upper()}", "from-env")
    assert Variable.get(key) == "from-env"
    Variable.set(key, "db")
    assert "takes precedence over reading from the database" in caplog.text
    monkeypatch.delenv(f"AIRFLOW_VAR_{key.upper()}")
    assert Variable.get(key) == "db"
    assert (Variable.delete(key), Variable.delete(key)) == (1, 0)
    assert Variable.setdefault(key, "first") == "first" and Variable.get(key) == "first"
    PrefectVariable.set(prefect_name(key), [1, 2], overwrite=True)  # set from Prefect as JSON
    assert Variable.get(key) == "[1, 2]" and Variable.get(key, deserialize_json=True) == [1, 2]


@needs_prefect
def test_connection_from_secret_block(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from prefect.blocks.system import Secret

    from lexis_prefect.airflow.exceptions import AirflowNotFoundException
    from lexis_prefect.airflow.standard.connections import BaseHook, block_name

    suffix = uuid.uuid4().hex[:6]
    uri_id, json_id = f"Warehouse_{suffix}", f"api.{suffix}"
    assert block_name(uri_id) == f"airflow-conn-warehouse-{suffix}"
    Secret(value="postgres://bob:T0p-s3cret@db:5432/sales").save(block_name(uri_id))
    Secret(value={"conn_type": "http", "host": "api", "password": "T0p-s3cret", "extra": {"v": 1}}).save(block_name(json_id))
    caplog.set_level("DEBUG")
    conn = BaseHook.get_connection(uri_id)
    assert (conn.login, conn.password, conn.host, conn.schema) == ("bob", "T0p-s3cret", "db", "sales")
    api = BaseHook.get_connection(json_id)
    assert (api.conn_type, api.host, api.extra_dejson) == ("http", "api", {"v": 1})
    monkeypatch.setenv(f"AIRFLOW_CONN_{uri_id.upper()}", "mysql://env-host")
    assert BaseHook.get_connection(uri_id).host == "env-host"  # the environment comes first
    assert "T0p-s3cret" not in caplog.text
    with pytest.raises(AirflowNotFoundException, match=r"The conn_id `nope_\w+` isn't defined"):
        BaseHook.get_connection(f"nope_{suffix}")


def _write_dags(folder: Path, **files: str) -> None:
    for name, text in files.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text))


TARGET = """
    import pendulum
    from airflow import DAG
    from airflow.operators.python import PythonOperator

    def check(dag_run, params):
        if dag_run.conf.get("fail"):
            raise RuntimeError("asked to fail")
        print("conf", dag_run.conf, "params", params)

    with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), params={{"size": 1}}) as dag:
        PythonOperator(task_id="check", python_callable=check)
"""


@needs_prefect
def test_trigger_in_process_and_wait_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under dag.test the other DAG runs in process; the sensor then finds its run by logical date."""
    from lexis_prefect.airflow.loader import load_dag

    target = f"target_{uuid.uuid4().hex[:6]}"
    _write_dags(
        tmp_path,
        target=TARGET.format(dag_id=target),
        parent=f"""
            import pendulum
            from airflow import DAG
            from airflow.operators.trigger_dagrun import TriggerDagRunOperator
            from airflow.sensors.external_task import ExternalTaskSensor

            WHEN = "2024-03-01T00:00:00+00:00"
            with DAG("parent", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:
                ok = TriggerDagRunOperator(task_id="ok", trigger_dag_id="{target}", conf={{"size": 5}},
                                           logical_date=WHEN, wait_for_completion=True, poke_interval=1)
                ok >> ExternalTaskSensor(task_id="sensed", external_dag_id="{target}", external_task_id="check",
                                         execution_date_fn=lambda dt: pendulum.parse(WHEN), poke_interval=1, timeout=60)
                TriggerDagRunOperator(task_id="bad", trigger_dag_id="{target}", conf={{"fail": True}},
                                      wait_for_completion=True, poke_interval=1)
                TriggerDagRunOperator(task_id="bad_no_wait", trigger_dag_id="{target}", conf={{"fail": True}})
                TriggerDagRunOperator(task_id="flipped", trigger_dag_id="{target}", conf={{"fail": True}},
                                      wait_for_completion=True, allowed_states=["failed"], failed_states=["success"])
        """,
    )
    result = load_dag(tmp_path / "parent.py").test()
    assert result.tasks == {"ok": "success", "sensed": "success", "bad": "failed", "bad_no_wait": "success", "flipped": "success"}
    assert result.xcom_pull("ok", "trigger_run_id") == "manual__2024-03-01T00:00:00+00:00"
    assert result.xcom_pull("ok", "trigger_logical_date_iso") == "2024-03-01T00:00:00+00:00"


@needs_prefect
def test_external_task_group(tmp_path: Path) -> None:
    """A wait for a task group of a DAG (here: the run itself), which Airflow's dag.test cannot show."""
    from lexis_prefect.airflow.loader import load_dag

    _write_dags(
        tmp_path,
        grouped="""
            import pendulum
            from airflow import DAG
            from airflow.exceptions import AirflowSkipException
            from airflow.operators.empty import EmptyOperator
            from airflow.operators.python import PythonOperator
            from airflow.sensors.external_task import ExternalTaskSensor
            from airflow.utils.task_group import TaskGroup

            def skip():
                raise AirflowSkipException("skip")

            with DAG("grouped", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:
                with TaskGroup("grp") as grp:
                    EmptyOperator(task_id="one") >> EmptyOperator(task_id="two")
                with TaskGroup("half") as half:
                    EmptyOperator(task_id="one") >> PythonOperator(task_id="two", python_callable=skip)
                grp >> ExternalTaskSensor(task_id="wait_grp", external_dag_id="grouped", external_task_group_id="grp",
                                          poke_interval=1, timeout=60)
                half >> ExternalTaskSensor(task_id="wait_half", external_dag_id="grouped", external_task_group_id="half",
                                           skipped_states=["skipped"], poke_interval=1, timeout=60)
        """,
    )
    result = load_dag(tmp_path / "grouped.py").test()
    assert (result.tasks["wait_grp"], result.tasks["wait_half"]) == ("success", "skipped")


@needs_prefect
def test_trigger_through_a_deployment(tmp_path: Path) -> None:
    """With a deployment, outside dag.test: a flow run of it, named by the logical date, declared conf only."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterId

    from lexis_prefect.airflow.loader import load_dag

    target = f"deployed_{uuid.uuid4().hex[:6]}"
    _write_dags(tmp_path, target=TARGET.format(dag_id=target))
    target_dag = load_dag(tmp_path / "target.py")
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(target)
        deployment_id = client.create_deployment(
            flow_id=flow_id, name=target, entrypoint="target.py:dag", parameter_openapi_schema=target_dag.parameters.model_dump()
        )
    _write_dags(
        tmp_path,
        parent=f"""
            import pendulum
            from airflow import DAG
            from airflow.operators.trigger_dagrun import TriggerDagRunOperator

            WHEN = "2024-04-01T10:00:00+00:00"
            with DAG("parent_deployed", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")) as dag:
                first = TriggerDagRunOperator(task_id="first", trigger_dag_id="{target}", conf={{"size": 7, "other": 1}},
                                              logical_date=WHEN, trigger_run_id="my-run")
                again = TriggerDagRunOperator(task_id="again", trigger_dag_id="{target}", logical_date=WHEN)
                skip = TriggerDagRunOperator(task_id="skip", trigger_dag_id="{target}", logical_date=WHEN,
                                             skip_when_already_exists=True)
                reset = TriggerDagRunOperator(task_id="reset", trigger_dag_id="{target}", logical_date=WHEN,
                                              reset_dag_run=True)
                first >> [again, skip, reset]
        """,
    )
    parent = load_dag(tmp_path / "parent.py")
    state = parent(return_state=True)  # a plain flow run: not dag.test, so the deployment is used
    assert state.is_failed()  # "again" failed: DagRunAlreadyExists
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
        parent_run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        task_runs = {r.name: r.state.name for r in client.read_task_runs(flow_run_filter=parent_run) if r.name in parent.task_ids}
    assert sorted(r.name for r in runs) == ["manual__2024-04-01T10:00:00+00:00"] * 2  # first, then reset
    first_run = next(r for r in runs if "airflow_run_id:my-run" in r.tags)
    assert first_run.parameters == {"size": 7}
    assert task_runs == {"first": "Completed", "again": "Failed", "skip": "Skipped", "reset": "Completed"}


@needs_prefect
def test_virtualenv_cache_is_reused(tmp_path: Path) -> None:
    """venv_cache_path: the environment is built once, then reused (its marker is not rewritten)."""
    from lexis_prefect.airflow.dag import DAG
    from lexis_prefect.airflow.standard.virtualenv import PythonVirtualenvOperator

    def where() -> str:
        import sys

        return sys.prefix

    def build() -> Any:
        with DAG("venv_cache", schedule=None) as dag:
            PythonVirtualenvOperator(task_id="where", python_callable=where, venv_cache_path=str(tmp_path), serializer="cloudpickle")
        return dag

    first = build().test()
    markers = list(tmp_path.glob("venv-*/install_complete_marker.json"))
    assert len(markers) == 1 and first.xcom_pull("where") == str(markers[0].parent)
    built = markers[0].stat().st_mtime_ns
    second = build().test()
    assert second.xcom_pull("where") == str(markers[0].parent) and markers[0].stat().st_mtime_ns == built
    assert os.path.exists(markers[0].parent / "bin" / "python") and sys.prefix != str(markers[0].parent)
