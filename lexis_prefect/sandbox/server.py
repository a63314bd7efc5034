"""Running the sandbox: in the foreground (`lexis-prefect sandbox`), or as a subprocess for tests and demos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from lexis_prefect.sandbox.app import create_app
from lexis_prefect.sandbox.config import SandboxConfig

__all__ = ["SandboxProcess", "sandbox_environment", "serve"]


class _Server(uvicorn.Server):
    """A uvicorn server that says where it listens once it does (port 0 picks a free one)."""

    def __init__(self, config: uvicorn.Config, ready_file: Path | None) -> None:
        super().__init__(config)
        self.ready_file = ready_file

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        url = f"http://{host}:{port}"
        print(f"LEXIS sandbox listening on {url} (Ctrl-C stops it)", flush=True)
        if self.ready_file is not None:
            temporary = self.ready_file.with_suffix(".tmp")
            temporary.write_text(url)
            temporary.replace(self.ready_file)


def serve(config: SandboxConfig, host: str = "127.0.0.1", port: int = 8765, ready_file: Path | None = None) -> None:
    """Run the sandbox until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    app = create_app(config)
    log_level = "info" if config.log_requests else "warning"
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False), ready_file)
    server.run()


class SandboxProcess:
    """A sandbox in a subprocess on a free loopback port, for tests and `python flow.py`.

    Use as a context manager; `url` is its base URL. Arguments are
    `lexis-prefect sandbox` options, e.g. `SandboxProcess("--token-lifetime", "3")`;
    `heappe_version` ("4.3", "5.0", "6.0", "6.3") picks the HEAppE emulated (default: the CLI's, 6.3).
    """

    def __init__(
        self, *args: str, state_dir: Path | None = None, startup_timeout: float = 30.0, heappe_version: str | None = None
    ) -> None:
        self.args = list(args) + (["--heappe-version", heappe_version] if heappe_version else [])
        self.state_dir = state_dir
        self.startup_timeout = startup_timeout
        self.url = ""
        self._work = Path(tempfile.mkdtemp(prefix="lexis-sandbox-run-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self._work / "sandbox.log"

    def start(self) -> SandboxProcess:
        ready = self._work / "url"
        ready.unlink(missing_ok=True)
        command = [sys.executable, "-m", "lexis_prefect.cli", "sandbox", "--port", "0", "--ready-file", str(ready)]
        if self.state_dir is not None:
            command += ["--state-dir", str(self.state_dir)]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command + self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=os.environ.copy()
            )
        deadline = time.monotonic() + self.startup_timeout
        while not ready.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox did not start; its log:\n{self.log_file.read_text()[-3000:]}")
            time.sleep(0.05)
        self.url = ready.read_text().strip()
        httpx.get(f"{self.url}/_sandbox/health", timeout=10).raise_for_status()
        return self

    def stop(self) -> None:
        """Stop it like Ctrl-C does (its jobs are killed unless it keeps a --state-dir)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the places of the emulated services -------------------------------------------------

    def aai_url(self, realm: str = "LEXIS_AAI") -> str:
        return f"{self.url}/auth/realms/{realm}"

    @property
    def staging_url(self) -> str:
        return f"{self.url}/staging"

    @property
    def dataset_url(self) -> str:
        return f"{self.url}/dataset"

    def heappe_url(self, location: str | None = None) -> str:
        """The first location's HEAppE is at the root; the others under /locations/<name>."""
        prefix = self.control("GET", "config")["heappe_paths"]
        return self.url + (prefix[location] if location else "")

    def environment(self, client_id: str = "lexis-prefect") -> dict[str, str]:
        """The `LEXIS_*` variables that point lexis-prefect (`resolve_credentials`) at this sandbox."""
        return sandbox_environment(self.url, client_id)

    def demo_token(self, user: str = "demo", password: str = "demo", client_id: str = "lexis-prefect") -> SecretStr:
        """A fresh access token of a sandbox user (password grant), as a user would bring one."""
        answer = httpx.post(
            f"{self.aai_url()}/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": client_id, "username": user, "password": password},
            timeout=30,
        )
        answer.raise_for_status()
        return SecretStr(answer.json()["access_token"])

    # -- control API -------------------------------------------------------------------------

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}/_sandbox/{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def set_faults(self, **faults: Any) -> None:
        self.control("PUT", "faults", json=faults)

    def set_available(self, location: str, available: bool) -> None:
        self.control("PUT", f"locations/{location}", params={"available": json.dumps(available)})

    def settings(self, **settings: Any) -> None:
        self.control("PATCH", "settings", json=settings)

    def jobs(self) -> list[dict[str, Any]]:
        return self.control("GET", "jobs")

    def dataset_files(self, dataset_id: str) -> dict[str, str]:
        return self.control("GET", f"datasets/{dataset_id}/files")


def sandbox_environment(url: str, client_id: str = "lexis-prefect", realm: str = "LEXIS_AAI") -> dict[str, str]:
    """The `LEXIS_*` variables that point lexis-prefect at the sandbox running at `url` (any process's)."""
    url = url.rstrip("/")
    response = httpx.get(f"{url}/_sandbox/config", timeout=30)
    response.raise_for_status()
    config = response.json()
    return {
        "LEXIS_AAI_URL": f"{url}/auth/realms/{realm}",
        "LEXIS_STAGING_URL": f"{url}/staging",
        "LEXIS_DATASET_URL": f"{url}/dataset",
        "LEXIS_CLIENT_ID": client_id,
        "LEXIS_HEAPPE_URLS": json.dumps({name: url + path for name, path in config["heappe_paths"].items()}),
        "LEXIS_HPC_STAGING_SYSTEMS": json.dumps({loc["name"]: loc["ddi_system"] for loc in config["locations"]}),
    }
