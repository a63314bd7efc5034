"""Python callables in another interpreter (``airflow.operators.python``, 2.10.5):
``PythonVirtualenvOperator``, ``ExternalPythonOperator``, their ``Branch...`` forms, and the
``@task.virtualenv`` / ``@task.external_python`` decorators.

As in Airflow, the function's source (decorators removed) is written into a script that runs in
the other interpreter; ``op_args``/``op_kwargs`` and the context keys the function names go over
pickled (``pickle``, ``cloudpickle`` or ``dill``), ``string_args`` as text
(``virtualenv_string_args``), and the pickled return value comes back as the XCom. An exit code in
``skip_on_exit_code`` skips; an exception fails with its message. ``venv_cache_path`` keeps an
environment per hash of its requirements, Python version and options, built once under a file
lock (Airflow's scheme); without it each execution builds a throwaway one, as Airflow does.

Of Airflow's context keys, the ones holding Airflow objects (``dag``, ``task``, ``dag_run``,
``macros``, ``conf``, ``triggering_dataset_events``) are not passed: the shim's objects do not
pickle (its DAG is a Prefect flow). ``params`` and the date keys are passed as Airflow passes them
(see :mod:`lexis_prefect.airflow.standard.venv_build` for how the environment is built).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
import warnings
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, NamedTuple

from lexis_prefect.airflow.exceptions import AirflowException, AirflowSkipException, RemovedInAirflow3Warning
from lexis_prefect.airflow.operators import BranchMixIn, KeywordParameters, PythonOperator, exit_codes
from lexis_prefect.airflow.standard import venv_build

__all__ = [
    "BranchExternalPythonOperator",
    "BranchPythonVirtualenvOperator",
    "ExternalPythonOperator",
    "PythonVirtualenvOperator",
    "branch_external_python_task",
    "branch_virtualenv_task",
    "external_python_task",
    "virtualenv_task",
]

_SERIALIZERS = ("pickle", "cloudpickle", "dill")


class DeserializingResultError(ValueError):
    """The return value could not be unpickled (Airflow's ``DeserializingResultError``)."""

    def __str__(self) -> str:
        return (
            "Error deserializing result. Note that result deserialization is not supported "
            "across major Python versions. Cause: " + str(self.__cause__)
        )


class _PythonVersionInfo(NamedTuple):
    """``sys.version_info`` of another interpreter."""

    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: int

    @classmethod
    def from_executable(cls, executable: str) -> _PythonVersionInfo:
        cmd = [executable, "-c", 'import sys; print(".".join(map(str, sys.version_info)))']
        try:
            result = subprocess.check_output(cmd, text=True)
        except Exception as e:
            raise ValueError(f"Error while executing command {cmd}: {e}") from None
        parts = result.strip().split(".")
        if len(parts) != 5:
            raise ValueError(
                f"Invalid Python version info, expected 5 components separated by '.', but got {result.strip()!r}."
            )
        return cls(int(parts[0]), int(parts[1]), int(parts[2]), parts[3], int(parts[4]))


class _BasePythonVirtualenvOperator(PythonOperator):
    """What both operators share: argument checks, the script, the subprocess, the result."""

    BASE_SERIALIZABLE_CONTEXT_KEYS = {
        "ds", "ds_nodash", "expanded_ti_count", "inlets", "map_index_template", "next_ds",
        "next_ds_nodash", "outlets", "prev_ds", "prev_ds_nodash", "run_id", "task_instance_key_str",
        "test_mode", "tomorrow_ds", "tomorrow_ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz",
        "yesterday_ds", "yesterday_ds_nodash",
    }  # fmt: skip
    PENDULUM_SERIALIZABLE_CONTEXT_KEYS = {
        "data_interval_end", "data_interval_start", "execution_date", "logical_date",
        "next_execution_date", "prev_data_interval_end_success", "prev_data_interval_start_success",
        "prev_execution_date", "prev_execution_date_success", "prev_start_date_success",
        "prev_end_date_success",
    }  # fmt: skip
    #: Airflow also passes macros, conf, dag, dag_run, task and triggering_dataset_events here;
    #: the shim's objects do not pickle (module docstring).
    AIRFLOW_SERIALIZABLE_CONTEXT_KEYS = {"params"}

    def __init__(
        self,
        *,
        python_callable: Callable,
        serializer: str | None = None,
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        string_args: Iterable[str] | None = None,
        templates_dict: dict | None = None,
        templates_exts: list[str] | None = None,
        expect_airflow: bool = True,
        skip_on_exit_code: int | Container[int] | None = None,
        env_vars: dict[str, str] | None = None,
        inherit_env: bool = True,
        use_dill: bool = False,
        **kwargs: Any,
    ) -> None:
        if (
            not isinstance(python_callable, types.FunctionType)
            or isinstance(python_callable, types.LambdaType)
            and python_callable.__name__ == "<lambda>"
        ):
            raise ValueError(f"{type(self).__name__} only supports functions for python_callable arg")
        if inspect.isgeneratorfunction(python_callable):
            raise ValueError(f"{type(self).__name__} does not support using 'yield' in python_callable")
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            templates_dict=templates_dict,
            templates_exts=templates_exts,
            **kwargs,
        )
        self.string_args = string_args or []
        if use_dill:
            warnings.warn(
                "`use_dill` is deprecated and will be removed in a future version. "
                "Please provide serializer='dill' instead.",
                RemovedInAirflow3Warning,
                stacklevel=3,
            )
            if serializer:
                raise AirflowException("Both 'use_dill' and 'serializer' parameters are set. Please set only one of them")
            serializer = "dill"
        serializer = serializer or "pickle"
        if serializer not in _SERIALIZERS:
            raise AirflowException(
                f"Unsupported serializer {serializer!r}. Expected one of {', '.join(map(repr, _SERIALIZERS))}"
            )
        self.serializer = serializer
        self.expect_airflow = expect_airflow
        self.skip_on_exit_code = exit_codes(skip_on_exit_code)
        self.env_vars = env_vars
        self.inherit_env = inherit_env

    @property
    def pickling_library(self) -> Any:
        """The serializer's module, imported when used (cloudpickle and dill are optional)."""
        return importlib.import_module(self.serializer)

    def _iter_serializable_context_keys(self) -> Iterable[str]:
        raise NotImplementedError

    def execute(self, context: Any) -> Any:
        serializable_keys = set(self._iter_serializable_context_keys())
        serializable_context = {k: v for k, v in context.items() if k in serializable_keys}
        return super().execute(context=serializable_context)

    def get_python_source(self) -> str:
        """The source of ``python_callable``."""
        return textwrap.dedent(inspect.getsource(self.python_callable))

    def determine_kwargs(self, context: Mapping[str, Any]) -> Mapping[str, Any]:
        return KeywordParameters.determine(self.python_callable, self.op_args, context).serializing()

    def _read_result(self, path: Path) -> Any:
        if path.stat().st_size == 0:
            return None
        try:
            return self.pickling_library.loads(path.read_bytes())
        except ValueError as value_error:
            raise DeserializingResultError() from value_error

    def _dag_module_name(self) -> str | None:
        """The module the DAG file was imported as, when the callable is defined in it."""
        try:
            in_dag_file = os.path.abspath(inspect.getfile(self.python_callable)) == os.path.abspath(self.dag.fileloc)
        except TypeError:
            return None
        return self.python_callable.__module__ if in_dag_file else None

    def _execute_python_callable_in_subprocess(self, python_path: Path) -> Any:
        with TemporaryDirectory(prefix="venv-call") as tmp:
            tmp_dir = Path(tmp)
            op_kwargs: dict[str, Any] = dict(self.op_kwargs)
            if self.templates_dict:
                op_kwargs["templates_dict"] = self.templates_dict
            input_path = tmp_dir / "script.in"
            output_path = tmp_dir / "script.out"
            string_args_path = tmp_dir / "string_args.txt"
            script_path = tmp_dir / "script.py"
            termination_log_path = tmp_dir / "termination.log"
            if self.op_args or op_kwargs:
                self.log.info("Use %r as serializer.", self.serializer)
                input_path.write_bytes(self.pickling_library.dumps({"args": self.op_args, "kwargs": op_kwargs}))
            string_args_path.write_text("\n".join(map(str, self.string_args)))
            venv_build.write_python_script(
                filename=script_path,
                python_callable=self.python_callable.__name__,
                python_callable_source=self.get_python_source(),
                pickling_library=self.serializer,
                has_args=bool(self.op_args or op_kwargs),
                expect_airflow=self.expect_airflow,
                dag_module_name=self._dag_module_name(),
            )
            env_vars = dict(os.environ) if self.inherit_env else {}
            if self.env_vars:
                env_vars.update(self.env_vars)
            cmd = [os.fspath(p) for p in (python_path, script_path, input_path, output_path, string_args_path, termination_log_path)]
            try:
                venv_build.execute_in_subprocess(cmd, self.log, env=env_vars)
            except subprocess.CalledProcessError as e:
                if e.returncode in self.skip_on_exit_code:
                    raise AirflowSkipException(f"Process exited with code {e.returncode}. Skipping.") from None
                if termination_log_path.exists() and termination_log_path.stat().st_size > 0:
                    error_msg = f"Process returned non-zero exit status {e.returncode}.\n"
                    error_msg += termination_log_path.read_text()
                    raise AirflowException(error_msg) from None
                raise
            if 0 in self.skip_on_exit_code:
                raise AirflowSkipException("Process exited with code 0. Skipping.")
            return self._read_result(output_path)


