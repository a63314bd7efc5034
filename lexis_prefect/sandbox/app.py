"""The sandbox application: the three emulated services on one port, plus a control API.

The control API lives under `/_sandbox/` so that test knobs never mix with the
emulated paths (moto's pattern); faults never touch it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import BaseModel, ConfigDict, Field

from lexis_prefect.sandbox.aai import AAIState, aai_router
from lexis_prefect.sandbox.config import FaultConfig, SandboxConfig
from lexis_prefect.sandbox.datasets import dataset_router
from lexis_prefect.sandbox.ddi import DDIState, ddi_router
from lexis_prefect.sandbox.ddi_http import DDIProblem
from lexis_prefect.sandbox.errors import service_error
from lexis_prefect.sandbox.faults import FaultInjector, FaultPlan, RequestLog
from lexis_prefect.sandbox.heappe import HEAppEState, heappe_router

__all__ = ["Sandbox", "create_app"]

logger = logging.getLogger("lexis_prefect.sandbox")
_TICK_SECONDS = 0.1


class Sandbox:
    """The state of every emulated service, and where it is kept."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._own_data_dir = config.data_dir is None and config.state_dir is None
        if config.data_dir is not None:
            self.data_dir = config.data_dir
        elif config.state_dir is not None:
            self.data_dir = config.state_dir / "data"
        else:
            self.data_dir = Path(tempfile.mkdtemp(prefix="lexis-sandbox-"))
        self.aai = AAIState(config)
        self.heappe = HEAppEState(config, self.aai, self.data_dir)
        self.ddi = DDIState(config, self.aai, self.heappe, self.data_dir)
        self.faults = FaultPlan(config.faults)

    @property
    def _state_file(self) -> Path | None:
        return None if self.config.state_dir is None else self.config.state_dir / "state.json"

    def load(self) -> None:
        if self._state_file is not None and self._state_file.exists():
            data = json.loads(self._state_file.read_text())
            self.aai.load(data["aai"])
            self.heappe.load(data["heappe"])
            self.ddi.load(data["ddi"])
            logger.info("sandbox state loaded from %s", self._state_file)
        self.ddi.seed_demo()

    def save_if_changed(self) -> None:
        dirty = self.aai.dirty or self.heappe.dirty or self.ddi.dirty
        if self._state_file is None or not dirty:
            return
        self.aai.dirty = self.heappe.dirty = self.ddi.dirty = False
        data = {"aai": self.aai.dump(), "heappe": self.heappe.dump(), "ddi": self.ddi.dump()}
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(data))
        temporary.replace(self._state_file)  # atomic: a crash never leaves half a state file

    async def monitor(self) -> None:
        while True:
            try:
                self.heappe.tick()
                self.save_if_changed()
            except Exception:  # keep emulating: a bug in one tick must not freeze every job
                logger.exception("sandbox monitor tick failed")
            await asyncio.sleep(_TICK_SECONDS)

    def close(self) -> None:
        if self.config.state_dir is None:
            self.heappe.kill_all()  # nothing to come back to: leave no process behind
        self.save_if_changed()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class DatasetSeed(BaseModel):
    """Body of `POST /_sandbox/datasets`."""

    model_config = ConfigDict(extra="forbid")

    files: dict[str, str] = Field(description="Relative path -> text content.")
    dataset_id: str | None = None
    system: str | None = None
    project: str = "myproject"
    access: str = "project"
    title: str = "sandbox dataset"


class Settings(BaseModel):
    """Body of `PATCH /_sandbox/settings`: timings that tests change at run time."""

    model_config = ConfigDict(extra="forbid")

    job_seconds: int | None = Field(default=None, ge=0)
    queue_seconds: float | None = Field(default=None, ge=0)
    staging_seconds: float | None = Field(default=None, ge=0)
    token_lifetime_seconds: int | None = Field(default=None, gt=0)
    session_lifetime_seconds: int | None = Field(default=None, gt=0)


