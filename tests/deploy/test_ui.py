"""The Prefect UI in headless Chromium, on the deployment stack of conftest.py (server + worker + sandbox).

The UI is the one `/` redirects to (v2, under `/v2`). For the seed workflow's two deployments,
`lexis_hpc_simple/native` and `lexis_hpc_simple/seed-dag`: the run form shows the nested `job1`
fields with the seed's defaults and a Secret-block selector for `access_token`; a run submitted
from that form (the block chosen, the job renamed) stores only the block reference, completes,
and its pages show the state and the HPC job summary (on the subflow run of the HPC job step,
which owns that artifact) and, for the DAG, its Airflow task-state table.

The runs are the form's own, not test_deployments.py's `finished`: importing that session fixture
here would register it a second time, and with both files collected it would run twice.
Screenshots: `test-output/ui/deployments/`. Without Chromium (or Playwright) the tests skip,
unless LEXIS_PREFECT_REQUIRE_UI=1, where that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from lexis_prefect.models.heappe import JobState
from tests.deploy import browser
from tests.deploy.conftest import Stack
from tests.deploy.test_browser import _require_ui, assert_real_png
from tests.deploy.test_deployments import access_token, final, flow_run, run_tree, sandbox_job, wait_for

DEPLOYMENTS = {"native": "lexis_hpc_simple/native", "seed-dag": "lexis_hpc_simple/seed-dag"}
JOB_NAME = "job1.requirements.job_name"
TOKEN_BLOCK = "lexis-access-token"


def out(key: str) -> Path:
    return browser.output_dir("deployments", key)


def short(identifier: Any) -> str:
    return str(identifier).replace("-", "")[:8]


@pytest.fixture(scope="session")  # session, and first in the arguments: set up before `stack`
def ui(request: pytest.FixtureRequest) -> str:
    """The v2 UI's base URL; without a browser, skip before the stack starts."""
    _require_ui()
    shutil.rmtree(browser.output_dir("deployments"), ignore_errors=True)  # this module's screenshots only
    return f"{request.getfixturevalue('stack').ui_url}/v2"


async def submit_from_form(ui: str, deployment_id: Any, key: str) -> dict[str, Any]:
    """The run form with the Secret block chosen and the job renamed, submitted: the created run's JSON."""
    async with browser.chromium_page() as page:
        form = await browser.open_run_form(page, ui, deployment_id, out(key), fields=(JOB_NAME, "access_token"))
        await form.choose_block("access_token", TOKEN_BLOCK)
        await form.fields[JOB_NAME].fill(f"submitted from the UI ({key})")
        await browser.save_screenshot(page, out(key) / "run-form-filled.png")
        return await form.submit()


@pytest.fixture(scope="module")
def ui_runs(ui: str, stack: Stack) -> dict[str, dict[str, Any]]:
    """Both deployments run once from their run form, waited for to the end (so no other test sees them running)."""
    runs: dict[str, dict[str, Any]] = {}
    try:
        for key, name in DEPLOYMENTS.items():
            t0 = time.monotonic()
            runs[key] = {"created": asyncio.run(submit_from_form(ui, stack.deployments[name].id, key))}
            runs[key]["form_s"] = round(time.monotonic() - t0, 1)
    finally:  # whatever was submitted ends before any other test
        t0 = time.monotonic()
        for key, run in runs.items():
            ended = wait_for(lambda: final(stack, run["created"]["id"]), 300, f"the {key} run from the UI to end", stack)
            run.update(state=ended.state.type.value, job=sandbox_job(stack, f"submitted from the UI ({key})"),
                       summary_run=owner_of(stack, run["created"]["id"], "job-summary"))
    print("UI runs:", {k: {"form_s": r["form_s"], "state": r["state"]} for k, r in runs.items()},
          f"both final {time.monotonic() - t0:.1f} s after the last submit")
    return runs


def owner_of(stack: Stack, run_id: str, key: str) -> str | None:
    """The flow run (the run itself or one of its subflow runs) holding the artifact `key`."""

    async def read(client: PrefectClient, ids: list[UUID]) -> list[Any]:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))

    owners = {str(a.flow_run_id) for a in stack.api(read, run_tree(stack, run_id)) if a.key == key}
    return owners.pop() if len(owners) == 1 else None


