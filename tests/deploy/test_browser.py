"""The browser helpers (tests/deploy/browser.py) against a real `prefect server` and Debian's Chromium.

A development harness and the helpers' regression test: one server subprocess for the module, a
flow run with a markdown artifact and a deployment with a nested `job1` model and Secret-block
parameters, then both Prefect UIs (v1 at the root, v2 under /v2) in headless Chromium.

Without Chromium (or Playwright) the tests skip, unless LEXIS_PREFECT_REQUIRE_UI=1 (CI), where
that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.utilities.callables import parameter_schema

from lexis_prefect.blocks import AccessToken
from lexis_prefect.models.job import SEED_JOB, SingleHPCJob
from tests.deploy import browser

SUMMARY_TEXT = f"lexis-ui-check {uuid4().hex[:12]}"


def _require_ui() -> None:
    """Skip (or, with LEXIS_PREFECT_REQUIRE_UI=1, fail) without Playwright or Chromium."""
    problems = []
    if importlib.util.find_spec("playwright") is None:
        problems.append("the playwright package is not installed (pip install -e '.[test]')")
    try:
        browser.chromium_path()
    except browser.ChromiumNotFound as exc:
        problems.append(str(exc))
    if problems:
        message = "; ".join(problems)
        if os.environ.get("LEXIS_PREFECT_REQUIRE_UI") == "1":
            pytest.fail(f"LEXIS_PREFECT_REQUIRE_UI=1 but the browser cannot run: {message}", pytrace=False)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrefectServer:
    """`prefect server start` in its own process group, on a free port, with its own home and SQLite DB."""

    def __init__(self, home: Path, timeout_s: float = 60.0) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api"
        self.log = home / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            # `--port` alone leaves the UI calling the API on :4200.
            PREFECT_SERVER_API_HOST="127.0.0.1",
            PREFECT_SERVER_API_PORT=str(self.port),
            PREFECT_SERVER_UI_API_URL=self.api_url,
        )
        prefect = Path(sys.executable).with_name("prefect")
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--no-services"],
                env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > timeout_s:
                self.stop()
                raise RuntimeError(f"prefect server not healthy after {timeout_s:g}s:\n{self.output()}")
            time.sleep(0.25)
        self.startup_s = time.monotonic() - started

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        """SIGTERM to the server's process group (it was started in a new session), then SIGKILL."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@dataclass
class UIFixture:
    server: PrefectServer
    flow_run_id: UUID
    deployment_id: UUID
    blocks: dict[str, UUID]


def _populate(server: PrefectServer) -> UIFixture:
    """A finished flow run with a markdown artifact, a deployment with a nested model and Secret parameters."""
    seed = SingleHPCJob.model_validate(SEED_JOB)

    @flow(name="ui-check-artifact")
    def with_summary() -> None:
        create_markdown_artifact(
            f"# Job summary\n\n{SUMMARY_TEXT}: job **My HPC Job** finished on Karolina.",
            key="job-summary",
            description="The HPC job's summary",
        )

    # Module-level names only in the annotations: Prefect resolves them (this module has
    # `from __future__ import annotations`) in the function's globals; an unresolved one becomes
    # an untyped parameter, which the UI shows as a JSON editor.
    # The parameter variants the UI must render: `access_token` is the project's AccessToken
    # (an inline object schema with block_type_slug "secret"), `token_ref` a plain Secret
    # annotation (`$ref` to a definition with block_type_slug), `opt_token` an optional Secret.
    def ui_form(
        access_token: AccessToken,
        token_ref: Secret,
        job1: SingleHPCJob = seed,
        opt_token: Secret | None = None,
    ) -> None: ...

    with temporary_settings({PREFECT_API_URL: server.api_url}):
        blocks = {name: Secret(value=f"{name}-value").save(name) for name in ("hpc-token", "other-token")}
        state = with_summary(return_state=True)
        assert state.is_completed(), state
        with get_client(sync_client=True) as client:
            flow_id = client.create_flow(flow(name="ui-check-form")(ui_form))
            deployment_id = client.create_deployment(
                flow_id=flow_id,
                name="ui-check",
                parameter_openapi_schema=parameter_schema(ui_form).model_dump_for_openapi(),
                enforce_parameter_schema=True,
            )
    return UIFixture(server, state.state_details.flow_run_id, deployment_id, blocks)


