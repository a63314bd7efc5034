"""Airflow 3's semantics where they differ from Airflow 2.10, in one place.

The import hook serves DAG files written for either major. Which one a DAG follows is decided by
the class that built it: a DAG defined through ``airflow.sdk`` (``from airflow.sdk import DAG,
dag``), the authoring interface that exists only since Airflow 3, is an :class:`Airflow3DAG` and
runs with Airflow 3's semantics; one defined through ``airflow``/``airflow.models``/
``airflow.decorators`` runs with 2.10's (``DAG.airflow_major``). Operators are shared: an
operator imported from ``airflow.providers.standard`` behaves the same under both (Airflow 2.10
runs that provider too), so it decides nothing.

What differs (read in Airflow 3.3.2's ``airflow/sdk/definitions/dag.py``,
``airflow/models/dagrun.py`` and ``airflow/sdk/execution_time/task_runner.py``):

* **DAG arguments**: ``schedule`` defaults to None (2.10: one day) and ``catchup`` to False
  (``[scheduler] catchup_by_default``); ``schedule_interval``, ``timetable``, ``concurrency``,
  ``full_filepath``, ``default_view`` and ``orientation`` are gone (a TypeError, as Airflow's
  attrs class raises); ``fail_stop`` is ``fail_fast``.
* **Manual runs**: the logical date is None unless given; ``dag.test()`` gives ``utcnow()``
  unless told ``logical_date=``. The run id is ``manual__<run_after ISO>`` when there is a
  logical date, else ``manual__<run_after ISO>_<8 random letters>``.
* **Context**: the keys Airflow 3 removed are absent (``execution_date``, ``next_ds``,
  ``prev_ds``, ``tomorrow_ds``, ``yesterday_ds``, ``conf``, ``test_mode``...), and without a
  logical date so are ``ds``, ``ts``, ``logical_date`` and the data interval, as in Airflow 3:
  a template using one fails as an undefined name.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import jinja2

from lexis_prefect.airflow.dag import DAG, DEFAULT_MAX_ACTIVE_TASKS
from lexis_prefect.airflow.exceptions import UnsupportedArgument
from lexis_prefect.airflow.params import NOTSET

__all__ = [
    "REMOVED_CONTEXT_KEYS",
    "Airflow3DAG",
    "Context",
    "dag",
    "is_airflow3",
    "manual_run_id",
    "run_identity",
    "template_context",
]

#: Context keys of Airflow 2.10 that Airflow 3 no longer gives a task.
REMOVED_CONTEXT_KEYS = frozenset(
    {
        "conf",
        "execution_date",
        "expanded_ti_count",
        "next_ds",
        "next_ds_nodash",
        "next_execution_date",
        "prev_ds",
        "prev_ds_nodash",
        "prev_execution_date",
        "prev_execution_date_success",
        "templates_dict",
        "test_mode",
        "tomorrow_ds",
        "tomorrow_ds_nodash",
        "triggering_dataset_events",
        "try_number",
        "yesterday_ds",
        "yesterday_ds_nodash",
    }
)
#: Keys that exist only when the run has a logical date (``task_runner.get_template_context``).
LOGICAL_DATE_KEYS = frozenset(
    {
        "logical_date",
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "data_interval_start",
        "data_interval_end",
        "prev_data_interval_start_success",
        "prev_data_interval_end_success",
    }
)


#: ``airflow.sdk.Context``: a TypedDict in Airflow, used to annotate ``**context``; a dict here.
Context = dict[str, Any]


def is_airflow3(dag: Any) -> bool:
    return getattr(dag, "airflow_major", 2) >= 3


class Airflow3DAG(DAG):
    """``airflow.sdk.DAG``: the shim's DAG with Airflow 3's arguments and defaults (module doc)."""

    airflow_major = 3

    def __init__(
        self,
        dag_id: str,
        description: str | None = None,
        default_args: dict | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        schedule: Any = None,
        template_searchpath: str | Iterable[str] | None = None,
        template_undefined: type[jinja2.Undefined] = jinja2.StrictUndefined,
        user_defined_macros: dict | None = None,
        user_defined_filters: dict | None = None,
        max_active_tasks: int = DEFAULT_MAX_ACTIVE_TASKS,
        max_active_runs: int = 16,
        max_consecutive_failed_dag_runs: int = 0,
        dagrun_timeout: timedelta | None = None,
        deadline: Any = None,
        sla_miss_callback: None = None,
        catchup: bool = False,
        on_success_callback: Callable | list[Callable] | None = None,
        on_failure_callback: Callable | list[Callable] | None = None,
        doc_md: str | None = None,
        params: Mapping[str, Any] | None = None,
        access_control: dict[str, dict[str, Collection[str]]] | None = None,
        is_paused_upon_creation: bool | None = None,
        jinja_environment_kwargs: dict | None = None,
        render_template_as_native_obj: bool = False,
        tags: Collection[str] | None = None,
        owner_links: dict[str, str] | None = None,
        auto_register: bool = True,
        fail_fast: bool = False,
        allowed_run_types: Any = None,
        dag_display_name: str | None = None,
        disable_bundle_versioning: bool = False,
        rerun_with_latest_version: bool | None = None,
    ) -> None:
        if deadline is not None:
            raise UnsupportedArgument(
                f"DAG {dag_id}: deadline alerts (DAG(deadline=...)) are not supported by lexis-prefect; "
                "see docs/airflow-compat.md"
            )
        if sla_miss_callback is not None:  # Airflow 3 keeps the name only to refuse it
            raise TypeError("sla_miss_callback is not supported in Airflow 3 (SLAs were removed)")
        super().__init__(
            dag_id,
            description=description,
            schedule=schedule,
            start_date=start_date,
            end_date=end_date,
            template_searchpath=template_searchpath,
            template_undefined=template_undefined,
            user_defined_macros=user_defined_macros,
            user_defined_filters=user_defined_filters,
            default_args=default_args,
            max_active_tasks=max_active_tasks,
            max_active_runs=max_active_runs,
            max_consecutive_failed_dag_runs=max_consecutive_failed_dag_runs,
            dagrun_timeout=dagrun_timeout,
            catchup=catchup,
            on_success_callback=on_success_callback,
            on_failure_callback=on_failure_callback,
            doc_md=doc_md,
            params=params,
            access_control=access_control,
            is_paused_upon_creation=is_paused_upon_creation,
            jinja_environment_kwargs=jinja_environment_kwargs,
            render_template_as_native_obj=render_template_as_native_obj,
            tags=sorted(tags or []),
            owner_links=owner_links,
            auto_register=auto_register,
            fail_stop=fail_fast,
            dag_display_name=dag_display_name,
        )
        self.schedule = schedule  # Airflow 3 keeps the argument as given (2.10 has no such attribute)
        self.fail_fast = fail_fast
        self.allowed_run_types = allowed_run_types
        self.disable_bundle_versioning = disable_bundle_versioning
        self.rerun_with_latest_version = rerun_with_latest_version
        self.flow_run_name = manual_run_id

    def test(  # type: ignore[override]
        self,
        run_after: datetime | None = None,
        logical_date: datetime | None | Any = NOTSET,
        run_conf: Mapping[str, Any] | None = None,
        conn_file_path: str | None = None,
        variable_file_path: str | None = None,
        use_executor: bool = False,
        mark_success_pattern: Any = None,
    ) -> Any:
        """Airflow 3's ``dag.test``: the logical date is now unless given (None is allowed)."""
        import pendulum

        unsupported = {
            "run_after": run_after,
            "conn_file_path": conn_file_path,
            "variable_file_path": variable_file_path,
            "mark_success_pattern": mark_success_pattern,
        }
        given = sorted(k for k, v in unsupported.items() if v is not None)
        if given:
            raise UnsupportedArgument(f"dag.test({', '.join(given)}=...) is not supported by lexis-prefect")
        date = pendulum.now("UTC") if logical_date is NOTSET else logical_date
        return self._test(run_conf, date)