@pytest.mark.parametrize("key", list(DEPLOYMENTS))
async def test_the_run_form_shows_the_seed_job_and_a_secret_block_selector(ui: str, stack: Stack, key: str):
    deployment = stack.deployments[DEPLOYMENTS[key]]
    async with browser.chromium_page() as page:
        form = await browser.open_run_form(page, ui, deployment.id, out(key), fields=(JOB_NAME, "access_token"))
        selector = form.fields["access_token"]
        popup = await selector.get_attribute("aria-haspopup")
        await selector.click()  # the selector lists the saved Secret blocks
        await page.get_by_role("option", name=TOKEN_BLOCK, exact=True).wait_for(state="visible")
        options = await page.get_by_role("option").all_inner_texts()
        await page.wait_for_timeout(400)  # the pop-over fades in
        await page.screenshot(path=out(key) / "run-form-block-selector.png")  # the viewport: the list is at the top
    print(f"{key}: access_token: {form.values['access_token']!r}, options {options}")
    assert form.values[JOB_NAME] == "My HPC Job"
    assert "Job Name" in form.text and "access_token" in form.text
    assert popup == "listbox" and form.values["access_token"] == "Select a block..."
    assert TOKEN_BLOCK in options
    assert_real_png(form.screenshot, min_height=2000)


@pytest.mark.parametrize("key", list(DEPLOYMENTS))
def test_a_run_from_the_form_stores_only_the_block_reference_and_completes(ui_runs: dict, stack: Stack, key: str):
    run = ui_runs[key]
    block = stack.api(lambda client: client.read_block_document_by_name(TOKEN_BLOCK, "secret"))
    stored = flow_run(stack, run["created"]["id"]).parameters
    assert stored["access_token"] == {"$ref": {"block_document_id": str(block.id)}}
    assert stored["job1"]["requirements"]["job_name"] == f"submitted from the UI ({key})"
    token = access_token(stack)
    assert token not in json.dumps(stored) and token.split(".")[1] not in json.dumps(stored)
    assert run["state"] == "COMPLETED", f"{run}\n{stack.logs()}"
    assert run["job"] is not None and run["job"]["state"] == JobState.Finished, run["job"]
    assert_real_png(out(key) / "run-form-filled.png")


@pytest.mark.parametrize("key", list(DEPLOYMENTS))
async def test_the_run_pages_show_the_state_the_job_summary_and_the_dag_table(ui: str, ui_runs: dict, key: str):
    run, summary_run, dag = ui_runs[key], ui_runs[key]["summary_run"], key == "seed-dag"
    assert run["state"] == "COMPLETED" and summary_run, run
    heading = "HPC job step job: Finished"  # the summary's own heading: not on its card, nor in the logs
    async with browser.chromium_page() as page:
        # The run's own page; its Artifacts tab lists its own artifacts only (the DAG's task table).
        parent = await browser.open_flow_run(
            page, ui, run["created"]["id"], out(key), expect_state="Completed",
            expect_text="refresh_token_task" if dag else "Completed", artifact_key="airflow-lexis-hpc-simple" if dag else None,
        )
        # The HPC job step's subflow run holds the summary: its card, then the artifact's page.
        text = await browser.open_flow_run(page, ui, summary_run, out(key), expect_text=heading,
                                           artifact_key="job-summary", expect_state="Completed")
    assert "Completed" in parent and "Completed" in text, f"{parent}\n---\n{text}"
    assert heading in text, text
    assert re.search(rf"HEAppE job\s+{run['job']['id']} \({re.escape(run['job']['name'])}\)", text), text  # cells, pipes gone
    assert_real_png(out(key) / f"flow-run-{short(run['created']['id'])}.png")
    assert_real_png(out(key) / f"flow-run-{short(summary_run)}.png")
    assert_real_png(out(key) / f"flow-run-{short(summary_run)}-artifact.png")
    if dag:
        for task_id in ("refresh_token_task", "job.hpc_job", "finish"):
            assert re.search(rf"^{re.escape(task_id)}\s+success$", parent, re.MULTILINE), (task_id, parent)
        assert_real_png(out(key) / f"flow-run-{short(run['created']['id'])}-artifact.png")
