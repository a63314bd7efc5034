"""Async clients of the LEXIS DDI: the staging API (copy data between DDI and HPC, and wait for it),
and the dataset API's metadata search (find the dataset a stage-out made)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

import httpx

from lexis_prefect._http import BearerAuth, ServiceClient, TokenSource
from lexis_prefect.config import DEFAULT_TIMEOUT, PollPolicy, RetryPolicy
from lexis_prefect.exceptions import LexisAPIError, NotFoundError, StagingFailedError, StagingTimeoutError
from lexis_prefect.models.ddi import (
    DatasetHit,
    DeleteRequest,
    StageRequest,
    StagingRequestId,
    StagingState,
    StagingStatus,
)

__all__ = ["DDIDatasetClient", "DDIStagingClient"]

logger = logging.getLogger("lexis_prefect.ddi")

Operation = Literal["stage", "delete"]


class _DDIClient(ServiceClient):
    """What the DDI's two APIs share: the user's LEXIS token as `Authorization: Bearer`."""

    service = "ddi"

    def __init__(
        self,
        base_url: str,
        access_token: TokenSource,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout=timeout, retry=retry, transport=transport, auth=BearerAuth(access_token))


class DDIStagingClient(_DDIClient):
    """Submits staging requests and follows them to the end.

    Args:
        base_url: base of the staging API (`staging_url`), e.g. `https://<host>/staging`
            (the real deployment prefix is not pinned down [I]).
        access_token: the user's LEXIS token, or an async callable giving the
            current one (a token keeper); sent as `Authorization: Bearer`.

    Submitting (`stage`) is not idempotent, a repeat would copy twice: it is
    repeated only when the request never left. Status reads are retried freely
    (on 500 too: [V] `GET /stage/<id>` is known to answer 500 or 502 now and then).
    """

    async def info(self) -> list[str]:
        """The system names this staging API knows (`GET /info`)."""
        response = await self._request("GET", "info", idempotent=True)
        return self._parse(response, list[str])

    async def stage(self, request: StageRequest) -> str:
        """Submit a copy (`POST /stage`); returns the request id to poll."""
        response = await self._request("POST", "stage", idempotent=False, json=request.payload())
        return self._parse(response, StagingRequestId).request_id

    async def delete(self, target_system: str, target_path: str) -> str:
        """Submit a deletion (`DELETE /delete` with a JSON body); returns the request id to poll.

        `target_path` is relative to the system's base path, e.g. `project/proj<md5>/<dataset id>`.
        The published staging API serves `/delete` for DELETE only (ddi-service-apis 9e96c41
        staging/staging/views.py `delete_copy`: `if request.method == 'DELETE'`, no other branch, so
        a POST ends in Django's 500). The Yorc DDI plugin POSTs it (yorc-ddi-plugin 03d54ff
        ddi/ddi.go `SubmitDDIDataDeletion`), so a deployment may take POST only: a 405 answer to the
        DELETE (nothing was done) is followed by one POST [I: no source shows a server answering 405
        here; a 500 is not taken as that sign, it may be a failure of a delete that was attempted].
        Treated as idempotent: deleting what is already gone changes nothing.
        """
        body = DeleteRequest(target_system=target_system, target_path=target_path).model_dump()
        try:
            response = await self._request("DELETE", "delete", idempotent=True, json=body)
        except LexisAPIError as exc:
            if exc.status != 405:
                raise
            logger.info("ddi DELETE /delete answered 405: submitting the deletion with POST")
            response = await self._request("POST", "delete", idempotent=True, json=body)
        return self._parse(response, StagingRequestId).request_id

    async def status(self, request_id: str, operation: Operation = "stage") -> StagingStatus:
        """The status of a request (`GET /<operation>/<request_id>`).

        An unknown id reads as queued, as on the real API (Celery cannot tell them apart).
        """
        response = await self._request("GET", f"{operation}/{request_id}", idempotent=True)
        return self._parse(response, StagingStatus)

    async def wait(
        self, request_id: str, operation: Operation = "stage", poll: PollPolicy | None = None
    ) -> StagingStatus:
        """Poll a request until it completes; returns its final status.

        Raises:
            StagingFailedError: it ended `Task Failed, reason: ...`.
            StagingTimeoutError: `poll.timeout_seconds` passed first.
            LexisAPIError: the API answered a status string nobody documents.
        """
        poll = poll or PollPolicy()
        started = time.monotonic()
        last: StagingStatus | None = None
        for interval in poll.intervals():
            status = await self.status(request_id, operation)
            if last is None or status.status != last.status:
                logger.info("staging %s %s: %s", operation, request_id, status.status)
            last = status
            if status.state is StagingState.COMPLETED:
                return status
            if status.state is StagingState.FAILED:
                raise StagingFailedError(request_id, status.failure_reason or "")
            if status.state is StagingState.UNKNOWN:
                raise LexisAPIError(
                    f"ddi {operation} {request_id}: unexpected status {status.status!r}",
                    service=self.service,
                    method="GET",
                    path=f"/{operation}/{request_id}",
                    status=200,
                )
            if poll.timeout_seconds is not None:
                elapsed = time.monotonic() - started
                if elapsed >= poll.timeout_seconds:
                    raise StagingTimeoutError(request_id, elapsed, status.status)
                interval = min(interval, poll.timeout_seconds - elapsed)
            await asyncio.sleep(interval)
        raise AssertionError("unreachable: PollPolicy.intervals() is endless")  # pragma: no cover


class DDIDatasetClient(_DDIClient):
    """Searches the DDI dataset API by metadata.

    Args:
        base_url: base of the dataset API (`dataset_url`), e.g. `https://api.lexis.tech/api/v0.2/dataset`
            ([V] Py4Lexis; `LexisEndpoints.dataset_api_url()` gives it).
        access_token: as for `DDIStagingClient`.

    It exists for one question a staging client cannot answer: did a stage-out whose
    answer was lost (a 5xx, a dropped connection) create its dataset anyway? A stage-out
    tags its dataset with a unique marker (`alternate_identifier_query`) and, before being
    repeated, is looked up by it here; a repeat would otherwise copy twice.
    """


    async def search(self, metadata: dict[str, str]) -> list[DatasetHit]:
        """The datasets the user may see whose metadata matches `metadata` (`POST /search/metadata`).

        Each value is a regular expression that the server matches with `re.search`, ignoring
        case, against each stored value of that key; all keys must match (ddi-service-apis 9e96c41
        irodsapi/demo/dataset.py `CollChecks`). Values must be strings: a list makes the server's
        `re.search` raise, a 500. Use `alternate_identifier_query` for an exact marker.

        A read, so retried like one even though it is a POST. No hits is `200 []` on the published
        server; a 404 is read as no hits too, as the Yorc DDI plugin does with a "not found" search
        error (yorc-ddi-plugin 03d54ff job/monitoring_jobs.go). A 5xx is an error, never "no hits".
        """
        if any(not isinstance(value, str) for value in metadata.values()):
            raise ValueError("dataset search values are regular expressions (strings); the server fails on anything else")
        try:
            response = await self._request("POST", "search/metadata", idempotent=True, json=metadata)
        except NotFoundError:
            return []
        return self._parse(response, list[DatasetHit])