@pytest.fixture(scope="module")
def ui_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIFixture]:
    _require_ui()
    shutil.rmtree(browser.output_dir("browser"), ignore_errors=True)  # this module's screenshots only
    server = PrefectServer(tmp_path_factory.mktemp("prefect-ui-server"))
    try:
        yield _populate(server)
    finally:
        server.stop()


def assert_real_png(path: Path, min_width: int = 800, min_height: int = 600) -> None:
    """A PNG of at least that size whose pixels are not all alike (not a blank page)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= min_width and height >= min_height, f"{path}: {width}x{height}"
    idat, offset = b"", 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            idat += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    pixels = zlib.decompress(idat)
    assert len(set(pixels[:: max(1, len(pixels) // 20000)])) > 16, f"{path} looks blank"


UIS = {"v1": "", "v2": "/v2"}


@pytest.mark.parametrize("ui", list(UIS))
async def test_flow_run_page_shows_the_artifact(ui_fixture: UIFixture, ui: str) -> None:
    out = browser.output_dir("browser", ui)
    ui_url = ui_fixture.server.url + UIS[ui]
    async with browser.chromium_page() as page:
        text = await browser.open_flow_run(
            page, ui_url, ui_fixture.flow_run_id, out,
            expect_text=SUMMARY_TEXT, artifact_key="job-summary", expect_state="Completed",
        )
    assert SUMMARY_TEXT in text
    assert "Completed" in text
    short = str(ui_fixture.flow_run_id).replace("-", "")[:8]
    assert_real_png(out / f"flow-run-{short}.png")
    assert_real_png(out / f"flow-run-{short}-artifact.png")


@pytest.mark.parametrize("ui", list(UIS))
async def test_run_form_shows_the_nested_job_and_block_selectors(ui_fixture: UIFixture, ui: str) -> None:
    out = browser.output_dir("browser", ui)
    ui_url = ui_fixture.server.url + UIS[ui]
    paths = ("job1.requirements.job_name", "job1.requirements.project_shortname", "access_token", "token_ref")
    async with browser.chromium_page() as page:
        form = await browser.open_run_form(page, ui_url, ui_fixture.deployment_id, out, fields=paths)

        # The nested model is a form of fields, not a JSON editor; the seed's defaults are filled in.
        assert form.values["job1.requirements.job_name"] == SEED_JOB["requirements"]["job_name"] == "My HPC Job"
        assert form.values["job1.requirements.project_shortname"] == "myproject"
        assert await form.fields["job1.requirements.job_name"].evaluate("e => e.tagName") == "TEXTAREA"
        assert "Job Name" in form.text
        assert_real_png(form.screenshot, min_height=2000)  # the whole form, not just the viewport

        # Both Secret schemas render a block selector listing the saved Secret blocks, and the
        # UI submits a reference to the chosen block document, which the server accepts under
        # enforce_parameter_schema.
        await form.choose_block("access_token", "hpc-token")
        await form.choose_block("token_ref", "other-token")
        await form.choose_block("opt_token", "hpc-token")  # switches the optional from "None" first
        await browser.save_screenshot(page, out / "run-form-blocks-chosen.png")
        run = await form.submit()

    blocks = ui_fixture.blocks
    assert run["parameters"]["access_token"] == {"$ref": {"block_document_id": str(blocks["hpc-token"])}}
    assert run["parameters"]["token_ref"] == {"$ref": {"block_document_id": str(blocks["other-token"])}}
    assert run["parameters"]["opt_token"] == {"$ref": {"block_document_id": str(blocks["hpc-token"])}}
    assert run["parameters"]["job1"]["requirements"]["job_name"] == "My HPC Job"
