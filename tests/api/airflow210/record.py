"""Record Airflow 2.10's own REST API v1 answers, for test_conformance.py to compare the face's with.

Run with an Airflow 2.10.x installation (not a dependency of lexis-prefect), from the repository root:

    python -m venv /tmp/af210 && /tmp/af210/bin/pip install "apache-airflow==2.10.5"
    /tmp/af210/bin/python tests/api/airflow210/record.py

It makes a throwaway AIRFLOW_HOME (SQLite), migrates it, loads dag.py beside this file, and asks the
webserver's Flask app in process (its test client): with the `default` auth backend for the answers,
and with `basic_auth` for the 401. Writes recorded.json beside this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="af210-record-"))
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(HERE / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__API__AUTH_BACKENDS="airflow.api.auth.backend.default",
        AIRFLOW__WEBSERVER__SECRET_KEY="recording",
    )
    # An anonymous caller may do everything: no user to create (a FAB setting, read from AIRFLOW_HOME).
    (home / "webserver_config.py").write_text('AUTH_ROLE_PUBLIC = "Admin"\n')
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, capture_output=True)
    from airflow.models import DagBag

    DagBag(dag_folder=str(HERE / "dags"), include_examples=False).sync_to_db()
    from airflow.www.app import create_app

    app = create_app(testing=True)
    client = app.test_client()
    answers: dict[str, dict] = {}

    def ask(key: str, method: str, path: str, body: dict | None = None) -> None:
        response = client.open(f"/api/v1{path}", method=method, json=body)
        answers[key] = {"status": response.status_code, "body": response.get_json(silent=True)}

    dag = "api_conformance"
    conf = {"job1": {"name": "recorded", "walltime_limit": 60}, "access_token": "not-a-real-token"}
    ask("health", "GET", "/health")
    ask("version", "GET", "/version")
    ask("dags", "GET", "/dags")
    ask("dags_pattern_none", "GET", "/dags?dag_id_pattern=no-such-dag")
    ask("dags_negative_limit", "GET", "/dags?limit=-1")
    ask("dag", "GET", f"/dags/{dag}")
    ask("dag_details", "GET", f"/dags/{dag}/details")
    ask("dag_unknown", "GET", "/dags/no_such_dag")
    ask("patch_dag_mask", "PATCH", f"/dags/{dag}?update_mask=description", {"is_paused": False})
    ask("post_bad_conf", "POST", f"/dags/{dag}/dagRuns",
        {"conf": {**conf, "job1": {"name": "bad", "walltime_limit": -1}}, "dag_run_id": "bad_conf"})
    ask("post", "POST", f"/dags/{dag}/dagRuns", {"conf": conf, "dag_run_id": "recorded_run"})
    ask("post_again", "POST", f"/dags/{dag}/dagRuns", {"conf": conf, "dag_run_id": "recorded_run"})
    ask("post_unknown_dag", "POST", "/dags/no_such_dag/dagRuns", {})
    ask("post_clash", "POST", f"/dags/{dag}/dagRuns",
        {"logical_date": "2026-01-01T00:00:00+00:00", "execution_date": "2026-01-02T00:00:00+00:00"})
    ask("dag_runs", "GET", f"/dags/{dag}/dagRuns")
    ask("dag_run", "GET", f"/dags/{dag}/dagRuns/recorded_run")
    ask("dag_run_unknown", "GET", f"/dags/{dag}/dagRuns/no_such_run")
    ask("task_instances", "GET", f"/dags/{dag}/dagRuns/recorded_run/taskInstances")
    ask("task_instance", "GET", f"/dags/{dag}/dagRuns/recorded_run/taskInstances/start")
    ask("patch_bogus", "PATCH", f"/dags/{dag}/dagRuns/recorded_run", {"state": "bogus"})
    ask("patch_unknown", "PATCH", f"/dags/{dag}/dagRuns/no_such_run", {"state": "failed"})
    ask("patch_failed", "PATCH", f"/dags/{dag}/dagRuns/recorded_run", {"state": "failed"})
    ask("delete", "DELETE", f"/dags/{dag}/dagRuns/recorded_run")
    ask("unknown_path", "GET", "/no/such/path")

    (home / "webserver_config.py").write_text("")  # no public role: an anonymous caller is refused
    os.environ["AIRFLOW__API__AUTH_BACKENDS"] = "airflow.api.auth.backend.basic_auth"
    from airflow.configuration import conf as airflow_conf

    airflow_conf.set("api", "auth_backends", "airflow.api.auth.backend.basic_auth")
    secured = create_app(testing=True).test_client()
    response = secured.get("/api/v1/dags")
    answers["unauthenticated"] = {"status": response.status_code, "body": response.get_json(silent=True),
                                  "www_authenticate": response.headers.get("WWW-Authenticate")}

    import airflow

    recorded = {"airflow_version": airflow.__version__, "answers": answers}
    text = json.dumps(recorded, indent=2, sort_keys=True, default=str)
    # No path of the recording machine: the DAG file's folder, and the token that signs it.
    for answer in answers.values():
        for dag in _dags(answer["body"]):
            text = text.replace(json.dumps(dag["file_token"]), json.dumps("<file token>"))
    text = text.replace(str(HERE / "dags"), "<dags folder>")
    (HERE / "recorded.json").write_text(text + "\n")
    print(f"recorded {len(answers)} answers of Airflow {airflow.__version__}")


def _dags(body: object) -> list[dict]:
    if not isinstance(body, dict):
        return []
    if "file_token" in body:
        return [body]
    return [d for d in body.get("dags", []) if isinstance(d, dict) and "file_token" in d]


if __name__ == "__main__":
    main()
