"""``airflow.utils.dates`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.dates import (
    cron_presets,
    date_range,
    datetime_to_nano,
    days_ago,
    infer_time_unit,
    parse_execution_date,
    round_time,
    scale_time_units,
)

__all__ = [
    "cron_presets",
    "date_range",
    "datetime_to_nano",
    "days_ago",
    "infer_time_unit",
    "parse_execution_date",
    "round_time",
    "scale_time_units",
]
