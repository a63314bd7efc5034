"""Building and running the Python environments of the virtualenv operators.

Ported from ``airflow/utils/python_virtualenv.py``, ``python_virtualenv_script.jinja2``,
``airflow/utils/process_utils.py`` ``execute_in_subprocess`` and ``airflow/utils/decorators.py``
``remove_task_decorator`` (2.10.5), with two deliberate differences (docs/airflow-compat.md):

- the environment is made with the standard library's ``venv`` from the interpreter that runs the
  DAG (``python<version>`` from ``PATH`` when ``python_version`` is given), not with the
  ``virtualenv`` package from ``python`` on ``PATH``; pip is installed into it only when there are
  requirements to install, which makes an environment without requirements cost a fraction of a
  second;
- ``system_site_packages=True`` also makes the site-packages of the environment running the DAG
  visible (a ``.pth`` file), when the Python version is the same: that is where Airflow's own
  packages live for Airflow, and where pendulum, Prefect and the shim live here, so the
  context values Airflow passes (pendulum dates, params) unpickle in the child as in Airflow.
"""

from __future__ import annotations

import ast
import logging
import os
import shlex
import shutil
import site
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "execute_in_subprocess",
    "prepare_virtualenv",
    "remove_task_decorator",
    "write_python_script",
]

#: The script run in the environment (Airflow's python_virtualenv_script.jinja2, as a format string).
_SCRIPT = '''from __future__ import annotations

import {pickling_library}
import sys
{airflow_macros}
# Script
{python_callable_source}
{dag_module}
{load_args}
# Read string args
with open(sys.argv[3], "r") as file:
    virtualenv_string_args = list(map(lambda x: x.strip(), list(file)))


try:
    res = {python_callable}(*arg_dict["args"], **arg_dict["kwargs"])
except Exception as e:
    with open(sys.argv[4], "w") as file:
        file.write(str(e))
    raise

# Write output
with open(sys.argv[2], "wb") as file:
    if res is not None:
        {pickling_library}.dump(res, file)
'''

# Airflow integrates plugin macros before unpickling the context, when Airflow is importable.
_AIRFLOW_MACROS = '''
if sys.version_info >= (3,6):
    try:
        from airflow.plugins_manager import integrate_macros_plugins
        integrate_macros_plugins()
    except ImportError:
        pass
'''

# The callable's module registered under its DAG-module name, so that pickled references to the
# DAG file's functions resolve in the child (Airflow's "modified_dag_module_name" block).
_DAG_MODULE = '''
import types

_dag_module = types.ModuleType({module_name!r})
_dag_module.{python_callable} = {python_callable}
sys.modules[{module_name!r}] = _dag_module
'''


def write_python_script(
    *,
    filename: str | os.PathLike[str],
    python_callable: str,
    python_callable_source: str,
    pickling_library: str,
    has_args: bool,
    expect_airflow: bool,
    dag_module_name: str | None = None,
) -> None:
    """Write the script that loads the pickled arguments, calls the function and pickles the result."""
    if has_args:
        load_args = f'with open(sys.argv[1], "rb") as file:\n    arg_dict = {pickling_library}.load(file)\n'
    else:
        load_args = 'arg_dict = {"args": [], "kwargs": {}}\n'
    dag_module = (
        _DAG_MODULE.format(module_name=dag_module_name, python_callable=python_callable) if dag_module_name else ""
    )
    Path(filename).write_text(
        _SCRIPT.format(
            pickling_library=pickling_library,
            airflow_macros=_AIRFLOW_MACROS if expect_airflow else "",
            python_callable_source=python_callable_source,
            dag_module=dag_module,
            load_args=load_args,
            python_callable=python_callable,
        )
    )


