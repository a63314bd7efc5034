"""Airflow's exception classes, as a DAG file imports them from ``airflow.exceptions``.

The hierarchy mirrors Airflow 2.10 (``airflow/exceptions.py``) because DAG code catches and raises
these by class: ``AirflowTaskTimeout`` derives from ``BaseException`` there, so a bare
``except Exception`` in user code does not swallow a timeout, and the same holds here.
"""

from __future__ import annotations

from typing import Any


class AirflowException(Exception):
    """Base class of Airflow's errors."""


class AirflowNotFoundException(AirflowException):
    """A named object (a connection) does not exist."""


class AirflowBadRequest(AirflowException):
    """A request that cannot be served as asked."""


class DagNotFound(AirflowNotFoundException):
    """No DAG with that id (TriggerDagRunOperator, ExternalTaskSensor)."""


class DagRunAlreadyExists(AirflowBadRequest):
    """A run of the DAG with this logical date already exists (TriggerDagRunOperator)."""

    def __init__(self, dag_run: object, execution_date: object, run_id: str) -> None:
        super().__init__(
            f"A DAG Run already exists for DAG {getattr(dag_run, 'dag_id', None)} at {execution_date} "
            f"with run id {run_id}"
        )
        self.dag_run = dag_run
        self.execution_date = execution_date
        self.run_id = run_id


class AirflowSkipException(AirflowException):
    """Raised by a task to end as ``skipped``."""


class AirflowFailException(AirflowException):
    """Raised by a task to end as ``failed`` at once, without its retries."""


class AirflowSensorTimeout(AirflowException):
    """A sensor ran past its ``timeout``: the task fails without retries."""


class AirflowRescheduleException(AirflowException):
    """Kept for imports; the shim's reschedule-mode sensors wait in place (see the coverage page)."""


class AirflowTaskTimeout(BaseException):
    """A task ran past its ``execution_timeout``."""


class AirflowDagCycleException(AirflowException):
    """The DAG's edges form a cycle."""


class DuplicateTaskIdFound(AirflowException):
    """Two tasks (or task groups) of one DAG share an id."""


class TaskAlreadyInTaskGroup(AirflowException):
    """A task was added to a second task group."""


class ParamValidationError(AirflowException):
    """A DAG param (or the run's conf) does not satisfy its JSON schema.

    The text is Airflow's; ``field`` (when known) names the bad value the way lexis-prefect's
    other errors do, e.g. ``job1.requirements.tasks[0].walltime_limit``, and ``reason`` says why.
    """

    field: str | None = None
    reason: str | None = None

    def located(self, param: str) -> ParamValidationError:
        """This error, re-worded for the param ``param`` (``Invalid input for param <param>: ...``)."""
        error = ParamValidationError(f"Invalid input for param {param}: {self}")
        error.field = param + (self.field or "")
        error.reason = self.reason
        return error


class XComNotFound(AirflowException):
    """An ``XComArg`` names a value its task did not push."""


class UnsupportedArgument(AirflowException, TypeError):
    """An operator or DAG argument the shim cannot honour; raised at import, never ignored."""


class RemovedInAirflow3Warning(DeprecationWarning):
    """Airflow 2's warning for arguments removed in Airflow 3 (``schedule_interval``...)."""


class FailStopDagInvalidTriggerRule(AirflowException):
    """A task of a ``fail_stop`` DAG has a trigger rule other than all_success."""

    def __str__(self) -> str:
        return "A 'fail-stop' dag can only have all_success trigger rule"


class XComForMappingNotPushed(AirflowException):
    """A task whose return value a downstream task maps over returned nothing."""

    def __str__(self) -> str:
        return "did not push XCom for task mapping"


class UnmappableXComTypePushed(AirflowException):
    """A task whose return value a downstream task maps over returned neither a list nor a dict."""

    def __str__(self) -> str:
        return f"unmappable return type {type(self.args[0]).__qualname__!r}"


class UnmappableXComLengthPushed(AirflowException):
    """A return value to map over is longer than ``[core] max_map_length`` (1024)."""

    def __init__(self, value: Any, max_length: int) -> None:
        super().__init__(value)
        self.value, self.max_length = value, max_length

    def __str__(self) -> str:
        return f"unmappable return value length: {len(self.value)} > {self.max_length}"


class AirflowTimetableInvalid(AirflowException):
    """A DAG's timetable is misconfigured (an invalid cron expression, a non-positive delta)."""