class PythonVirtualenvOperator(_BasePythonVirtualenvOperator):
    """Run a function in a virtual environment built with ``requirements`` (cached with ``venv_cache_path``)."""

    template_fields: Sequence[str] = tuple({"requirements", "index_urls", "venv_cache_path"}.union(PythonOperator.template_fields))
    template_ext: Sequence[str] = (".txt",)

    def __init__(
        self,
        *,
        python_callable: Callable,
        requirements: None | Iterable[str] | str = None,
        python_version: str | None = None,
        system_site_packages: bool = True,
        pip_install_options: list[str] | None = None,
        index_urls: None | Collection[str] | str = None,
        venv_cache_path: None | os.PathLike[str] | str = None,
        **kwargs: Any,
    ) -> None:
        """The other arguments are those of every virtualenv operator (serializer, op_args...)."""
        if python_version and str(python_version)[0] != str(sys.version_info.major) and (
            kwargs.get("op_args") or kwargs.get("op_kwargs")
        ):
            raise AirflowException(
                "Passing op_args or op_kwargs is not supported across different Python "
                "major versions for PythonVirtualenvOperator. Please use string_args."
                f"Sys version: {sys.version_info}. Virtual environment version: {python_version}"
            )
        if python_version is not None and not isinstance(python_version, str):
            warnings.warn(
                "Passing non-string types (e.g. int or float) as python_version "
                "is deprecated. Please use string value instead.",
                RemovedInAirflow3Warning,
                stacklevel=2,
            )
        if not requirements:
            self.requirements: list[str] = []
        elif isinstance(requirements, str):
            self.requirements = [requirements]
        else:
            self.requirements = list(requirements)
        self.python_version = python_version
        self.system_site_packages = system_site_packages
        self.pip_install_options = pip_install_options
        if isinstance(index_urls, str):
            self.index_urls: list[str] | None = [index_urls]
        elif isinstance(index_urls, Collection):
            self.index_urls = list(index_urls)
        else:
            self.index_urls = None
        self.venv_cache_path = venv_cache_path
        super().__init__(python_callable=python_callable, **kwargs)

    def _requirements_list(self, exclude_cloudpickle: bool = False) -> list[str]:
        """The requirements to install: the given ones, plus the serializer without system site packages."""
        requirements = [str(dependency) for dependency in self.requirements]
        if not self.system_site_packages:
            if self.serializer == "cloudpickle" and not exclude_cloudpickle and "cloudpickle" not in requirements:
                requirements.append("cloudpickle")
            elif self.serializer == "dill" and "dill" not in requirements:
                requirements.append("dill")
        requirements.sort()  # a stable hash
        return requirements

    def _prepare_venv(self, venv_path: Path) -> None:
        requirements_file = venv_path / "requirements.txt"
        requirements_file.write_text("\n".join(self._requirements_list()))
        venv_build.prepare_virtualenv(
            venv_directory=venv_path,
            python_version=self.python_version,
            system_site_packages=self.system_site_packages,
            requirements_file_path=str(requirements_file),
            pip_install_options=self.pip_install_options,
            index_urls=self.index_urls,
            log=self.log,
        )

    def _calculate_cache_hash(self, exclude_cloudpickle: bool = False) -> tuple[str, str]:
        """The cache folder's hash (and the text it is made of), from Airflow's inputs."""
        from lexis_prefect.airflow.standard.variables import Variable

        hash_dict = {
            "requirements_list": self._requirements_list(exclude_cloudpickle=exclude_cloudpickle),
            "pip_install_options": self.pip_install_options,
            "index_urls": self.index_urls,
            "cache_key": str(Variable.get("PythonVirtualenvOperator.cache_key", "")),
            "python_version": self.python_version,
            "system_site_packages": self.system_site_packages,
        }
        hash_text = json.dumps(hash_dict, sort_keys=True)
        return hashlib.md5(hash_text.encode(), usedforsecurity=False).hexdigest()[:8], hash_text

    def _ensure_venv_cache_exists(self, venv_cache_path: Path) -> Path:
        """The cached environment for this hash, built under a lock if it is missing or stale."""
        cache_hash, hash_data = self._calculate_cache_hash()
        venv_path = venv_cache_path / f"venv-{cache_hash}"
        self.log.info("Python virtual environment will be cached in %s", venv_path)
        venv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{venv_path}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # one builder among parallel tasks and workers
            hash_marker = venv_path / "install_complete_marker.json"
            try:
                if venv_path.exists():
                    if hash_marker.exists():
                        previous_hash_data = hash_marker.read_text(encoding="utf8")
                        if previous_hash_data == hash_data:
                            self.log.info("Re-using cached Python virtual environment in %s", venv_path)
                            return venv_path
                        self.log.warning(
                            "Found a previous virtual environment in %s with other parameters, deleting and re-creating.",
                            venv_path,
                        )
                    else:
                        self.log.warning(
                            "Found a previous (probably partial installed) virtual environment in %s, "
                            "deleting and re-creating.",
                            venv_path,
                        )
                    shutil.rmtree(venv_path)
                venv_path.mkdir(parents=True)
                self._prepare_venv(venv_path)
                hash_marker.write_text(hash_data, encoding="utf8")
            except Exception as e:
                shutil.rmtree(venv_path, ignore_errors=True)
                raise AirflowException(f"Unable to create new virtual environment in {venv_path}") from e
            self.log.info("New Python virtual environment created in %s", venv_path)
            return venv_path

    def execute_callable(self) -> Any:
        if self.venv_cache_path:
            venv_path = self._ensure_venv_cache_exists(Path(self.venv_cache_path))
            return self._execute_python_callable_in_subprocess(venv_path / "bin" / "python")
        with TemporaryDirectory(prefix="venv") as tmp_dir:
            tmp_path = Path(tmp_dir)
            self._prepare_venv(tmp_path)
            return self._execute_python_callable_in_subprocess(tmp_path / "bin" / "python")

    def _iter_serializable_context_keys(self) -> Iterable[str]:
        yield from self.BASE_SERIALIZABLE_CONTEXT_KEYS
        if self.system_site_packages or "apache-airflow" in self.requirements:
            yield from self.AIRFLOW_SERIALIZABLE_CONTEXT_KEYS
            yield from self.PENDULUM_SERIALIZABLE_CONTEXT_KEYS
        elif "pendulum" in self.requirements:
            yield from self.PENDULUM_SERIALIZABLE_CONTEXT_KEYS


