"""The run's job records (one Prefect Variable per job), which the cancellation hooks read."""

from __future__ import annotations

import asyncio

from lexis_prefect.hpc import records
from lexis_prefect.hpc import HpcJobRef, recorded_jobs
from lexis_prefect.hpc.records import _record, _unrecord


def ref(job_id: int, location: str = "Karolina") -> HpcJobRef:
    return HpcJobRef(
        location=location, heappe_url=f"https://heappe.test/{location}", job_id=job_id, task_ids=[job_id + 1],
        name=f"job {job_id}",
    )


async def test_many_steps_record_and_unrecord_at_once_without_losing_one(prefect_harness, monkeypatch):
    """A shared list raced (409 on create, lost updates) and hit Prefect's 5,000-character cap at ~40 jobs."""
    # Pages of 20 (Prefect's are 200): the paging is the same, and 60 jobs are 3 pages.
    monkeypatch.setattr(records, "RECORDS_PAGE", 20)
    refs = [ref(i) for i in range(60)]
    await asyncio.gather(*(_record("many-steps", r) for r in refs))
    assert sorted(r.job_id for r in await recorded_jobs("many-steps")) == list(range(60))
    await asyncio.gather(*(_unrecord("many-steps", r) for r in refs[:25]))
    assert sorted(r.job_id for r in await recorded_jobs("many-steps")) == list(range(25, 60))


async def test_a_run_sees_only_its_own_jobs(prefect_harness):
    await _record("run-a", ref(1))
    await _record("run-a-b", ref(2))
    await _record("run-a", ref(1, "Barbora"))  # the same id at another HEAppE is another job
    assert sorted((r.location, r.job_id) for r in await recorded_jobs("run-a")) == [("Barbora", 1), ("Karolina", 1)]
    assert [r.job_id for r in await recorded_jobs("run-a-b")] == [2]
