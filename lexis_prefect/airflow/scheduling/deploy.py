"""``lexis-prefect airflow deploy``: a DAG file's deployment, with the DAG's own schedule or dataset trigger.

The DAG file says when it runs (``schedule=``); the deployment takes that from it
(:mod:`.triggers`), so it is written once. The entrypoint is ``<file>:<variable>``, the
module-level name the DAG is bound to, relative to the folder the deployment's runs start in
(the current directory, as for ``prefect deploy``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow.exceptions import AirflowException
from lexis_prefect.airflow.scheduling.triggers import deployment_schedules, deployment_triggers

if TYPE_CHECKING:
    from lexis_prefect.airflow.dag import DAG


def dag_variable(dag: DAG) -> str:
    """The module-level name a loaded DAG is bound to (a deployment entrypoint needs one)."""
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) and os.path.abspath(module.__file__) == dag.fileloc:
            for name, value in vars(module).items():
                if value is dag:
                    return name
    raise AirflowException(
        f"DAG {dag.dag_id} is bound to no module-level name in {dag.fileloc}: "
        "a deployment entrypoint needs one (`dag = ...`)"
    )


def dag_deployment(
    dag: DAG,
    name: str,
    *,
    work_pool_name: str | None = None,
    with_schedule: bool = True,
    tags: list[str] | None = None,
    base: Path | None = None,
) -> Any:
    """A ``RunnerDeployment`` of ``dag`` with its schedule and dataset triggers (not applied yet)."""
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.deployments.runner import RunnerDeployment

    base = (base or Path.cwd()).resolve()
    path = Path(dag.fileloc).resolve()
    try:
        relative = path.relative_to(base)
    except ValueError:
        raise AirflowException(f"{path} is not under {base}: deploy from a folder that holds the DAG file") from None
    entrypoint = f"{relative.as_posix()}:{dag_variable(dag)}"
    deployment = RunnerDeployment(
        name=name,
        flow_name=dag.name,
        entrypoint=entrypoint,
        schedules=[DeploymentScheduleCreate(schedule=s) for s in deployment_schedules(dag)] if with_schedule else [],
        triggers=deployment_triggers(dag) if with_schedule else [],
        parameter_openapi_schema=dag.parameters,
        parameters={},
        description=dag.description,
        tags=list(tags if tags is not None else dag.tags),
        work_pool_name=work_pool_name,
        job_variables={"working_dir": str(base)} if work_pool_name else {},
    )
    deployment._path = str(base)
    return deployment