class BranchPythonVirtualenvOperator(PythonVirtualenvOperator, BranchMixIn):
    """A PythonVirtualenvOperator whose function returns the task id(s) to follow."""

    def execute(self, context: Any) -> Any:
        return self.do_branch(context, super().execute(context))


class ExternalPythonOperator(_BasePythonVirtualenvOperator):
    """Run a function in an existing interpreter, ``python`` (an absolute path)."""

    template_fields: Sequence[str] = tuple({"python"}.union(PythonOperator.template_fields))

    def __init__(
        self,
        *,
        python: str,
        python_callable: Callable,
        expect_pendulum: bool = False,
        **kwargs: Any,
    ) -> None:
        if not python:
            raise ValueError("Python Path must be defined in ExternalPythonOperator")
        self.python = python
        self.expect_pendulum = expect_pendulum
        super().__init__(python_callable=python_callable, **kwargs)

    def execute_callable(self) -> Any:
        python_path = Path(self.python)
        if not python_path.exists():
            raise ValueError(f"Python Path '{python_path}' must exists")
        if not python_path.is_file():
            raise ValueError(f"Python Path '{python_path}' must be a file")
        if not python_path.is_absolute():
            raise ValueError(f"Python Path '{python_path}' must be an absolute path.")
        python_version = _PythonVersionInfo.from_executable(self.python)
        if python_version.major != sys.version_info.major and (self.op_args or self.op_kwargs):
            raise AirflowException(
                "Passing op_args or op_kwargs is not supported across different Python "
                "major versions for ExternalPythonOperator. Please use string_args."
                f"Sys version: {sys.version_info}. "
                f"Virtual environment version: {python_version}"
            )
        return self._execute_python_callable_in_subprocess(python_path)

    def _iter_serializable_context_keys(self) -> Iterable[str]:
        """Airflow passes its objects only to an interpreter with the same Airflow installed, which
        an interpreter outside the shim never has (no ``apache-airflow`` distribution)."""
        yield from self.BASE_SERIALIZABLE_CONTEXT_KEYS
        if self._is_pendulum_installed_in_target_env():
            yield from self.PENDULUM_SERIALIZABLE_CONTEXT_KEYS

    def _is_pendulum_installed_in_target_env(self) -> bool:
        try:
            subprocess.check_call([self.python, "-c", "import pendulum"])
            return True
        except Exception as e:
            if self.expect_pendulum:
                self.log.warning("When checking for Pendulum installed in virtual environment got %s", e)
                self.log.warning(
                    "Pendulum is not properly installed in the virtual environment "
                    "Pendulum context keys will not be available. "
                    "Please Install Pendulum or Airflow in your virtual environment to access them."
                )
            return False


