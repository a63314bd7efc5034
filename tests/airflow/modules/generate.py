"""Regenerate the lists of Airflow module paths that DAG files import for authoring.

Run with the interpreter of a virtualenv holding the real Airflow (never the project's)::

    <airflow-2.10.5-venv>/bin/python tests/airflow/modules/generate.py   # writes airflow2.txt
    <airflow-3.x-venv>/bin/python tests/airflow/modules/generate.py      # writes airflow3.txt

The list is every public (no ``_`` in any part) module under the authoring packages below, plus
the commonly imported ``airflow.utils`` modules; ``test_modules.py`` checks that each one is served
by the shim or fails at import naming the module and the coverage page.
"""

from __future__ import annotations

import pkgutil
import sys
from importlib import import_module
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Packages walked whole, by Airflow major.
PACKAGES = {
    2: ["airflow.operators", "airflow.sensors", "airflow.decorators", "airflow.models", "airflow.timetables",
        "airflow.datasets"],
    3: ["airflow.sdk", "airflow.providers.standard.operators", "airflow.providers.standard.sensors",
        "airflow.providers.standard.decorators"],
}  # fmt: skip
#: Single modules DAG files import, by Airflow major.
MODULES = {
    2: ["airflow", "airflow.exceptions", "airflow.hooks.base", "airflow.macros", "airflow.utils.context",
        "airflow.utils.dates", "airflow.utils.edgemodifier", "airflow.utils.helpers", "airflow.utils.state",
        "airflow.utils.task_group", "airflow.utils.timezone", "airflow.utils.trigger_rule", "airflow.utils.types",
        "airflow.utils.weekday"],
    3: ["airflow.providers.standard.utils.weekday"],
}  # fmt: skip
#: Walked but not for DAG authoring (the metadata database, internals).
SKIP_PARTS = {"example_dags", "tests", "api", "execution_time", "serde", "io", "coordinators", "observability",
              "definitions", "crypto", "configuration", "plugins_manager", "providers_manager_runtime", "listener",
              "log", "module_loading", "yaml", "lineage", "types", "state"}  # fmt: skip


def _walk(package: str) -> list[str]:
    found = [package]
    module = import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or SKIP_PARTS.intersection(parts[len(package.split(".")):]):
            continue
        found.append(info.name)
    return found


def main() -> int:
    import airflow

    major = int(airflow.__version__.split(".")[0])
    if getattr(airflow, "__lexis_prefect_shim__", False):
        print("run me with a real Airflow's interpreter", file=sys.stderr)
        return 2
    paths = set(MODULES[major])
    for package in PACKAGES[major]:
        paths.update(_walk(package))
    out = HERE / f"airflow{major}.txt"
    header = f"# public Airflow {airflow.__version__} module paths that DAG files import (generate.py)\n"
    out.write_text(header + "".join(f"{p}\n" for p in sorted(paths)))
    print(f"{out.name}: {len(paths)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
