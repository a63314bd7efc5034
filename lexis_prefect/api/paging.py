"""Airflow's `limit` and `offset` (apache-airflow 2.10.5, `airflow/api_connexion/parameters.py`
`check_limit`, and the `[api]` options `maximum_page_limit` = `fallback_page_limit` = 100): a limit
above the maximum is cut to it, 0 means the fallback, a negative one is a 400."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query

from lexis_prefect.api.errors import Problem

__all__ = ["Limit", "Offset", "page"]

MAXIMUM_PAGE_LIMIT = 100
FALLBACK_PAGE_LIMIT = 100
T = TypeVar("T")


def _limit(limit: Annotated[int, Query()] = FALLBACK_PAGE_LIMIT) -> int:
    if limit < 0:
        raise Problem(400, None, title="Page limit must be a positive integer")
    if limit == 0:
        return FALLBACK_PAGE_LIMIT
    return min(limit, MAXIMUM_PAGE_LIMIT)


def _offset(offset: Annotated[int, Query(ge=0)] = 0) -> int:
    return offset


Limit = Annotated[int, Depends(_limit)]
Offset = Annotated[int, Depends(_offset)]


def page(items: list[T], limit: int, offset: int) -> list[T]:
    return items[offset : offset + limit]


def sort_key(value: Any) -> tuple[bool, Any]:
    """None sorts first, as SQL's NULLS FIRST for ascending order."""
    return (value is not None, value if value is not None else 0)