def manual_run_id() -> str:
    """Airflow 3's manual run id (``DagRun.generate_run_id``), used as the Prefect flow run name.

    ``run_after`` is now; a run without a logical date (any run but ``dag.test``'s, unless it was
    given ``logical_date=None``) gets Airflow's random suffix. A resumed run keeps its name.
    """
    import pendulum
    from prefect.runtime import flow_run

    from lexis_prefect.airflow.execution.runner import test_run_logical_date

    current = flow_run.name
    if isinstance(current, str) and current.startswith("manual__"):
        return current
    run_after = pendulum.now("UTC").isoformat()
    if test_run_logical_date() is not None:
        return f"manual__{run_after}"
    suffix = "".join(random.choices(string.ascii_letters + string.digits, k=8))
    return f"manual__{run_after}_{suffix}"


def run_identity(run_name: str | None, test_logical_date: datetime | None) -> tuple[str, datetime | None]:
    """(run id, logical date) of an Airflow 3 run: the flow run's name, and the date ``dag.test``
    was given (every other run is a manual run without one)."""
    run_id = run_name if run_name and run_name.startswith("manual__") else manual_run_id()
    return run_id, test_logical_date


def template_context(context: dict[str, Any], logical_date: datetime | None) -> dict[str, Any]:
    """Airflow 2.10's context made Airflow 3's: removed keys dropped, the date keys only with a date."""
    dropped = REMOVED_CONTEXT_KEYS | (frozenset() if logical_date is not None else LOGICAL_DATE_KEYS)
    result = {k: v for k, v in context.items() if k not in dropped}
    result["triggering_asset_events"] = context.get("triggering_dataset_events", {})
    result["task_reschedule_count"] = 0
    if logical_date is None:
        result["task_instance_key_str"] = f"{context['dag'].dag_id}__{context['task'].task_id}__{context['run_id']}"
    return result


def dag(dag_id: str = "", **dag_kwargs: Any) -> Callable[[Callable], Callable[..., Airflow3DAG]]:
    """``airflow.sdk.dag``: ``@dag`` building an :class:`Airflow3DAG`."""
    from lexis_prefect.airflow.decorators import dag_decorator

    return dag_decorator(Airflow3DAG, dag_id, dag_kwargs)
