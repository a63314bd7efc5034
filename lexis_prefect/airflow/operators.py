"""Airflow 2.10's core operators: Empty, Python, BranchPython, ShortCircuit and Bash.

Ported from ``airflow/operators/{empty,python,branch,bash}.py``, ``airflow/models/skipmixin.py``,
``airflow/hooks/subprocess.py`` and ``airflow/utils/operator_helpers.py`` (2.10.5), with the same
arguments, log lines, error texts and XComs. Skipping is Airflow's SkipMixin: the ids of the tasks
to skip go into ``context["ti"].skip_ids`` and the runner marks them ``skipped`` as soon as the
operator succeeds, before their trigger rules are evaluated (Airflow sets their state in the
database from inside ``execute``; here it happens right after ``execute`` returns, so a skipping
operator that fails after deciding skips nothing).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import GeneratorType
from typing import Any

from lexis_prefect.airflow.baseoperator import BaseOperator
from lexis_prefect.airflow.exceptions import (
    AirflowException,
    AirflowSkipException,
    RemovedInAirflow3Warning,
)
from lexis_prefect.airflow.execution.taskinstance import get_current_context

__all__ = [
    "BashOperator",
    "BranchPythonOperator",
    "EmptyOperator",
    "KeywordParameters",
    "PythonOperator",
    "ShortCircuitOperator",
    "SkipMixin",
    "BranchMixIn",
    "context_to_airflow_vars",
    "determine_kwargs",
    "get_current_context",
]

#: XCom key under which SkipMixin records what it followed/skipped (``airflow/models/skipmixin.py``).
XCOM_SKIPMIXIN_KEY = "skipmixin_key"
XCOM_SKIPMIXIN_SKIPPED = "skipped"
XCOM_SKIPMIXIN_FOLLOWED = "followed"


# -- operator_helpers ------------------------------------------------------------------------------
class KeywordParameters:
    """Which keyword arguments a callable gets (``airflow.utils.operator_helpers.KeywordParameters``).

    A callable with ``**kwargs`` gets every key (the whole context); otherwise only the keys it
    names. A positional ``op_args`` value may not take the place of a name that is also a key.
    """

    def __init__(self, kwargs: Mapping[str, Any], *, wildcard: bool) -> None:
        self._kwargs = kwargs
        self._wildcard = wildcard

    @classmethod
    def determine(cls, func: Callable[..., Any], args: Collection[Any], kwargs: Mapping[str, Any]) -> KeywordParameters:
        signature = inspect.signature(func)
        has_wildcard_kwargs = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
        for name in itertools.islice(signature.parameters.keys(), len(args)):
            if name in kwargs:
                raise ValueError(f"The key {name!r} in args is a part of kwargs and therefore reserved.")
        if has_wildcard_kwargs:
            return cls(kwargs, wildcard=True)
        return cls({key: kwargs[key] for key in signature.parameters if key in kwargs}, wildcard=False)

    def unpacking(self) -> Mapping[str, Any]:
        return self._kwargs

    def serializing(self) -> Mapping[str, Any]:
        return self._kwargs


def determine_kwargs(func: Callable[..., Any], args: Collection[Any], kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The keyword arguments of ``kwargs`` that ``func`` accepts (Airflow's ``determine_kwargs``)."""
    return KeywordParameters.determine(func, args, kwargs).unpacking()


