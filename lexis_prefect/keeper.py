"""Token keeping for long workflows: one refreshable token per flow run, always fresh when asked.

The seed's three AAI operators become three Prefect tasks:

- `refresh_token` (LexisAAIOperator): exchanges the user's access token for an
  offline token of our OIDC client and starts a `TokenKeeper` for the run;
- `keep_token` (LexisAAITokenKeeperSensor): a background task that refreshes the
  access token before it expires, for as long as the work lasts;
- `stop_keeper` (LexisAAIStopKeeperOperator): ends it, whatever the outcome.

Tokens never cross a task boundary: tasks pass a keeper id (the flow run id),
and the keeper lives in this process. The offline token is also kept in a
Prefect Secret block named `lexis-offline-token-<id>`, so that a restarted run
(or a cancellation hook in another process) can act again without the user's
long-expired access token; `stop_keeper` deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import threading
from collections.abc import AsyncIterator
from datetime import datetime, timezone

from prefect import task
from prefect.blocks.system import Secret
from prefect.exceptions import MissingContextError, Pause, TerminationSignal
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from pydantic import SecretStr

from lexis_prefect.blocks import AccessToken, LexisCredentials, resolve_credentials, reveal_token
from lexis_prefect.exceptions import AuthenticationError, ConfigurationError, LexisError
from lexis_prefect.models.aai import TokenSet, is_offline_token

__all__ = [
    "RUN_STOPPING",
    "TokenKeeper",
    "forget_offline_token",
    "keep_token",
    "keeper",
    "kept_token",
    "refresh_token",
    "restore_keeper",
    "stop_keeper",
    "storage_key",
]

logger = logging.getLogger("lexis_prefect.keeper")

_KEEPERS: dict[str, TokenKeeper] = {}

#: What a run that is being cancelled or stopped raises inside its tasks and flows.
RUN_STOPPING = (asyncio.CancelledError, KeyboardInterrupt, TerminationSignal)


class TokenKeeper:
    """Holds a run's `TokenSet` and refreshes it before it expires.

    `access_token()` is what every client's token source calls: it refreshes on
    demand when less than `margin` remains, so no call ever goes out with an
    expired token, even when the background refresh is late. Safe to share
    between threads and event loops (each refresh uses its own short-lived client).
    """

    def __init__(self, keeper_id: str, credentials: LexisCredentials, tokens: TokenSet) -> None:
        self.keeper_id = keeper_id
        self.credentials = credentials
        self._tokens = tokens
        self._lock = threading.Lock()
        self.stopped = threading.Event()
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenKeeper({self.keeper_id!r}, expires_at={self._tokens.expires_at.isoformat()})"

    @property
    def margin_seconds(self) -> float:
        """Refresh when a third of the lifetime is left (at most 60 s before expiry)."""
        return min(60.0, self._tokens.expires_in / 3)

    async def access_token(self) -> SecretStr:
        if self._tokens.expires_within(self.margin_seconds):
            await self.refresh()
        return self._tokens.access_token

    async def refresh(self) -> None:
        await asyncio.to_thread(self._lock.acquire)
        try:
            if not self._tokens.expires_within(self.margin_seconds):
                return  # someone else refreshed while we waited for the lock
            async with self.credentials.get_client("aai") as aai:
                self._tokens = await aai.refresh(self._tokens)
            self.refreshes += 1
            _log().info("LEXIS token refreshed (valid until %s UTC)", self._tokens.expires_at.strftime("%H:%M:%S"))
        finally:
            self._lock.release()

    def seconds_to_refresh(self) -> float:
        due = self._tokens.expires_at.timestamp() - self.margin_seconds
        return max(0.0, due - datetime.now(timezone.utc).timestamp())

    async def keep(self, poll_seconds: float = 1.0) -> int:
        """Refresh before expiry until `stopped` is set; returns how many refreshes it made.

        A refresh that fails for want of an answer is tried again at the next poll
        (callers still refresh on demand); a refused refresh token ends the keeping.
        """
        while not self.stopped.is_set():
            if self.seconds_to_refresh() <= 0:
                try:
                    await self.refresh()
                except AuthenticationError:
                    raise
                except LexisError as exc:
                    _log().warning("token refresh failed, trying again: %s", exc)
            await asyncio.to_thread(self.stopped.wait, min(poll_seconds, max(0.05, self.seconds_to_refresh())))
        return self.refreshes

    @property
    def username(self) -> str | None:
        return self._tokens.username


def _log() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger inside a flow or task run (so the UI shows it), else this module's."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logger


def keeper(keeper_id: str) -> TokenKeeper:
    """The keeper of a run in this process."""
    try:
        return _KEEPERS[keeper_id]
    except KeyError:
        raise ConfigurationError(f"no token keeper {keeper_id!r} in this process: run refresh_token first") from None


def run_keeper_id() -> str:
    """The keeper id of the current flow run when none is given: its flow run id."""
    return str(flow_run.id or "local")


def storage_key(keeper_id: str) -> str:
    """`keeper_id` as block and Variable names take it (lowercase letters, digits, dashes).

    A flow run id is one already; a user's `run_key` may hold anything else.
    """
    slug = re.sub(r"[^a-z0-9-]+", "-", keeper_id.lower())
    if slug != keeper_id:  # two keys that slug alike must not share a token
        slug = f"{slug}-{hashlib.sha1(keeper_id.encode()).hexdigest()[:10]}"
    return slug


def _secret_name(keeper_id: str) -> str:
    return f"lexis-offline-token-{storage_key(keeper_id)}"


async def _saved_offline_token(keeper_id: str) -> SecretStr | None:
    try:
        secret = await Secret.aload(_secret_name(keeper_id))
    except ValueError:  # no such block
        return None
    return SecretStr(secret.get())


async def restore_keeper(keeper_id: str, credentials_block: str | None = None) -> TokenKeeper | None:
    """The run's keeper, rebuilt from its saved offline token if this process has none; None if never saved."""
    if keeper_id in _KEEPERS:
        return _KEEPERS[keeper_id]
    saved = await _saved_offline_token(keeper_id)
    if saved is None:
        return None
    credentials = resolve_credentials(credentials_block)
    async with credentials.get_client("aai") as aai:
        tokens = await aai.refresh(saved)
    _KEEPERS[keeper_id] = TokenKeeper(keeper_id, credentials, tokens)
    return _KEEPERS[keeper_id]


