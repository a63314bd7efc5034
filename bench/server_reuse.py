"""`python dag.py` on a temporary Prefect server (cold and warm Prefect home) vs a running local one.

Each figure is the wall time of one `python <dag file>` subprocess (its `dag.test()` footer), as a
user iterating on a DAG pays it:

- **cold**: a fresh PREFECT_HOME, nothing running: Prefect starts a temporary server, creating its
  database first;
- **warm**: the same PREFECT_HOME again: a temporary server, database already there;
- **running server**: a `prefect server start` (started here, on a free port, and stopped at the end)
  is found by `lexis_prefect.local_server` and reused.

    python bench/server_reuse.py [--repeat 3] [--dag tests/airflow/dags/chain_and_edges.py] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    # a cold start on a loaded 2-core machine can pass Prefect's 20 s default: measure it rather than fail
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", CONFORMANCE_TMP=str(home),
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120", **extra)  # fmt: skip
    return env


def _run_dag(dag_file: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(dag_file)], env=env, cwd=env["PREFECT_HOME"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or "dag.test: DAG" not in proc.stderr:
        raise SystemExit(f"{dag_file} failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(home: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("the Prefect server did not start within 120 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dag", type=Path, default=REPO / "tests" / "airflow" / "dags" / "chain_and_edges.py")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"cold": [], "warm": [], "running server": []}
    no_reuse = {"LEXIS_PREFECT_REUSE_SERVER": "false"}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-reuse-") as scratch:
            home = Path(scratch)
            figures["cold"].append(_run_dag(args.dag, _env(home, **no_reuse))[0])
            figures["warm"].append(_run_dag(args.dag, _env(home, **no_reuse))[0])
    with tempfile.TemporaryDirectory(prefix="bench-reuse-server-") as scratch:
        server, url = _start_server(Path(scratch))
        try:
            reuse = {"LEXIS_PREFECT_REUSE_SERVER": "true", "LEXIS_PREFECT_LOCAL_SERVER": url}
            with tempfile.TemporaryDirectory(prefix="bench-reuse-client-") as client:
                for _ in range(args.repeat):
                    wall, log = _run_dag(args.dag, _env(Path(client), **reuse))
                    if f"Using the Prefect server running at {url}" not in log:
                        raise SystemExit(f"the run did not reuse the server:\n{log[-3000:]}")
                    figures["running server"].append(wall)
        finally:
            server.terminate()
            server.wait(timeout=30)
    if args.json:
        print(json.dumps(figures))
    print(f"{'python ' + args.dag.name:<40} {'median s':>9}  all runs s")
    for name, walls in figures.items():
        print(f"{name:<40} {statistics.median(walls):>9.2f}  {', '.join(f'{w:.2f}' for w in walls)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
