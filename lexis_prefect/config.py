"""Value objects that tune the clients: timeouts, retries and polling."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_TIMEOUT", "PollPolicy", "RetryPolicy", "env_flag"]

#: Every call has a timeout: 30 s to read an answer, 10 s to open a connection.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class RetryPolicy(BaseModel):
    """When and how often a failed call is repeated.

    Only failures that are safe to repeat are retried: no response at all
    (connection error, timeout) and the statuses in `statuses`, and only on
    idempotent calls. A non-idempotent call (creating a job or a staging
    request) is repeated only when it provably did not reach the server: the
    connection could not be opened, or the server answered 429.
    """

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=4, ge=1, description="Total attempts, the first one included.")
    backoff_seconds: float = Field(default=0.5, ge=0, description="Wait before the first retry; doubles each time.")
    max_backoff_seconds: float = Field(default=10.0, ge=0, description="Cap on the wait between attempts.")
    max_retry_after_seconds: float = Field(
        default=120.0, ge=0, description="A 429/503 Retry-After longer than this is not waited for: the error is raised."
    )
    statuses: frozenset[int] = Field(
        # 500 is here because reads meet it as a passing fault ([V] DDI's GET /stage/<id>);
        # it only ever repeats idempotent calls, like the rest of this set but 429.
        default=frozenset({429, 500, 502, 503, 504}),
        description="HTTP statuses that mean 'try again later' (for non-idempotent calls only 429 does).",
    )

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry number `retry_number` (1-based), without jitter."""
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (retry_number - 1))


class PollPolicy(BaseModel):
    """How often a long-running remote operation is polled: capped exponential backoff."""

    model_config = ConfigDict(frozen=True)

    interval_seconds: float = Field(default=1.0, gt=0, description="Wait before the second poll.")
    max_interval_seconds: float = Field(default=30.0, gt=0, description="Cap on the wait between polls.")
    backoff_factor: float = Field(default=1.5, ge=1, description="Each wait is the previous one times this.")
    timeout_seconds: float | None = Field(default=None, gt=0, description="Give up after this long; None waits forever.")

    def intervals(self) -> Iterator[float]:
        """The waits between polls: interval, interval*factor, ... capped at max_interval_seconds."""
        wait = self.interval_seconds
        while True:
            yield min(wait, self.max_interval_seconds)
            wait *= self.backoff_factor


def env_flag(name: str, default: bool) -> bool:
    """An on/off setting from the environment (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).

    Anything else is refused, naming the variable, rather than read as either."""
    from lexis_prefect.exceptions import ConfigurationError

    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    value = value.strip().lower()
    if value not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ConfigurationError(f"{name}={value!r}: use true or false")
    return value in ("1", "true", "yes", "on")
