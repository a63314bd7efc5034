"""The LEXIS Airflow operators, as thin Airflow-shaped faces over lexis-prefect's native tasks.

A LEXIS DAG file (the seed's ``lexis_hpc_simple.py``) imports these through the ``lexis``
facade: ``lexis.operators.aai``, ``lexis.operators.hpc``, ``lexis.operators.scheduler.hpc_job``
and ``lexis.datatypes.hpc``. Each does its work with the same code as the native flow:

- ``LexisAAIOperator`` runs :func:`lexis_prefect.keeper.refresh_token` (token exchange, offline
  token kept for the run);
- ``LexisAAITokenKeeperSensor`` runs :func:`~lexis_prefect.keeper.keep_token` until the stop
  operator runs;
- ``LexisAAIStopKeeperOperator`` runs :func:`~lexis_prefect.keeper.stop_keeper`;
- ``build_hpc_job_step`` makes a task group holding one task, ``<group_id>.hpc_job``, which
  runs the native :func:`lexis_prefect.hpc.build_hpc_job_step` subflow (its steps show as
  ``<group_id>.validate``, ``<group_id>.submit_job``... in that subflow run);
- ``FinishOperator`` ends the workflow, and fails it when a task of the run failed.

The run's token keeper is keyed by the DAG's flow run id (what the native tasks default to), so
the tasks share the token through the keeper, never through XCom, parameters or logs; a cancelled
run cancels its HEAppE jobs through the native ``cancel_hpc_jobs`` hook (a crashed one leaves them running).
"""

from __future__ import annotations

import ast
from typing import Any

from pydantic import SecretStr

from lexis_prefect.airflow.baseoperator import BaseOperator
from lexis_prefect.airflow.exceptions import AirflowException, AirflowFailException
from lexis_prefect.airflow.task_group import TaskGroup
from lexis_prefect.exceptions import JobValidationError
from lexis_prefect.models.job import SingleHPCJob as _SingleHPCJobModel

#: ``lexis.datatypes.hpc.SingleHPCJob``: the job's JSON schema, for ``Param(..., schema=SingleHPCJob)``
#: (Airflow wants a schema dict there; the pydantic model stays the single source of it).
SingleHPCJob: dict[str, Any] = _SingleHPCJobModel.model_json_schema()

#: The task id ``LexisAAIStopKeeperOperator()`` takes when the DAG gives none (the seed gives none).
STOP_KEEPER_TASK_ID = "ref_token_stop"
#: The task of a ``build_hpc_job_step`` group that runs the native subflow: ``<group_id>.hpc_job``.
HPC_JOB_TASK_ID = "hpc_job"


def _keeper_id() -> str:
    """The run's keeper id: the DAG's flow run id, as the native tasks and hooks assume."""
    from lexis_prefect.keeper import run_keeper_id

    return run_keeper_id()


