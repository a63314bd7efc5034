"""Sandbox DDI dataset API: the metadata search (`POST /dataset/search/metadata`) over the staging API's registry.

It finds the registry's datasets by the metadata their stage request sent, matching as DDI
(lexis-project/ddi-service-apis @ 9e96c41) irodsapi/demo/dataset.py `CollChecks` does; which
collections it lists is `DDIState.location`. docs/lexis-contract.md lists its rules (D1-D11).
"""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter, Request

from lexis_prefect.sandbox.ddi import DDIState
from lexis_prefect.sandbox.ddi_http import DDIProblem, ServerError, bearer_user, handler, json_body

__all__ = ["dataset_router", "search"]


def search(state: DDIState, query: Any, user: str) -> list[dict[str, Any]]:
    """The datasets `user` may see whose metadata matches `query`, as DDI irodsapi/demo/dataset.py `CollChecks`.

    Each value is a regex, `re.search`ed case-insensitively against each stored value of the
    key (a multi-valued key holds one value per element); `internalID` is a regex on the
    collection name, `access` is compared for equality; `AlternateIdentifier` (identifier) and
    `AlternateIdentifierType` (type) are matched together, case-sensitively, against one stored
    `[type, identifier]` pair. All keys must match; `{}` matches everything. The real server
    raises (500) on a non-string value or a bad regex: so does this, before looking.
    [I] sandbox choices: every user may list every configured project (no membership), and
    `CustomMetadata` matches when the stored object holds each queried key with an equal value.
    """
    if not isinstance(query, dict):
        raise ServerError("the query is not a JSON object")  # `for key in checks: checks[key]` fails
    for key, value in query.items():
        if key in ("access", "CustomMetadata"):
            continue
        if not isinstance(value, str):
            raise ServerError(f"{key}: re.search of a {type(value).__name__}")
        try:
            re.compile(value)
        except re.error as exc:
            raise ServerError(f"{key}: {exc}") from None
    hits = []
    for entry in sorted(state.datasets.values(), key=lambda e: e.get("created", 0)):
        location = state.location(entry)
        if location is None or (location["access"] == "user" and location["owner"] != user):
            continue
        metadata = entry.get("metadata") or {}
        if _matches(query, entry["id"], location["access"], metadata):
            location = {k: v for k, v in location.items() if k != "owner"}
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.get("created", 0)))
            hits.append({"location": location, "metadata": {**metadata, "CreationDate": created}})
    return hits


def _values(metadata: dict[str, Any], key: str) -> list[str]:
    """The AVU values a key was stored as (DDI irods_transfer.py `set_metadata`: `str(val)` for a
    single-valued key, one `str(element)` per element of a list)."""
    value = metadata.get(key)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _matches(query: dict[str, Any], name: str, access: str, metadata: dict[str, Any]) -> bool:
    """DDI irodsapi/demo/dataset.py `CollChecks`."""
    for key, pattern in query.items():
        if key in ("AlternateIdentifier", "AlternateIdentifierType"):
            continue
        if key == "internalID":
            if re.search(pattern, name, re.IGNORECASE) is None:
                return False
        elif key == "access":
            if pattern != access:
                return False
        elif key == "CustomMetadata":
            stored = metadata.get(key)
            if not isinstance(pattern, dict) or not isinstance(stored, dict) or any(stored.get(k) != v for k, v in pattern.items()):
                return False
        elif not any(re.search(pattern, value, re.IGNORECASE) for value in _values(metadata, key)):
            return False
    if "AlternateIdentifier" in query or "AlternateIdentifierType" in query:
        identifier, kind = query.get("AlternateIdentifier", ""), query.get("AlternateIdentifierType", "")
        pairs = [p for p in metadata.get("AlternateIdentifier") or [] if isinstance(p, list) and len(p) == 2]
        return any(re.search(kind, str(p[0])) and re.search(identifier, str(p[1])) for p in pairs)
    return True


def dataset_router(state: DDIState) -> APIRouter:
    """The dataset API's metadata search, beside the staging API (`/dataset` next to `/staging`).

    Error bodies are the dataset API's own, `{"errorString": ...}` without `status`
    (DDI irodsapi/demo/utils.py). No hits is `200 []` (DDI irodsapi/demo/dataset.py `SearchMeta`).
    """
    router = APIRouter(prefix="/dataset")

    @handler
    async def search_metadata(request: Request) -> tuple[int, Any]:
        user = bearer_user(state.aai, request, dataset=True)  # `GetUserAndTokenAPI` comes first
        query = await json_body(request, dataset=True)
        return 200, search(state, query, user)

    @handler
    async def search_other_method(request: Request) -> tuple[int, Any]:
        bearer_user(state.aai, request, dataset=True)
        # dataset.py `SearchMeta`: neither POST nor DELETE -> E405 (irodsapi/demo/utils.py).
        raise DDIProblem(405, "Method Not Allowed", with_status=False)

    router.add_api_route("/search/metadata", search_metadata, methods=["POST"])
    # [I] DELETE (which deletes every match on the real API) is not emulated: routing answers 405.
    router.add_api_route("/search/metadata", search_other_method, methods=["GET", "PUT", "PATCH"])
    return router
