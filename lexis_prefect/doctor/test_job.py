"""`lexis-prefect doctor --test-job`: one tiny job through the real `build_hpc_job_step`, then its traces removed."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import SecretStr

from lexis_prefect.doctor.checks import TEST_GROUP
from lexis_prefect.doctor.report import Check, describe, failed, ok, skipped
from lexis_prefect.exceptions import HpcJobError, LexisError, NoLocationError
from lexis_prefect.models.ddi import within_zone
from lexis_prefect.models.job import SingleHPCJob
from lexis_prefect.resolve import run_job_name

__all__ = ["run_test_job", "tiny_job"]

#: What a template's walltime is cut to in the test job: a check must not hold a node for hours.
TEST_JOB_WALLTIME = 600


def tiny_job(job: SingleHPCJob, location: str) -> SingleHPCJob:
    """The job cut to one task at one resolved location, one input and one output, and a short walltime."""
    data = job.model_dump(mode="json")
    req = data["requirements"]
    req["job_name"], req["policy"] = "lexis-prefect doctor", "preferred"
    req["locations"] = [loc for loc in req["locations"] if loc["location_name"] == location][:1]
    req["tasks"] = req["tasks"][:1]
    req["tasks"][0]["walltime_limit"] = min(req["tasks"][0]["walltime_limit"], TEST_JOB_WALLTIME)
    data["data_inputs"], data["data_outputs"] = data["data_inputs"][:1], data["data_outputs"][:1]
    return SingleHPCJob.model_validate(data)


PHASES = ["create", "stage-in", "submit and run", "stage-out"]


async def run_test_job(job: SingleHPCJob, user_token: SecretStr) -> list[Check]:
    """8. The tiny job through the real `build_hpc_job_step` in a Prefect flow, then its traces removed; a row per phase."""
    report = await _test_job_flow()(access_token=user_token, job=job, run_key=f"lexis-prefect-doctor-{uuid.uuid4()}")
    return _phase_rows(report)


def _phase_rows(report: dict[str, Any]) -> list[Check]:
    """Phases before the failure ok, the failed one with its error, the later ones skipped; clean-up always."""
    rows: list[Check] = []
    failed_at = report["failed_at"]
    for phase in PHASES:
        name = f"test job: {phase}"
        if failed_at is None or PHASES.index(phase) < PHASES.index(failed_at):
            rows.append(ok(name, report["phases"].get(phase, "")))
        elif phase == failed_at:
            rows.append(failed(name, report["error"], _TEST_FIXES[phase]))
        else:
            rows.append(skipped(name, f"the test job failed at {failed_at}"))
    clean = report["cleanup"]
    rows.append(ok("test job: clean-up", clean) if report["cleanup_ok"] else failed("test job: clean-up", clean, _CLEANUP_FIX))
    return rows


_TEST_FIXES = {
    "create": "HEAppE refused the job: see the error (limits of the node type or project?)",
    "stage-in": "the stage-in failed: check the input dataset's path (data_inputs[0].source.info.path) and the location's staging system",
    "submit and run": "the job did not finish well: see its stderr, and the command template's parameters",
    "stage-out": "the stage-out failed: check data_outputs[0].source_path exists in the job directory, and the target system",
}
_CLEANUP_FIX = "remove the doctor's job ('lexis-prefect doctor [...]') in HEAppE and its output dataset in DDI by hand"


def _test_job_flow() -> Any:
    """The flow of `--test-job`, built on demand: the other checks do not pay for importing Prefect."""
    from prefect import flow

    from lexis_prefect.hpc import build_hpc_job_step
    from lexis_prefect.keeper import kept_token

    @flow(name="lexis-prefect-doctor-test-job", description="One tiny job through the whole path, then removed.")
    async def doctor_test_job(access_token: SecretStr, job: SingleHPCJob, run_key: str) -> dict[str, Any]:
        async with kept_token(access_token, run_key=run_key) as keeper_id:
            result, error = None, None
            try:
                result = await build_hpc_job_step(job, keeper_id, group_id=TEST_GROUP)
            except Exception as exc:  # reported as the failed phase; what it made is removed all the same
                error = exc
            cleanup = await _clean_up(job, keeper_id, result)
        return _report(result, error, cleanup)

    return doctor_test_job


def _report(result: Any, error: Exception | None, cleanup: dict[str, Any]) -> dict[str, Any]:
    """What the flow saw, per phase; where it failed is read off the error and the state its job was left in."""
    phases: dict[str, str] = {}
    if result is not None:
        t = result.timings_seconds
        phases = {
            "create": f"HEAppE job {result.job_id} at {result.location}",
            "stage-in": f"{t.get('stage_in', 0):.1f} s",
            "submit and run": f"{result.state}: queued {t.get('queued', 0):.1f} s, ran {t.get('running', 0):.1f} s",
            "stage-out": ", ".join(result.output_datasets) or "no outputs",
        }
    failed_at = None if error is None else _failed_phase(error, cleanup.get("state"))
    return {
        "phases": phases,
        "failed_at": failed_at,
        "error": "" if error is None else describe(error),
        "cleanup": cleanup["detail"],
        "cleanup_ok": cleanup["ok"],
    }


def _failed_phase(error: Exception, state: str | None) -> str:
    if isinstance(error, NoLocationError) or state is None:
        return "create"
    if isinstance(error, HpcJobError):
        return "submit and run"
    return "stage-in" if state == "Configuring" else "stage-out" if state == "Finished" else "submit and run"


async def _clean_up(job: SingleHPCJob, keeper_id: str, result: Any) -> dict[str, Any]:
    """Remove what the test job made: its HEAppE job (found by the run's job name) and its output datasets."""
    from lexis_prefect.keeper import keeper

    kept = keeper(keeper_id)
    done: list[str] = []
    state: str | None = None
    try:
        state = await _delete_job(kept, job, keeper_id, done)
        if result is not None:
            await _delete_outputs(kept, job, result.output_datasets, done)
    except LexisError as exc:
        return {"ok": False, "detail": f"{'; '.join(done)}; then: {describe(exc)}".lstrip("; "), "state": state}
    return {"ok": True, "detail": "; ".join(done) or "nothing to remove", "state": state}


async def _delete_job(kept: Any, job: SingleHPCJob, keeper_id: str, done: list[str]) -> str | None:
    """Delete the run's HEAppE job (cancelled first if still active); returns the state it was found in."""
    from lexis_prefect.models.heappe import JobState

    location = job.requirements.locations[0].location_name
    name = run_job_name(job.requirements.job_name, keeper_id, TEST_GROUP)
    async with kept.credentials.get_client("heappe", access_token=kept.access_token, location=location) as heappe:
        found = next((j for j in await heappe.list_jobs() if j.name == name and j.state is not JobState.Deleted), None)
        if found is None:
            return None
        if not found.is_terminal and found.state is not JobState.Configuring:
            await heappe.cancel_job(found.id)
        await heappe.delete_job(found.id)
    done.append(f"deleted HEAppE job {found.id}")
    return found.state.name


async def _delete_outputs(kept: Any, job: SingleHPCJob, paths: list[str], done: list[str]) -> None:
    """Delete each dataset the stage-out created, through the staging API, and wait for it to go."""
    from lexis_prefect.hpc import STAGING_POLL

    async with kept.credentials.get_client("ddi", access_token=kept.access_token) as ddi:
        for path, output in zip(paths, job.data_outputs):
            await ddi.wait(await ddi.delete(output.target.resource, within_zone(path)), operation="delete", poll=STAGING_POLL)
            done.append(f"deleted dataset {path}")