class BranchExternalPythonOperator(ExternalPythonOperator, BranchMixIn):
    """An ExternalPythonOperator whose function returns the task id(s) to follow."""

    def execute(self, context: Any) -> Any:
        return self.do_branch(context, super().execute(context))


# -- @task.virtualenv / @task.external_python --------------------------------------------------------
def _decorated(operator: type, name: str) -> type:
    """The decorated form of ``operator``: arguments from the call, source without the decorator."""
    from lexis_prefect.airflow.decorators import _PythonDecoratedOperator

    def get_python_source(self: Any) -> str:
        raw = textwrap.dedent(inspect.getsource(self.python_callable))
        return venv_build.remove_task_decorator(raw, self.custom_operator_name)

    return type(
        f"_{operator.__name__}Decorated",
        (_PythonDecoratedOperator, operator),
        {
            "template_fields": operator.template_fields,
            "custom_operator_name": name,
            "get_python_source": get_python_source,
            "__module__": __name__,
        },
    )


_VIRTUALENV_DECORATED = _decorated(PythonVirtualenvOperator, "@task.virtualenv")
_BRANCH_VIRTUALENV_DECORATED = _decorated(BranchPythonVirtualenvOperator, "@task.branch_virtualenv")
_EXTERNAL_DECORATED = _decorated(ExternalPythonOperator, "@task.external_python")
_BRANCH_EXTERNAL_DECORATED = _decorated(BranchExternalPythonOperator, "@task.branch_external_python")