class LexisAAIOperator(BaseOperator):
    """Exchange the user's access token for a refreshable (offline) token kept for this run.

    The rendered token may be an int (native rendering turns ``"12345"`` into ``12345``): it is
    used as the text it was. Nothing is pushed to XCom: later tasks reach the token through the
    run's keeper.
    """

    template_fields = ("access_token",)

    def __init__(self, *, access_token: Any = "", offline_access: bool = True, credentials_block: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.access_token = access_token
        self.offline_access = offline_access
        self.credentials_block = credentials_block

    async def execute(self, context: Any) -> None:
        from lexis_prefect.keeper import refresh_token

        token = self.access_token
        token = token.get_secret_value() if isinstance(token, SecretStr) else str(token)
        if not token:
            raise AirflowFailException(
                f"{self.task_id}: access_token is empty: pass the user's LEXIS access token "
                "(the DAG param access_token, e.g. --conf '{\"access_token\": \"...\"}')"
            )
        await refresh_token.fn(SecretStr(token), self.offline_access, self.credentials_block, _keeper_id())

    def __repr__(self) -> str:  # the rendered token must not show in a repr
        return f"<Task({type(self).__name__}): {self.task_id}>"


class LexisAAITokenKeeperSensor(BaseOperator):
    """Refresh the run's token before it expires, for as long as the work lasts.

    It ends successfully once ``LexisAAIStopKeeperOperator`` has run (or at once if the run
    has no keeper any more).
    """

    def __init__(self, *, offline_access: bool = True, poke_interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offline_access = offline_access
        self.poke_interval = poke_interval

    async def execute(self, context: Any) -> int:
        from lexis_prefect.exceptions import ConfigurationError
        from lexis_prefect.keeper import keeper

        try:
            kept = keeper(_keeper_id())
        except ConfigurationError:
            self.log.info("no token keeper for this run (already stopped): nothing to keep")
            return 0
        count = await kept.keep(self.poke_interval)
        self.log.info("token keeper stopped after %d refresh(es)", count)
        return count


class LexisAAIStopKeeperOperator(BaseOperator):
    """Stop the run's token keeper and forget its offline token; ``ALL_DONE`` runs it on every path."""

    def __init__(self, *, task_id: str = STOP_KEEPER_TASK_ID, **kwargs: Any) -> None:
        super().__init__(task_id=task_id, **kwargs)

    async def execute(self, context: Any) -> None:
        from lexis_prefect.keeper import stop_keeper

        await stop_keeper.fn(_keeper_id())


def _as_data(value: Any) -> Any:
    """A rendered argument as data. String-mode rendering (no ``render_template_as_native_obj``)
    gives dicts and lists as Python reprs: those are read back; other strings stay strings."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return _as_data(ast.literal_eval(value))
        except (ValueError, SyntaxError):
            return value
    if isinstance(value, (list, tuple)):
        return [_as_data(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_data(v) for k, v in value.items()}
    return value


class HpcJobStepOperator(BaseOperator):
    """Run one HPC job with its data through the native ``build_hpc_job_step`` subflow.

    ``job_requirements``, ``data_inputs`` and ``data_outputs`` are rendered first: one Jinja
    string each, or lists of dicts of Jinja strings (rendered per element). The job is then
    validated as a ``SingleHPCJob``; an invalid one fails the task without retry, naming the
    field. The XCom is the job's result (location, HEAppE job id, state, output datasets).
    """

    template_fields = ("job_requirements", "data_inputs", "data_outputs")

    def __init__(
        self,
        *,
        job_requirements: Any,
        data_inputs: Any = (),
        data_outputs: Any = (),
        group_id: str = "job",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_requirements = job_requirements
        self.data_inputs = data_inputs
        self.data_outputs = data_outputs
        self.group_id = group_id

    def job(self) -> _SingleHPCJobModel:
        """The rendered arguments as a validated job; an invalid one fails without retry."""
        data = {
            "requirements": _as_data(self.job_requirements),
            "data_inputs": _as_data(self.data_inputs),
            "data_outputs": _as_data(self.data_outputs),
        }
        try:
            return _SingleHPCJobModel.model_validate(data)
        except JobValidationError as exc:
            raise AirflowFailException(f"{self.task_id}: the job is invalid:\n{exc}") from None

    async def execute(self, context: Any) -> dict[str, Any]:
        from lexis_prefect.hpc import build_hpc_job_step as native_step

        result = await native_step(self.job(), _keeper_id(), group_id=self.step_id(context["ti"].map_index))
        return result.model_dump(mode="json")

    def step_id(self, map_index: int = -1) -> str:
        """The native step's ``group_id``, which names its tasks and, with the run, its HEAppE job:
        the group's full id, and in a mapped task group its map index too, so that each index has a
        job of its own (one shared name would make every index re-attach to the first one's job)."""
        suffix = f".{HPC_JOB_TASK_ID}"
        group = self.task_id.removesuffix(suffix) if self.task_id.endswith(suffix) else self.group_id
        return f"{group}[{map_index}]" if map_index >= 0 else group


def build_hpc_job_step(
    dag: Any = None,
    group_id: str = "job",
    job_requirements: Any = None,
    data_inputs: Any = (),
    data_outputs: Any = (),
    **kwargs: Any,
) -> TaskGroup:
    """The seed's ``build_hpc_job_step``: a task group ``group_id`` usable on either side of ``>>``.

    Extra keyword arguments (``retries``...) go to the group's task. The step uses the
    credentials of the run's token keeper (``refresh_token``'s ``credentials_block``).
    """
    if job_requirements is None:
        raise AirflowException(f"build_hpc_job_step({group_id!r}): job_requirements is required")
    _add_cancellation_hooks(dag)
    with TaskGroup(group_id, dag=dag) as group:
        HpcJobStepOperator(
            task_id=HPC_JOB_TASK_ID,
            dag=dag,
            job_requirements=job_requirements,
            data_inputs=data_inputs,
            data_outputs=data_outputs,
            group_id=group_id,
            **kwargs,
        )
    return group


def _add_cancellation_hooks(dag: Any) -> None:
    """A DAG running HPC jobs cancels them when its run is cancelled; a crash leaves them running
    for a rerun to re-attach to, unless ``LEXIS_CANCEL_ON_CRASH`` (the native hooks)."""
    from lexis_prefect.airflow import _current
    from lexis_prefect.hpc.hooks import cancel_hpc_jobs, crash_hook

    dag = dag or _current.current_dag()
    if dag is None:
        raise AirflowException("build_hpc_job_step needs a DAG: call it inside `with DAG(...)` or pass dag=")
    if cancel_hpc_jobs not in dag.on_cancellation_hooks:
        dag.on_cancellation_hooks.append(cancel_hpc_jobs)
    if not any(getattr(hook, "__name__", "") == "hpc_jobs_on_crash" for hook in dag.on_crashed_hooks):
        dag.on_crashed_hooks.append(crash_hook())
    if _sandbox_fallback not in dag.test_setups:
        dag.test_setups.append(_sandbox_fallback)


class FinishOperator(BaseOperator):
    """Mark the workflow complete.

    Airflow's leaf rule alone would report the seed's run green when its HPC job failed
    (``ref_token_stop`` runs ALL_DONE, ``finish`` follows it): so ``finish`` checks the run and
    fails, without retry, when any other task failed or was upstream_failed, naming them.
    """

    def execute(self, context: Any) -> None:
        failed = sorted(
            ti.task_id
            for ti in context["dag_run"].get_task_instances(state=("failed", "upstream_failed"))
            if ti.task_id != self.task_id
        )
        if failed:
            raise AirflowFailException(f"the workflow did not complete: {', '.join(failed)} failed")
        self.log.info("workflow complete")


def _sandbox_fallback(dag: Any, conf: dict[str, Any]) -> Any:
    """``dag.test()`` with no LEXIS configuration runs on the LEXIS sandbox, as the native examples do."""
    from lexis_prefect.demo import sandbox_when_unconfigured

    return sandbox_when_unconfigured(conf)


__all__: list[str] = [
    "STOP_KEEPER_TASK_ID",
    "FinishOperator",
    "HpcJobStepOperator",
    "LexisAAIOperator",
    "LexisAAIStopKeeperOperator",
    "LexisAAITokenKeeperSensor",
    "SingleHPCJob",
    "build_hpc_job_step",
]
