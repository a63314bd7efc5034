"""What the shim's virtualenv operators cost: building an environment, and one call through it.

Prints, for the interpreter running this script (no Prefect server involved):

- ``build``: a throwaway environment as ``PythonVirtualenvOperator`` builds one without
  requirements (stdlib ``venv``, no pip, system site packages linked), median of ``--repeat``;
- ``call``: one function call in an existing environment (script written, arguments pickled,
  interpreter started, result unpickled), median of ``--repeat``.

Airflow 2.10.5 builds with the ``virtualenv`` package (pip, setuptools and wheel seeded); its
figure is printed when ``--airflow-python`` names an interpreter that has ``virtualenv``.

    python bench/airflow_venv.py --repeat 5 [--airflow-python <airflow-venv>/bin/python]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def _median(samples: list[float]) -> str:
    return f"{statistics.median(samples):.2f} s (all: {', '.join(f'{s:.2f}' for s in samples)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--airflow-python", help="an interpreter with the virtualenv package (Airflow's build)")
    args = parser.parse_args()

    from lexis_prefect.airflow.standard import venv_build
    from lexis_prefect.airflow.standard.virtualenv import _BasePythonVirtualenvOperator

    log = logging.getLogger("bench")
    builds, calls, airflow_builds = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            venv = Path(tmp) / f"venv{i}"
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text("")
            started = time.perf_counter()
            venv_build.prepare_virtualenv(venv, None, True, str(requirements), None, None, log)
            builds.append(time.perf_counter() - started)
        python = Path(tmp) / "venv0" / "bin" / "python"

        def add(a, b):
            return a + b

        op = _BasePythonVirtualenvOperator.__new__(_BasePythonVirtualenvOperator)
        op.__dict__.update(
            python_callable=add, op_args=[1, 2], op_kwargs={}, templates_dict=None, string_args=[], serializer="pickle",
            expect_airflow=True, skip_on_exit_code=[], env_vars=None, inherit_env=True,
        )  # fmt: skip
        op._dag_module_name = lambda: None  # type: ignore[method-assign]
        for _ in range(args.repeat):
            started = time.perf_counter()
            assert op._execute_python_callable_in_subprocess(python) == 3
            calls.append(time.perf_counter() - started)
        if args.airflow_python:
            for i in range(args.repeat):
                target = Path(tmp) / f"airflow{i}"
                started = time.perf_counter()
                cmd = [args.airflow_python, "-m", "virtualenv", str(target), "--system-site-packages", "--python=python3"]
                subprocess.run(cmd, check=True, capture_output=True)
                airflow_builds.append(time.perf_counter() - started)
    print(f"build (shim, stdlib venv, no requirements): {_median(builds)}")
    print(f"call through an existing environment:        {_median(calls)}")
    if airflow_builds:
        print(f"build (Airflow's way, virtualenv package):   {_median(airflow_builds)}")


if __name__ == "__main__":
    main()