@task(name="refresh_token", task_run_name="refresh_token")
async def refresh_token(
    access_token: AccessToken | str,
    offline_access: bool = True,
    credentials_block: str | None = None,
    keeper_id: str | None = None,
) -> str:
    """Turn the user's access token into a refreshable token kept for this run; returns the keeper id.

    An offline token (what `lexis-prefect blocks save-token` keeps for deployments) is refreshed
    instead of exchanged.

    A rerun of the same flow run (or with the same `keeper_id`) reuses the
    offline token saved by the first attempt instead of the user's access
    token, which may well have expired by then.
    """
    keeper_id = keeper_id or run_keeper_id()
    if await restore_keeper(keeper_id, credentials_block) is not None:
        _log().info("re-attached to the offline token of run %s", keeper_id)
        return keeper_id
    credentials = resolve_credentials(credentials_block)
    token = reveal_token(access_token)
    async with credentials.get_client("aai") as aai:
        if is_offline_token(token):  # saved for a deployment (`lexis-prefect blocks save-token`)
            tokens = await aai.refresh(token)
        else:
            tokens = await aai.exchange_token(token, offline_access=offline_access)
    if tokens.refresh_token is not None:
        await Secret(value=tokens.refresh_token).asave(_secret_name(keeper_id), overwrite=True)
    _KEEPERS[keeper_id] = TokenKeeper(keeper_id, credentials, tokens)
    _log().info("LEXIS token obtained for %s (offline: %s)", tokens.username or "the user", tokens.is_offline)
    return keeper_id


@task(name="keep_token", task_run_name="ref_token_keeper")
async def keep_token(keeper_id: str) -> int:
    """Background: refresh the run's token before it expires until `stop_keeper`; returns the refresh count."""
    count = await keeper(keeper_id).keep()
    _log().info("token keeper stopped after %d refresh(es)", count)
    return count


@task(name="stop_keeper", task_run_name="ref_token_stop")
async def stop_keeper(keeper_id: str, forget_token: bool = True) -> None:
    """Stop the keeper and forget the run's offline token (in memory, and in its Secret block).

    `forget_token=False` keeps the Secret block for a cancellation hook that still has
    HPC jobs to cancel; `forget_offline_token` removes it afterwards.
    """
    kept = _KEEPERS.pop(keeper_id, None)
    if kept is not None:
        kept.stopped.set()
    if forget_token:
        await forget_offline_token(keeper_id)


async def forget_offline_token(keeper_id: str) -> None:
    """Delete the run's saved offline token, if any."""
    try:
        await Secret.adelete(_secret_name(keeper_id))
    except ValueError:  # never saved (no refresh token), or already deleted
        pass


@contextlib.asynccontextmanager
async def kept_token(
    access_token: AccessToken,
    *,
    offline_access: bool = True,
    credentials_block: str | None = None,
    run_key: str | None = None,
) -> AsyncIterator[str]:
    """`refresh_token`, then `keep_token` in the background until the block ends, then `stop_keeper`.

    The seed's `ref_token >> ref_token_keeper` and `... >> ref_token_stop` (ALL_DONE)
    in one `async with`; yields the keeper id to hand to `build_hpc_job_step`.
    """
    keeper_id = await refresh_token(access_token, offline_access, credentials_block, run_key)
    background = asyncio.create_task(keep_token(keeper_id))
    stopping = suspending = False
    try:
        yield keeper_id
    except RUN_STOPPING:
        stopping = True  # the run's cancellation hook may still need the token
        raise
    except Pause:
        suspending = True  # the resumed run, and the watcher meanwhile, refresh the saved offline token
        raise
    finally:
        if suspending:  # no task may start in a suspending run: stop the keeper in memory only
            await stop_keeper.fn(keeper_id, forget_token=False)
        else:
            await asyncio.shield(stop_keeper(keeper_id, forget_token=not stopping))  # whatever the outcome
        # A keeper that failed shows as a failed task run; it must not mask the work's own outcome.
        await asyncio.gather(background, return_exceptions=True)
