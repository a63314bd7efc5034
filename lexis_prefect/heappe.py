"""Async client of HEAppE: session, job lifecycle, and reading a job's files as they grow."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import Base64Bytes, SecretStr

from lexis_prefect._http import ServiceClient, TokenSource, current_token
from lexis_prefect.config import DEFAULT_TIMEOUT, RetryPolicy
from lexis_prefect.exceptions import AuthenticationError, ConfigurationError, LexisAPIError
from lexis_prefect.models.aai import token_username
from lexis_prefect.models.heappe import (
    AuthenticateLexisTokenRequest,
    ChangedFile,
    ClusterInfo,
    CreateJobRequest,
    DeleteJobRequest,
    DownloadFileRequest,
    DownloadPartsRequest,
    JobFileContent,
    JobRequest,
    JobSpecification,
    OpenIdCredentials,
    SubmitJobRequest,
    SubmittedJobInfo,
    TaskFileOffset,
    _SessionRequest,
)

__all__ = ["HEAppEClient"]

logger = logging.getLogger("lexis_prefect.heappe")

# [V] HEAppE's session-code validator; anything else is not a session code.
_SESSION_CODE = re.compile(r"^[0-z]{8}-[0-z]{4}-[0-z]{4}-[0-z]{4}-[0-z]{12}$")
_BEARER_MODE = "HEADER-AUTH-NEEDED"

BodyFactory = Callable[[SecretStr], _SessionRequest]


class HEAppEClient(ServiceClient):
    """Talks to one HEAppE instance on behalf of one LEXIS user.

    Args:
        base_url: the instance, e.g. `https://<heappe-host>` or `https://<host>/<instance>`;
            the client appends `heappe/<Controller>/<Action>`.
        access_token: the user's LEXIS token, or an async callable giving the current one.
        username: the LEXIS user name; read from the token's `preferred_username` if omitted.

    The session code is obtained on first use and renewed once, transparently,
    when HEAppE answers 401 (session codes expire long before an HPC job does).
    Creating and submitting are not idempotent and are never repeated after they
    may have reached the server; reads, cancel and delete are retried.
    """

    service = "heappe"

    def __init__(
        self,
        base_url: str,
        access_token: TokenSource,
        *,
        username: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout=timeout, retry=retry, transport=transport)
        self._access_token = access_token
        self._username = username
        self._session_code: SecretStr | None = None
        self._session_lock = asyncio.Lock()

    # -- session ---------------------------------------------------------------------------

    async def authenticate(self) -> None:
        """Log in with the LEXIS token (`AuthenticateLexisToken`) and keep the session code."""
        sent: list[str] = []

        async def body() -> Any:
            # Built for each attempt: a retry after backoff sends the keeper's current token.
            token = await current_token(self._access_token)
            sent.append(token.get_secret_value())
            username = self._username or token_username(token)
            if not username:
                raise ConfigurationError("HEAppE needs a user name: pass username=, or a token with preferred_username")
            return AuthenticateLexisTokenRequest(
                credentials=OpenIdCredentials(user_name=username, open_id_access_token=token)
            ).payload()

        response = await self._request(
            "POST",
            "heappe/UserAndLimitationManagement/AuthenticateLexisToken",
            idempotent=True,  # a lost answer only costs an unused session
            json=body,
            secrets=sent,
        )
        code = self._parse(response, str)
        if code == _BEARER_MODE:
            # [V] newer deployments may want `Authorization: Bearer` on every call instead.
            raise ConfigurationError(f"HEAppE at {self.base_url} runs in bearer mode, which is not supported yet")
        if not _SESSION_CODE.match(code):
            raise LexisAPIError(
                "heappe AuthenticateLexisToken: the answer is not a session code",
                service=self.service,
                method="POST",
                path=response.request.url.path,
                status=response.status_code,
            )
        self._session_code = SecretStr(code)

    async def _session(self) -> SecretStr:
        async with self._session_lock:
            if self._session_code is None:
                await self.authenticate()
            assert self._session_code is not None
            return self._session_code

    def _secrets(self) -> list[str]:
        return [self._session_code.get_secret_value()] if self._session_code else []

    async def _call(
        self,
        method: str,
        action: str,
        *,
        idempotent: bool,
        body: BodyFactory | None = None,
        query: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One HEAppE call with the session code in the body or the query.

        A 401 means the call was refused before it did anything, so even a
        create is safe to send again with a fresh session code; once.
        """
        for renewed in (False, True):
            code = await self._session()
            try:
                return await self._request(
                    method,
                    f"heappe/{action}",
                    idempotent=idempotent,
                    json=body(code).payload() if body else None,
                    params={"sessionCode": code.get_secret_value(), **query} if query is not None else None,
                )
            except AuthenticationError as exc:
                if renewed or exc.status != 401:
                    raise
                logger.info("HEAppE refused the session code; authenticating again")
                async with self._session_lock:
                    if self._session_code == code:
                        self._session_code = None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- clusters and jobs -----------------------------------------------------------------

    async def list_available_clusters(self) -> list[ClusterInfo]:
        """Clusters with their node types, projects and command templates (to resolve names to ids)."""
        response = await self._call("GET", "ClusterInformation/ListAvailableClusters", idempotent=True, query={})
        return self._parse(response, list[ClusterInfo])

    async def create_job(self, specification: JobSpecification) -> SubmittedJobInfo:
        """Create a job (state Configuring); it runs only after `submit_job`."""
        response = await self._call(
            "POST",
            "JobManagement/CreateJob",
            idempotent=False,
            body=lambda code: CreateJobRequest(session_code=code, job_specification=specification),
        )
        return self._parse(response, SubmittedJobInfo)

    async def submit_job(self, job_id: int) -> SubmittedJobInfo:
        """Hand a created job to the cluster's scheduler."""
        response = await self._call(
            "PUT",
            "JobManagement/SubmitJob",
            idempotent=False,
            body=lambda code: SubmitJobRequest(session_code=code, created_job_info_id=job_id),
        )
        return self._parse(response, SubmittedJobInfo)

    async def job_info(self, job_id: int) -> SubmittedJobInfo:
        """The job's current state and its tasks (`CurrentInfoForJob`)."""
        response = await self._call(
            "GET", "JobManagement/CurrentInfoForJob", idempotent=True, query={"submittedJobInfoId": job_id}
        )
        return self._parse(response, SubmittedJobInfo)

    async def list_jobs(self) -> list[SubmittedJobInfo]:
        """Every job of the current user (`ListJobsForCurrentUser`), e.g. to find one by name."""
        response = await self._call("GET", "JobManagement/ListJobsForCurrentUser", idempotent=True, query={})
        return self._parse(response, list[SubmittedJobInfo])

    async def cancel_job(self, job_id: int) -> SubmittedJobInfo:
        """Ask the scheduler to cancel the job; the state becomes Canceled, possibly a poll later."""
        response = await self._call(
            "PUT",
            "JobManagement/CancelJob",
            idempotent=True,
            body=lambda code: JobRequest(session_code=code, submitted_job_info_id=job_id),
        )
        return self._parse(response, SubmittedJobInfo)

    async def delete_job(self, job_id: int, *, archive_logs: bool = False) -> str:
        """Remove the job record and its working directory; returns HEAppE's message."""
        response = await self._call(
            "DELETE",
            "JobManagement/DeleteJob",
            idempotent=True,
            body=lambda code: DeleteJobRequest(
                session_code=code, submitted_job_info_id=job_id, archive_logs=archive_logs
            ),
        )
        return self._parse(response, str)

    # -- files -----------------------------------------------------------------------------

    async def download_file_parts(self, job_id: int, offsets: list[TaskFileOffset]) -> list[JobFileContent]:
        """What each task file gained since its offset (tail -f); send back the returned offsets next time."""
        response = await self._call(
            "POST",
            "FileTransfer/DownloadPartsOfJobFilesFromCluster",
            idempotent=True,  # a read, though it is a POST
            body=lambda code: DownloadPartsRequest(
                session_code=code, submitted_job_info_id=job_id, task_file_offsets=offsets
            ),
        )
        return self._parse(response, list[JobFileContent])

    async def list_changed_files(self, job_id: int) -> list[ChangedFile]:
        """Files of the job's directory with their modification times."""
        response = await self._call(
            "GET", "FileTransfer/ListChangedFilesForJob", idempotent=True, query={"submittedJobInfoId": job_id}
        )
        return self._parse(response, list[ChangedFile])

    async def download_file(self, job_id: int, relative_path: str) -> bytes:
        """One whole file of the job's directory.

        [V] HEAppE's FileTransferService returns `byte[]`, which ASP.NET
        serialises as a base64 JSON string.
        """
        response = await self._call(
            "POST",
            "FileTransfer/DownloadFileFromCluster",
            idempotent=True,
            body=lambda code: DownloadFileRequest(
                session_code=code, submitted_job_info_id=job_id, relative_file_path=relative_path
            ),
        )
        return self._parse(response, Base64Bytes)