def control_router(sandbox: Sandbox) -> APIRouter:
    router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    @router.get("/config")
    async def config() -> dict[str, Any]:
        """Where each service is, relative to the sandbox's base URL."""
        return {
            "aai_realm_path": f"/auth/realms/{sandbox.config.realm}",
            "staging_path": "/staging",
            "dataset_path": "/dataset",
            "heappe_paths": {loc.name: sandbox.config.heappe_prefix(loc) for loc in sandbox.config.locations},
            "locations": [loc.model_dump(mode="json") for loc in sandbox.config.locations],
            "ddi_systems": sandbox.ddi.system_types(),
            "projects": sandbox.config.projects,
            "users": sorted(sandbox.config.users),
            "clients": sorted(sandbox.config.clients),
        }

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return {**sandbox.faults.faults.model_dump(), "injected": sandbox.faults.injected}

    @router.put("/faults")
    async def put_faults(faults: FaultConfig) -> dict[str, Any]:
        sandbox.faults.configure(faults)
        return faults.model_dump()

    @router.put("/locations/{name}")
    async def put_location(name: str, available: bool) -> dict[str, Any]:
        location = sandbox.config.location(name)
        if location is None:
            raise HTTPException(404, f"no location {name!r}")
        location.available = available
        return location.model_dump(mode="json")

    @router.patch("/settings")
    async def patch_settings(settings: Settings) -> dict[str, Any]:
        for key, value in settings.model_dump(exclude_none=True).items():
            setattr(sandbox.config, key, value)
        return sandbox.config.model_dump(include=set(Settings.model_fields))

    @router.post("/sessions/expire")
    async def expire_sessions() -> dict[str, int]:
        for session in sandbox.heappe.sessions.values():
            session["expires_at"] = 0
        return {"expired": len(sandbox.heappe.sessions)}

    @router.post("/datasets", status_code=201)
    async def add_dataset(seed: DatasetSeed) -> dict[str, Any]:
        try:
            return sandbox.ddi.add_dataset(**seed.model_dump())
        except DDIProblem as problem:
            raise HTTPException(problem.status, problem.error) from None

    @router.get("/datasets")
    async def datasets() -> list[dict[str, Any]]:
        return list(sandbox.ddi.datasets.values())

    @router.get("/datasets/{dataset_id}/files")
    async def dataset_files(dataset_id: str) -> dict[str, str]:
        entry = sandbox.ddi.datasets.get(dataset_id)
        if entry is None:
            raise HTTPException(404, f"no dataset {dataset_id!r}")
        root = sandbox.ddi.root / entry["system"] / entry["path"]
        return {
            str(path.relative_to(root)): path.read_text(errors="replace")
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }

    @router.get("/jobs")
    async def jobs() -> list[dict[str, Any]]:
        return list(sandbox.heappe.jobs.values())

    return router


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    """The sandbox as an ASGI app (run it with uvicorn, or `lexis-prefect sandbox`)."""
    sandbox = Sandbox(config or SandboxConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        sandbox.load()
        monitor = asyncio.create_task(sandbox.monitor())
        try:
            yield
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
            sandbox.close()

    app = FastAPI(title="LEXIS sandbox", lifespan=lifespan, docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json")
    app.state.sandbox = sandbox

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 404/405 from routing itself, shaped like the emulated service would shape them.
        if request.url.path.startswith("/_sandbox"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return JSONResponse(service_error(exc.status_code, request.url.path, str(exc.detail)), exc.status_code)

    app.include_router(control_router(sandbox))
    app.include_router(aai_router(sandbox.aai))
    app.include_router(ddi_router(sandbox.ddi))
    app.include_router(dataset_router(sandbox.ddi))
    for location in sandbox.config.locations:
        app.include_router(heappe_router(sandbox.heappe, location, sandbox.config.heappe_prefix(location)))
    app.add_middleware(FaultInjector, plan=sandbox.faults)
    if sandbox.config.log_requests:
        app.add_middleware(RequestLog)  # added last, so it sits outside and logs injected faults too
    return app
