"""``airflow.utils.timezone`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.timezone import (
    coerce_datetime,
    convert_to_utc,
    is_localized,
    is_naive,
    make_aware,
    make_naive,
    parse,
    utc,
    utcnow,
)

__all__ = [
    "coerce_datetime",
    "convert_to_utc",
    "is_localized",
    "is_naive",
    "make_aware",
    "make_naive",
    "parse",
    "utc",
    "utcnow",
]