def _run_callable(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Airflow's ``ExecutionCallableRunner``: a generator function is exhausted, its return value
    kept, the ``Metadata`` it yields going to the running task's ``outlet_events``."""
    from lexis_prefect.airflow.scheduling.events import run_callable
    from lexis_prefect.airflow.execution.taskinstance import _context

    context = _context.get()
    return run_callable(func, context.get("outlet_events") if context else None, *args, **kwargs)


#: ``AIRFLOW_CTX_*`` variables (``context_to_airflow_vars(context, in_env_var_format=True)``).
_CONTEXT_VARS = [
    ("task", "email", "AIRFLOW_CTX_DAG_EMAIL"),
    ("task", "owner", "AIRFLOW_CTX_DAG_OWNER"),
    ("task_instance", "dag_id", "AIRFLOW_CTX_DAG_ID"),
    ("task_instance", "task_id", "AIRFLOW_CTX_TASK_ID"),
    ("task_instance", "execution_date", "AIRFLOW_CTX_EXECUTION_DATE"),
    ("task_instance", "try_number", "AIRFLOW_CTX_TRY_NUMBER"),
    ("dag_run", "run_id", "AIRFLOW_CTX_DAG_RUN_ID"),
]


def context_to_airflow_vars(context: Mapping[str, Any], in_env_var_format: bool = False) -> dict[str, str]:
    """The task's identity as environment variables (``AIRFLOW_CTX_DAG_ID``...) or ``airflow.ctx.*`` keys."""
    params: dict[str, str] = {}
    for subject_key, attr, env_name in _CONTEXT_VARS:
        subject = context.get(subject_key)
        value = getattr(subject, attr, None)
        if not subject or not value:
            continue
        name = env_name if in_env_var_format else "airflow.ctx." + env_name[len("AIRFLOW_CTX_") :].lower()
        if isinstance(value, str):
            params[name] = value
        elif isinstance(value, datetime):
            params[name] = value.isoformat()
        elif isinstance(value, list):
            params[name] = ",".join(value)
        else:
            params[name] = str(value)
    return params


# -- EmptyOperator -----------------------------------------------------------------------------------
class EmptyOperator(BaseOperator):
    """Operator that does literally nothing; it can be used to group tasks in a DAG."""

    ui_color = "#e8f7e4"
    inherits_from_empty_operator = True

    def execute(self, context: Any) -> None:
        pass


def __getattr__(name: str) -> Any:
    """``DummyOperator``: Airflow 2.10 serves it as EmptyOperator with a DeprecationWarning on import."""
    if name == "DummyOperator":
        warnings.warn(
            "The `airflow.operators.dummy.DummyOperator` class is deprecated. "
            "Please use `'airflow.operators.empty.EmptyOperator'`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return EmptyOperator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- SkipMixin -----------------------------------------------------------------------------------------
class SkipMixin:
    """Skipping downstream tasks from inside ``execute`` (``airflow/models/skipmixin.py``)."""

    log: Any

    def skip(self, dag_run: Any, execution_date: Any, tasks: Iterable[Any], map_index: int = -1) -> None:
        """Mark ``tasks`` (operators) skipped; recorded under XCom ``skipmixin_key``."""
        task_ids = [t.task_id for t in tasks if isinstance(t, BaseOperator)]
        if not task_ids:
            return
        ti = get_current_context()["ti"]
        ti.skip_ids.update(task_ids)
        if getattr(self, "task_id", None) is not None:
            ti.xcom_push(key=XCOM_SKIPMIXIN_KEY, value={XCOM_SKIPMIXIN_SKIPPED: task_ids})

    @staticmethod
    def skip_all_except(ti: Any, branch_task_ids: None | str | Iterable[str]) -> None:
        """Skip every direct downstream task of ``ti.task`` that is not followed (Airflow's rules).

        A static method, as in Airflow 2.10: ``self.skip_all_except(ti, ids)`` and
        ``SkipMixin.skip_all_except(ti, ids)`` both work.
        """
        if branch_task_ids and isinstance(branch_task_ids, GeneratorType):
            branch_task_ids = list(branch_task_ids)
        log = getattr(ti.task, "log", None) or logging.getLogger("airflow.models.skipmixin")
        if isinstance(branch_task_ids, str):
            branch_task_id_set = {branch_task_ids}
        elif isinstance(branch_task_ids, Iterable):
            branch_task_id_set = set(branch_task_ids)
            invalid_task_ids_type = {(bti, type(bti).__name__) for bti in branch_task_id_set if not isinstance(bti, str)}
            if invalid_task_ids_type:
                raise AirflowException(
                    f"'branch_task_ids' expected all task IDs are strings. "
                    f"Invalid tasks found: {invalid_task_ids_type}."
                )
        elif branch_task_ids is None:
            branch_task_id_set = set()
        else:
            raise AirflowException(
                "'branch_task_ids' must be either None, a task ID, or an Iterable of IDs, "
                f"but got {type(branch_task_ids).__name__!r}."
            )
        log.info("Following branch %s", branch_task_id_set)
        task = ti.task
        dag = task.dag
        invalid_task_ids = branch_task_id_set - set(dag.task_ids)
        if invalid_task_ids:
            raise AirflowException(
                f"'branch_task_ids' must contain only valid task_ids. Invalid tasks found: {invalid_task_ids}."
            )
        downstream_tasks = [t for t in task.downstream_list if isinstance(t, BaseOperator)]
        if not downstream_tasks:
            return
        # A followed task's own downstream tasks are followed too: "branch -> join" with
        # "branch -> task1 -> join" runs join when task1 is chosen (Airflow's empty-branch rule).
        for branch_task_id in list(branch_task_id_set):
            branch_task_id_set.update(dag.get_task(branch_task_id).get_flat_relative_ids(upstream=False))
        skip_tasks = [(t.task_id, ti.map_index) for t in downstream_tasks if t.task_id not in branch_task_id_set]
        follow_task_ids = [t.task_id for t in downstream_tasks if t.task_id in branch_task_id_set]
        log.info("Skipping tasks %s", skip_tasks)
        ti.skip_ids.update(task_id for task_id, _ in skip_tasks)
        ti.xcom_push(key=XCOM_SKIPMIXIN_KEY, value={XCOM_SKIPMIXIN_FOLLOWED: follow_task_ids})


class BranchMixIn(SkipMixin):
    """``do_branch``: expand task-group ids to their roots, then ``skip_all_except``."""

    def do_branch(self, context: Any, branches_to_execute: str | Iterable[str]) -> str | Iterable[str]:
        self.log.info("Branch into %s", branches_to_execute)
        branch_task_ids = self._expand_task_group_roots(context["ti"], branches_to_execute)
        self.skip_all_except(context["ti"], branch_task_ids)
        return branches_to_execute

    def _expand_task_group_roots(self, ti: Any, branches_to_execute: Any) -> Iterable[str]:
        """A generator, as in Airflow: ``None`` gives an empty one (so everything is skipped)."""
        dag = ti.task.dag
        if branches_to_execute is None:
            return
        if isinstance(branches_to_execute, str) or not isinstance(branches_to_execute, Iterable):
            branches_to_execute = [branches_to_execute]
        groups = dag.task_group_dict
        for branch in branches_to_execute:
            if isinstance(branch, str) and branch in groups:
                group = groups[branch]
                root_ids = [root.task_id for root in group.roots]
                self.log.info("Expanding task group %s into %s", group.group_id, root_ids)
                yield from root_ids
            else:
                yield branch


class BaseBranchOperator(BaseOperator, BranchMixIn):
    """Subclasses implement ``choose_branch(context)`` returning task or task-group id(s) to follow."""

    def choose_branch(self, context: Any) -> str | Iterable[str]:
        raise NotImplementedError

    def execute(self, context: Any) -> Any:
        return self.do_branch(context, self.choose_branch(context))


# -- PythonOperator family ---------------------------------------------------------------------------
class PythonOperator(BaseOperator):
    """Executes a Python callable (``airflow.operators.python.PythonOperator``).

    The callable gets ``op_args`` positionally and, by keyword, ``op_kwargs`` plus the template
    context: all of it if it takes ``**kwargs``, else only the keys it names (``ti``, ``params``,
    ``ds``...). ``op_kwargs`` win over context keys of the same name. ``templates_dict`` is rendered
    and handed over as the context key ``templates_dict``.
    """

    template_fields: Sequence[str] = ("templates_dict", "op_args", "op_kwargs")
    template_fields_renderers = {"templates_dict": "json", "op_args": "py", "op_kwargs": "py"}
    BLUE = "#ffefeb"
    ui_color = BLUE
    shallow_copy_attrs: Sequence[str] = ("python_callable", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable,
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        templates_exts: Sequence[str] | None = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("provide_context"):
            warnings.warn(
                "provide_context is deprecated as of 2.0 and is no longer required",
                RemovedInAirflow3Warning,
                stacklevel=2,
            )
        kwargs.pop("provide_context", None)
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise AirflowException("`python_callable` param must be callable")
        self.python_callable = python_callable
        self.op_args = op_args or ()
        self.op_kwargs = op_kwargs or {}
        self.templates_dict = templates_dict
        if templates_exts:
            self.template_ext = templates_exts
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: Any) -> Any:
        context.update(self.op_kwargs, templates_dict=self.templates_dict)
        self.op_kwargs = self.determine_kwargs(context)
        return_value = self.execute_callable()
        if self.show_return_value_in_logs:
            self.log.info("Done. Returned value was: %s", return_value)
        else:
            self.log.info("Done. Returned value not shown")
        return return_value

    def determine_kwargs(self, context: Mapping[str, Any]) -> Mapping[str, Any]:
        return KeywordParameters.determine(self.python_callable, self.op_args, context).unpacking()

    def execute_callable(self) -> Any:
        return _run_callable(self.python_callable, *self.op_args, **self.op_kwargs)


class BranchPythonOperator(PythonOperator, BranchMixIn):
    """A PythonOperator whose callable returns the task id(s) or task-group id(s) to follow.

    Every other task directly downstream is skipped (and, through the default trigger rule, what
    follows them). ``None`` skips every direct downstream task; an id that is not in the DAG fails
    the task with Airflow's message.
    """

    def execute(self, context: Any) -> Any:
        return self.do_branch(context, super().execute(context))


class ShortCircuitOperator(PythonOperator, SkipMixin):
    """Continue only if the callable returns a truthy value; the value is pushed as XCom either way.

    ``ignore_downstream_trigger_rules=True`` (default) skips every task downstream, whatever its
    trigger rule; ``False`` skips only the direct downstream tasks and lets trigger rules decide
    the rest.
    """

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: Any) -> Any:
        condition = super().execute(context)
        self.log.info("Condition result is %s", condition)
        if condition:
            self.log.info("Proceeding with downstream tasks...")
            return condition
        if not self.downstream_task_ids:
            self.log.info("No downstream tasks; nothing to do.")
            return condition
        task = context["task"]
        if self.ignore_downstream_trigger_rules is True:
            tasks = task.get_flat_relatives(upstream=False)
        else:
            tasks = task.downstream_list
        to_skip = [t for t in tasks if not getattr(t, "is_teardown", False)]
        self.log.debug("Downstream task IDs %s", to_skip)
        self.log.info("Skipping downstream tasks")
        dag_run = context["dag_run"]
        self.skip(dag_run=dag_run, execution_date=dag_run.execution_date, tasks=to_skip, map_index=context["ti"].map_index)
        self.log.info("Done.")
        return condition


# -- BashOperator ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _working_directory(cwd: str | None = None) -> Iterator[str]:
    """``cwd``, or a temporary directory removed afterwards (``airflow.hooks.subprocess``)."""
    if cwd is not None:
        yield cwd
        return
    with tempfile.TemporaryDirectory(prefix="airflowtmp") as tmp:
        yield tmp


def exit_codes(skip_on_exit_code: int | Container[int] | None) -> Container[int]:
    """``skip_on_exit_code`` as a container: one code, a container of them, or none."""
    if isinstance(skip_on_exit_code, Container):
        return skip_on_exit_code
    return [skip_on_exit_code] if skip_on_exit_code is not None else []


class _NotSet:
    """Airflow's ``NOTSET`` for ``bash_command`` of ``@task.bash`` (known only when the callable ran)."""

    def __repr__(self) -> str:
        return "NOTSET"


NOTSET_COMMAND = _NotSet()


class BashOperator(BaseOperator):
    r"""Execute a Bash script, command or set of commands (``airflow.operators.bash.BashOperator``).

    ``bash -c <command>`` runs in a new process group (``cwd``, or a fresh temporary directory),
    with ``env`` (the worker's environment if None; merged into it with ``append_env``) plus
    ``AIRFLOW_CTX_*``. Every output line (stdout and stderr) goes to the task log; the last one,
    after ``output_processor``, is the return value (XCom). Exit code 0 succeeds, one in
    ``skip_on_exit_code`` (default 99) skips, any other fails with Airflow's message. A command
    ending in ``.sh``/``.bash`` is a Jinja template file (DAG folder / ``template_searchpath``),
    rendered into a temporary script in ``cwd`` and run. ``on_kill`` (execution timeout) sends
    SIGTERM to the process group.
    """

    template_fields: Sequence[str] = ("bash_command", "env", "cwd")
    template_fields_renderers = {"bash_command": "bash", "env": "json"}
    template_ext: Sequence[str] = (".sh", ".bash")
    ui_color = "#f0ede4"

    def __init__(
        self,
        *,
        bash_command: Any,
        env: dict[str, str] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_exit_code: int | None = None,
        skip_on_exit_code: int | Container[int] | None = 99,
        cwd: str | None = None,
        output_processor: Callable[[str], Any] = lambda result: result,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.output_encoding = output_encoding
        if skip_exit_code is not None:
            warnings.warn("skip_exit_code is deprecated. Please use skip_on_exit_code", DeprecationWarning, stacklevel=2)
            skip_on_exit_code = skip_exit_code
        self.skip_on_exit_code = exit_codes(skip_on_exit_code)
        self.cwd = cwd
        self.append_env = append_env
        self.output_processor = output_processor
        self._init_bash_command_not_set = bash_command is NOTSET_COMMAND
        self._unrendered_bash_command = bash_command
        self.sub_process: subprocess.Popen[bytes] | None = None

    def get_env(self, context: Any) -> dict[str, str]:
        """The environment of the command: ``env`` or the worker's, plus ``AIRFLOW_CTX_*``."""
        system_env = os.environ.copy()
        env = self.env
        if env is None:
            env = system_env
        elif self.append_env:
            system_env.update(env)
            env = system_env
        airflow_context_vars = context_to_airflow_vars(context, in_env_var_format=True)
        self.log.debug("Exporting env vars: %s", " ".join(f"{k}={v!r}" for k, v in airflow_context_vars.items()))
        env.update(airflow_context_vars)
        return env

    def execute(self, context: Any) -> Any:
        bash_path: str = shutil.which("bash") or "bash"
        if self.cwd is not None:
            if not os.path.exists(self.cwd):
                raise AirflowException(f"Can not find the cwd: {self.cwd}")
            if not os.path.isdir(self.cwd):
                raise AirflowException(f"The cwd {self.cwd} must be a directory")
        env = self.get_env(context)
        command = self.bash_command if self._init_bash_command_not_set else self._unrendered_bash_command
        if self._is_inline_command(command):
            exit_code, output = self._run_command([bash_path, "-c", self.bash_command], env, self.cwd)
        else:
            try:
                exit_code, output = self._run_rendered_script_file(bash_path, env)
            except PermissionError:
                directory = self.cwd or tempfile.gettempdir()
                warnings.warn(
                    "BashOperator behavior for script files (`.sh` and `.bash`) containing Jinja templating "
                    "will change in Airflow 3: script's content will be rendered into a new temporary file, "
                    "and then executed (instead of being directly executed as inline command). "
                    f"Ensure Airflow has write and execute permission in the `{directory}` directory.",
                    RemovedInAirflow3Warning,
                    stacklevel=2,
                )
                exit_code, output = self._run_command([bash_path, "-c", self.bash_command], env, self.cwd)
        if exit_code in self.skip_on_exit_code:
            raise AirflowSkipException(f"Bash command returned exit code {exit_code}. Skipping.")
        if exit_code != 0:
            raise AirflowException(f"Bash command failed. The command returned a non-zero exit code {exit_code}.")
        return self.output_processor(output)

    @classmethod
    def _is_inline_command(cls, bash_command: str) -> bool:
        # Not guarded, as in Airflow: a command given as an XComArg or DagParam (not a str before
        # rendering) fails here with AttributeError ... has no attribute 'endswith' (checked with
        # Airflow 2.10.5).
        return not bash_command.endswith(tuple(cls.template_ext))

    def _run_rendered_script_file(self, bash_path: str, env: dict[str, str]) -> tuple[int, str]:
        """The rendered script goes into a temporary file in ``cwd`` (or a temporary directory) and runs."""
        with _working_directory(self.cwd) as cwd:
            with tempfile.NamedTemporaryFile(mode="w", dir=cwd, suffix=".sh") as file:
                file.write(str(self.bash_command))
                file.flush()
                return self._run_command([bash_path, os.path.basename(file.name)], env, cwd)

    def _run_command(self, command: list[str], env: dict[str, str], cwd: str | None) -> tuple[int, str]:
        """Airflow's ``SubprocessHook.run_command``: stream each line to the log, keep the last one."""
        self.log.info("Tmp dir root location: %s", tempfile.gettempdir())
        with _working_directory(cwd) as cwd:
            self.log.info("Running command: %s", command)
            # start_new_session = os.setsid(); restore_signals (the default) resets SIGPIPE and
            # SIGXFSZ as Airflow's pre_exec does, without a preexec_fn (unsafe in threads).
            self.sub_process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
            self.log.info("Output:")
            line = ""
            assert self.sub_process.stdout is not None
            for raw_line in iter(self.sub_process.stdout.readline, b""):
                line = raw_line.decode(self.output_encoding, errors="backslashreplace").rstrip()
                self.log.info("%s", line)
            self.sub_process.stdout.close()
            self.sub_process.wait()
            self.log.info("Command exited with return code %s", self.sub_process.returncode)
            return self.sub_process.returncode, line

    def on_kill(self) -> None:
        """Send SIGTERM to the command's process group (the execution timeout ends the task)."""
        self.log.info("Sending SIGTERM signal to process group")
        process = self.sub_process
        if process is not None and process.poll() is None:
            try:
                os.killpg(os.getpgid(process.pid), signal.SIGTERM)
            except ProcessLookupError:
                pass