def _virtualenv_decorator(operator_class: type) -> Callable[..., Any]:
    def decorator(python_callable: Callable | None = None, multiple_outputs: bool | None = None, **kwargs: Any) -> Any:
        from lexis_prefect.airflow.decorators import task_decorator_factory

        return task_decorator_factory(
            python_callable=python_callable,
            multiple_outputs=multiple_outputs,
            decorated_operator_class=operator_class,
            **kwargs,
        )

    return decorator


def _external_python_decorator(operator_class: type) -> Callable[..., Any]:
    def decorator(
        python: str | None = None,
        python_callable: Callable | None = None,
        multiple_outputs: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        from lexis_prefect.airflow.decorators import task_decorator_factory

        return task_decorator_factory(
            python=python,
            python_callable=python_callable,
            multiple_outputs=multiple_outputs,
            decorated_operator_class=operator_class,
            **kwargs,
        )

    return decorator


#: ``@task.virtualenv`` / ``@task.branch_virtualenv``: the function runs in a virtual environment.
virtualenv_task = _virtualenv_decorator(_VIRTUALENV_DECORATED)
branch_virtualenv_task = _virtualenv_decorator(_BRANCH_VIRTUALENV_DECORATED)
#: ``@task.external_python(python=...)`` / ``@task.branch_external_python``: in that interpreter.
external_python_task = _external_python_decorator(_EXTERNAL_DECORATED)
branch_external_python_task = _external_python_decorator(_BRANCH_EXTERNAL_DECORATED)
