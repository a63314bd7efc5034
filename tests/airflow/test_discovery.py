"""Finding DAGs as Airflow 2.4+ does: auto-registered DAGs (never bound to a module-level name).

Airflow's rule (``DagContext.pop_context_managed_dag``, ``DagBag._process_modules``): every DAG
leaving a ``with`` block (``@dag`` uses one) while a file is imported is found besides the file's
top-level DAGs, unless ``auto_register=False``. What real Airflow's DagBag finds in the
conformance files is recorded in ``expected/discovery_*.json`` (``found``); here the same files go
through the shim's loader, its CLI, and Prefect's own entrypoint loading (``prefect deploy``, a
worker), which reaches an unbound DAG as ``file.py:<dag_id>``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from prefect.flows import load_flow_from_entrypoint
from typer.testing import CliRunner

from lexis_prefect.airflow.loader import DagFileError, load_dags
from lexis_prefect.cli import app

HERE = Path(__file__).resolve().parent
DAGS = HERE / "dags"


def _found(stem: str) -> list[str]:
    return json.loads((HERE / "expected" / f"{stem}.json").read_text())["found"]


@pytest.mark.parametrize("stem", ["discovery_decorator", "discovery_with_block"])
def test_the_loader_finds_what_airflows_dagbag_found(stem: str) -> None:
    assert sorted(load_dags(DAGS / f"{stem}.py")) == _found(stem)


def test_the_cli_lists_an_unbound_dag() -> None:
    result = CliRunner().invoke(app, ["airflow", "list", str(DAGS / "discovery_with_block.py"), "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert list(listing) == ["discovery_with_block"]
    assert listing["discovery_with_block"]["edges"] == [["start", "work"]]


def test_a_prefect_entrypoint_names_an_unbound_dag_by_its_id() -> None:
    flow = load_flow_from_entrypoint(f"{DAGS / 'discovery_with_block'}.py:discovery_with_block", use_placeholder_flow=False)
    assert (flow.dag_id, flow.name) == ("discovery_with_block", "discovery_with_block")


def test_an_unbound_dag_decorator_dag_is_reached_through_its_function() -> None:
    """``@dag def discovery_decorator(...)``: that name is the function, its ``.dag`` the DAG."""
    flow = load_flow_from_entrypoint(f"{DAGS / 'discovery_decorator'}.py:discovery_decorator.dag", use_placeholder_flow=False)
    assert (flow.dag_id, flow.name) == ("discovery_decorator", "discovery_decorator")


def test_prefect_deploy_builds_a_deployment_from_the_entrypoint() -> None:
    from prefect.deployments.runner import RunnerDeployment

    entrypoint = f"{DAGS / 'discovery_decorator'}.py:discovery_decorator.dag"
    deployment = RunnerDeployment.from_entrypoint(entrypoint, name="d")
    assert deployment.flow_name == "discovery_decorator"
    assert deployment.entrypoint.endswith("discovery_decorator.py:discovery_decorator.dag")
    assert deployment._parameter_openapi_schema.properties["n"]["default"] == 3


def test_auto_register_false_is_not_found_and_not_an_entrypoint() -> None:
    from prefect.exceptions import MissingFlowError

    assert "discovery_hidden" not in load_dags(DAGS / "discovery_with_block.py")
    with pytest.raises(MissingFlowError):
        load_flow_from_entrypoint(f"{DAGS / 'discovery_with_block'}.py:discovery_hidden", use_placeholder_flow=False)


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "dag_file.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_a_dotted_dag_id_is_an_entrypoint_by_its_flow_name(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator

        with DAG("team.etl-daily", schedule=None):
            EmptyOperator(task_id="e")
        """,
    )
    flow = load_flow_from_entrypoint(f"{path}:team_etl_daily", use_placeholder_flow=False)
    assert flow.dag_id == "team.etl-daily"


def test_a_module_getattr_of_the_file_itself_is_kept(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator

        def __getattr__(name):
            return "own " + name

        with DAG("unbound", schedule=None):
            EmptyOperator(task_id="e")
        """,
    )
    assert list(load_dags(path)) == ["unbound"]


def test_a_dag_built_outside_any_import_is_not_registered() -> None:
    """As in Airflow: registration happens only while a file is imported (a DagBag loads it)."""
    import sys

    from lexis_prefect.airflow import _current
    from lexis_prefect.airflow.dag import DAG

    with DAG("built_in_a_function", schedule=None):
        pass
    assert not any("built_in_a_function" in _current.registered_dags(m) for m in list(sys.modules.values()))


def test_a_file_without_any_dag_says_where_it_looked(tmp_path: Path) -> None:
    path = _write(tmp_path, "from airflow import DAG\nDAG('never_in_a_with_block', schedule=None)\n")
    with pytest.raises(DagFileError, match="none auto-registered"):
        load_dags(path)


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_loaded_from_the_entrypoint_runs_as_a_deployment_run_would(tmp_path, monkeypatch) -> None:
    """A worker loads the entrypoint with Prefect's loader and calls the flow with the run's parameters."""
    monkeypatch.chdir(tmp_path)
    flow = load_flow_from_entrypoint(f"{DAGS / 'discovery_decorator'}.py:discovery_decorator.dag", use_placeholder_flow=False)
    state = flow(n=4, return_state=True)
    assert state.is_completed(), state.message