def execute_in_subprocess(cmd: list[str], log: Any, env: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
    """Run ``cmd``, every output line to ``log``; a non-zero exit raises ``CalledProcessError``."""
    log.info("Executing cmd: %s", " ".join(shlex.quote(c) for c in cmd))
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0, close_fds=True, env=env, cwd=cwd
    ) as proc:
        log.info("Output:")
        if proc.stdout:
            with proc.stdout:
                for line in iter(proc.stdout.readline, b""):
                    log.info("%s", line.decode(errors="backslashreplace").rstrip())
        exit_code = proc.wait()
    if exit_code != 0:
        raise subprocess.CalledProcessError(exit_code, cmd)


def _interpreter(python_version: str | None) -> str:
    """The Python to build from: this one, or ``python<version>`` found on ``PATH``."""
    if not python_version or str(python_version) == "{}.{}".format(*sys.version_info[:2]):
        return sys.executable
    found = shutil.which(f"python{python_version}")
    if found is None:
        raise FileNotFoundError(f"python{python_version} (python_version={python_version!r}) is not on PATH")
    return found


def _same_python(python_version: str | None) -> bool:
    return not python_version or str(python_version) in (str(sys.version_info[0]), "{}.{}".format(*sys.version_info[:2]))


def _generate_pip_conf(conf_file: Path, index_urls: list[str]) -> None:
    if index_urls:
        pip_conf_options = f"index-url = {index_urls[0]}"
        if len(index_urls) > 1:
            pip_conf_options += f"\nextra-index-url = {' '.join(x for x in index_urls[1:])}"
    else:
        pip_conf_options = "no-index = true"
    conf_file.write_text(f"[global]\n{pip_conf_options}")


def _link_parent_site_packages(venv_directory: Path) -> None:
    """Make this environment's site-packages (and their ``.pth`` files) visible in the new one."""
    parents = [p for p in site.getsitepackages() if os.path.isdir(p)]
    targets = list(venv_directory.glob("lib/python*/site-packages"))
    for target in targets:
        lines = [f"import site; site.addsitedir({p!r})" for p in parents]
        (target / "_lexis_prefect_parent_site.pth").write_text("\n".join(lines) + "\n")


def prepare_virtualenv(
    venv_directory: str | os.PathLike[str],
    python_version: str | None,
    system_site_packages: bool,
    requirements_file_path: str | None,
    pip_install_options: list[str] | None,
    index_urls: list[str] | None,
    log: Any = None,
) -> str:
    """Create the environment and install the requirements; the path of its Python."""
    log = log or logging.getLogger(__name__)
    venv = Path(venv_directory)
    requirements = Path(requirements_file_path).read_text().strip() if requirements_file_path else ""
    if index_urls is not None:
        _generate_pip_conf(venv / "pip.conf", index_urls)
    cmd = [_interpreter(python_version), "-m", "venv", str(venv)]
    if system_site_packages:
        cmd.append("--system-site-packages")
    if not requirements:
        cmd.append("--without-pip")
    execute_in_subprocess(cmd, log)
    if system_site_packages and _same_python(python_version):
        _link_parent_site_packages(venv)
    if requirements:
        # pip reads <venv>/pip.conf (the index_urls) as its site configuration
        execute_in_subprocess(
            [str(venv / "bin" / "pip"), "install", *(pip_install_options or []), "-r", str(requirements_file_path)],
            log,
        )
    return str(venv / "bin" / "python")


def remove_task_decorator(python_source: str, task_decorator_name: str) -> str:
    """The function's source without its ``@task...``, ``@setup`` and ``@teardown`` decorators."""
    tree = ast.parse(python_source)
    function = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if function is None:
        return python_source
    lines = python_source.splitlines(keepends=True)
    drop: set[int] = set()
    names = (task_decorator_name.lstrip("@"), "setup", "teardown")
    for decorator in function.decorator_list:
        text = ast.get_source_segment(python_source, decorator) or ""
        if text.startswith(names):
            drop.update(range(decorator.lineno - 1, (decorator.end_lineno or decorator.lineno)))
    return "".join(line for i, line in enumerate(lines) if i not in drop)
