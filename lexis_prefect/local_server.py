"""Reuse a running local Prefect server for runs in this process, instead of a temporary one.

With no ``PREFECT_API_URL``, every ``python dag.py`` (``dag.test()``), ``python flow.py`` or
``lexis-prefect airflow test`` makes Prefect start a temporary server for the process: 10-12 s
of a 12 s run with a warm Prefect home, ~20 s cold (``bench/server_reuse.py``). When a server is
already running where ``prefect server start`` puts it (``http://127.0.0.1:4200/api``), the run
goes there instead, and says so in one log line; runs then cost ~3 s and stay in its UI.

Only when nothing chose a server: an API URL set anywhere (environment, Prefect profile, a test
harness's temporary settings) wins, and ``LEXIS_PREFECT_REUSE_SERVER=false`` turns the probe off
(the test suite sets it, so that no test talks to a stray server on the machine).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

#: Where ``prefect server start`` listens by default.
DEFAULT_API_URL = "http://127.0.0.1:4200/api"
ENV_URL = "LEXIS_PREFECT_LOCAL_SERVER"  # another address to look at (same host only, by intent)
ENV_REUSE = "LEXIS_PREFECT_REUSE_SERVER"
#: The probe must cost nothing when no server runs: a refused connection returns at once, and a
#: half-open port is given this long.
PROBE_TIMEOUT_S = 0.5

__all__ = ["DEFAULT_API_URL", "ENV_REUSE", "ENV_URL", "reuse_running_server", "running_server"]


def running_server(api_url: str | None = None) -> str | None:
    """``api_url`` (default: the local default) if a Prefect server answers its health check there."""
    import httpx

    url = (api_url or os.environ.get(ENV_URL) or DEFAULT_API_URL).rstrip("/")
    try:
        response = httpx.get(f"{url}/health", timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return None
    return url if response.status_code == 200 and response.json() is True else None


def _wanted() -> bool:
    from prefect.settings import PREFECT_API_URL

    from lexis_prefect.config import env_flag

    return not PREFECT_API_URL.value() and env_flag(ENV_REUSE, True)


@contextlib.contextmanager
def reuse_running_server() -> Iterator[str | None]:
    """Within the block, Prefect uses the running local server if nothing chose one (module doc).

    Yields the URL used, or None (Prefect then does what it would have done).
    """
    url = running_server() if _wanted() else None
    if url is None:
        yield None
        return
    from prefect.logging import get_logger
    from prefect.settings import PREFECT_API_URL, temporary_settings

    get_logger("lexis_prefect").info(
        "Using the Prefect server running at %s (PREFECT_API_URL is unset; %s=false starts a temporary one instead)",
        url,
        ENV_REUSE,
    )
    with temporary_settings({PREFECT_API_URL: url}):
        yield url
