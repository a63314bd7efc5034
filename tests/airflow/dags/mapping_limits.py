"""max_active_tis_per_dagrun bounds how many map indexes run at once; retries are per index."""

import os
import re
import tempfile
import time
from pathlib import Path

import pendulum

from airflow.decorators import dag, task
from airflow.operators.python import get_current_context

DAG_ID = "mapping_limits"


def _file(name):
    run = re.sub(r"[^A-Za-z0-9_.-]", "_", get_current_context()["run_id"])
    return Path(os.environ.get("CONFORMANCE_TMP", tempfile.gettempdir())) / f"{DAG_ID}-{run}-{name}"


def _add(name, delta):
    path = _file(name)
    value = (int(path.read_text()) if path.exists() else 0) + delta
    path.write_text(str(value))
    return value


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, dag_id=DAG_ID, max_active_tasks=4)
def mapping_limits():
    @task(max_active_tis_per_dagrun=1)
    def one_at_a_time(x):
        running = _add("running", 1)
        peak = _file("peak")
        if running > (int(peak.read_text()) if peak.exists() else 0):
            peak.write_text(str(running))
        time.sleep(0.2)
        _add("running", -1)
        return x

    @task(retries=2, retry_delay=0)
    def flaky(x):
        if _add(f"tries-{x}", 1) < 2 and x != 2:
            raise RuntimeError("first try fails")
        if x == 2:
            raise RuntimeError("index 2 always fails")
        return x

    @task(trigger_rule="all_done")
    def check(values):
        assert sorted(values) == [0, 1, 2, 3], list(values)
        assert _file("peak").read_text() == "1", _file("peak").read_text()
        assert _file("tries-0").read_text() == "2"
        assert _file("tries-2").read_text() == "3"

    done = one_at_a_time.expand(x=[0, 1, 2, 3])
    tried = flaky.expand(x=[0, 1, 2])
    [done, tried] >> check(done)


dag = mapping_limits()
