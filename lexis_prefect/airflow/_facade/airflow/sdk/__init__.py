"""``airflow.sdk`` (lexis-prefect shim facade): Airflow 3's authoring interface.

A DAG defined through this module (``DAG``, ``dag``) runs with Airflow 3's semantics
(``lexis_prefect.airflow.majors``); everything else is the shim's, shared with Airflow 2 DAG
files. A name of Airflow 3.3's ``airflow.sdk`` that the shim does not serve fails at import,
naming the feature (coverage: docs/airflow-compat.md).
"""

from lexis_prefect._lazy import lazy_getattr
from lexis_prefect.airflow._finder import unsupported_name

__version__ = "1.3.2"  # the Task SDK release of Airflow 3.3.2, whose interface this follows
__lexis_prefect_shim__ = True

_SHIM = "lexis_prefect.airflow"
_STANDARD = "lexis_prefect.airflow.standard"  # Variables, connections, edge labels
_SCHEDULING = "lexis_prefect.airflow.scheduling"  # timetables
_LAZY = {
    "DAG": (f"{_SHIM}.majors", "Airflow3DAG"),
    "dag": (f"{_SHIM}.majors", "dag"),
    "Context": (f"{_SHIM}.majors", "Context"),
    "task": (f"{_SHIM}.decorators", "task"),
    "task_group": (f"{_SHIM}.decorators", "task_group"),
    "setup": (f"{_SHIM}.setup_teardown", "setup"),
    "teardown": (f"{_SHIM}.setup_teardown", "teardown"),
    "Param": (f"{_SHIM}.params", "Param"),
    "ParamsDict": (f"{_SHIM}.params", "ParamsDict"),
    "BaseOperator": (f"{_SHIM}.baseoperator", "BaseOperator"),
    "chain": (f"{_SHIM}.baseoperator", "chain"),
    "chain_linear": (f"{_SHIM}.baseoperator", "chain_linear"),
    "cross_downstream": (f"{_SHIM}.baseoperator", "cross_downstream"),
    "BaseSensorOperator": (f"{_SHIM}.sensors", "BaseSensorOperator"),
    "PokeReturnValue": (f"{_SHIM}.sensors", "PokeReturnValue"),
    "SkipMixin": (f"{_SHIM}.operators", "SkipMixin"),
    "BranchMixIn": (f"{_SHIM}.operators", "BranchMixIn"),
    "BaseBranchOperator": (f"{_SHIM}.operators", "BaseBranchOperator"),
    "get_current_context": (f"{_SHIM}.operators", "get_current_context"),
    "TaskGroup": (f"{_SHIM}.task_group", "TaskGroup"),
    "TriggerRule": (f"{_SHIM}.trigger_rule", "TriggerRule"),
    "XComArg": (f"{_SHIM}.xcom_arg", "XComArg"),
    "Label": (f"{_STANDARD}.edgemodifier", "Label"),
    "EdgeModifier": (f"{_STANDARD}.edgemodifier", "EdgeModifier"),
    "Variable": (f"{_STANDARD}.variables", "Variable"),
    "Connection": (f"{_STANDARD}.connections", "Connection"),
    "BaseHook": (f"{_STANDARD}.connections", "BaseHook"),
    "CronTriggerTimetable": (f"{_SCHEDULING}.cron", "CronTriggerTimetable"),
    "CronDataIntervalTimetable": (f"{_SCHEDULING}.cron", "CronDataIntervalTimetable"),
    "DeltaDataIntervalTimetable": (f"{_SCHEDULING}.cron", "DeltaDataIntervalTimetable"),
    "EventsTimetable": (f"{_SCHEDULING}.timetables", "EventsTimetable"),
}

#: What a name stands for, where the shim does not serve it (yet): said by the ImportError.
_FEATURES = {
    "setup": "setup tasks (@setup)",
    "teardown": "teardown tasks (@teardown)",
    "chain_linear": "chain_linear",
    "Label": "edge labels (Label)",
    "EdgeModifier": "edge labels (EdgeModifier)",
    "Variable": "Airflow Variables",
    "Connection": "Airflow connections",
    "BaseHook": "hooks and connections (BaseHook)",
    **{n: f"the timetable {n}" for n in ("CronTriggerTimetable", "CronDataIntervalTimetable",
                                          "DeltaDataIntervalTimetable", "EventsTimetable")},
    **{n: f"assets ({n}; Airflow 3's datasets)" for n in ("Asset", "AssetAlias", "AssetAll", "AssetAny",
                                                           "AssetOrTimeSchedule", "AssetWatcher",
                                                           "AssetAccessControl", "Metadata", "asset")},
    "ObjectStoragePath": "object storage (ObjectStoragePath)",
    "get_parsing_context": "the DAG parsing context (get_parsing_context)",
    "conf": "Airflow's configuration (airflow.sdk.conf)",
    "macros": "airflow.sdk.macros (the macros are served in templates as `macros`)",
}  # fmt: skip
_AIRFLOW3_ALL = (
    "AllowedKeyMapper AsyncCallback BaseAsyncOperator BaseDeadlineReference BaseNotifier BaseOperatorLink BaseXCom "
    "ChainMapper CronPartitionTimetable DagRunState DayWindow DeadlineAlert DeadlineReference DeltaTriggerTimetable "
    "ExceptionRetryPolicy FanOutMapper FixedKeyMapper HourWindow IdentityMapper MinimumCount MonthWindow "
    "MultipleCronTriggerTimetable NEVER_EXPIRE PartitionedAtRuntime PartitionedAssetTimetable PartitionMapper "
    "ProductMapper QuarterWindow ResumableJobMixin RetryAction RetryDecision RetryPolicy RetryRule RollupMapper "
    "SegmentWindow StartOfDayMapper StartOfHourMapper StartOfMonthMapper StartOfQuarterMapper StartOfWeekMapper "
    "StartOfYearMapper SyncCallback TaskInstance TaskInstanceState WaitForAll WeekWindow WeightRule Window YearWindow "
    "deadline_reference lineage literal result"
).split()  # the rest of Airflow 3.3.2's airflow.sdk.__all__, not served

__all__ = sorted(_LAZY)


def _missing(name: str) -> ImportError | None:
    feature = _FEATURES.get(name) or (f"airflow.sdk.{name}" if name in _AIRFLOW3_ALL else None)
    return unsupported_name(__name__, name, feature)


__getattr__ = lazy_getattr(globals(), _LAZY, _missing)
