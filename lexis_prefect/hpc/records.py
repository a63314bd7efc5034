"""Job records: each created HEAppE job kept in a Prefect Variable until it ends.

They are what a cancellation hook in another process, and the watcher (`lexis_prefect.watch`)
while the run is suspended, find a run's jobs by: everything lives in Prefect's database, nothing
in a process, so any process may die and another take over.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from prefect.variables import Variable
from pydantic import BaseModel

from lexis_prefect.hpc.results import HpcJobRef
from lexis_prefect.keeper import storage_key
from lexis_prefect.models.heappe import JobState

#: Job records read per request: Prefect's largest page (PREFECT_API_DEFAULT_LIMIT).
RECORDS_PAGE = 200
#: Every record's Variable name starts with this.
RECORDS_PREFIX = "lexis-job-"
#: Prefect refuses a Variable value of more than 5,000 characters (its JSON): a record stays below.
RECORD_MAX_CHARS = 4_800


class TailMark(BaseModel):
    """How far a wait had read the job's files, so that a resumed run logs only what is new."""

    offsets: dict[str, int] = {}
    stderr: str = ""
    progress: float | None = None
    running_since: float | None = None  # epoch seconds


class JobRecord(HpcJobRef):
    """A created HEAppE job as Prefect keeps it, with what a process other than the run's needs.

    `flow_run_id` is the run that may suspend while the job runs (the top-level deployment run),
    None when it cannot suspend; `state` and `checked` are the job's last state seen, by the run or
    by the watcher.
    """

    keeper_id: str
    group_id: str = "job"
    flow_run_id: str | None = None
    credentials_block: str | None = None
    state: JobState | None = None
    checked: datetime | None = None
    tail: TailMark | None = None
    cancel_requested: bool = False  # the run tried to cancel the job and could not

    @property
    def ref(self) -> HpcJobRef:
        return HpcJobRef.model_validate(self.model_dump(include=set(HpcJobRef.model_fields)))

    @property
    def variable(self) -> str:
        return job_variable(self.keeper_id, self)


def _jobs_prefix(keeper_id: str) -> str:
    return f"{RECORDS_PREFIX}{storage_key(keeper_id)}-"


def job_variable(keeper_id: str, ref: HpcJobRef) -> str:
    """One Variable per job: steps running at once never write the same one (a shared list raced,
    and Prefect caps a Variable at 5,000 characters: about 40 jobs)."""
    return _jobs_prefix(keeper_id) + hashlib.sha1(f"{ref.heappe_url}|{ref.job_id}".encode()).hexdigest()[:12]


async def save_record(record: JobRecord) -> None:
    """Write the record (created or updated); its output tail is cut to stay within Prefect's cap."""
    value = record.model_dump(mode="json")
    while len(json.dumps(value)) > RECORD_MAX_CHARS and value.get("tail"):
        tail = value["tail"]
        if tail["stderr"]:
            tail["stderr"] = tail["stderr"][len(tail["stderr"]) // 2 :] if len(tail["stderr"]) > 64 else ""
        else:  # only the offsets are left: a resumed run re-reads the output from the start
            value["tail"] = None
    await Variable.aset(record.variable, value, overwrite=True)


async def read_record(keeper_id: str, ref: HpcJobRef) -> JobRecord | None:
    value = await Variable.aget(job_variable(keeper_id, ref))
    return None if value is None else JobRecord.model_validate(value)


async def _record(keeper_id: str, ref: HpcJobRef, **fields: Any) -> JobRecord:
    """Keep the job where a cancellation hook or the watcher (maybe in another process) can find it."""
    record = JobRecord(**ref.model_dump(), keeper_id=keeper_id, **fields)
    await save_record(record)
    return record


async def _unrecord(keeper_id: str, ref: HpcJobRef) -> None:
    """The job has ended: hooks and the watcher need not look after it any more."""
    await Variable.aunset(job_variable(keeper_id, ref))


async def all_records(prefix: str = RECORDS_PREFIX, client: Any = None) -> list[tuple[str, dict[str, Any]]]:
    """Every record whose Variable name starts with `prefix`, as (name, value), page by page."""
    from prefect.client.orchestration import get_client

    if client is None:
        async with get_client() as client:
            return await all_records(prefix, client)
    found: list[tuple[str, dict[str, Any]]] = []
    seen = 0
    while True:
        body = {"variables": {"name": {"like_": prefix}}, "offset": seen, "limit": RECORDS_PAGE, "sort": "NAME_ASC"}
        page = (await client.request("POST", "/variables/filter", json=body)).json()
        seen += len(page)
        found += [(v["name"], v["value"]) for v in page if v["name"].startswith(prefix) and isinstance(v["value"], dict)]
        if len(page) < RECORDS_PAGE:
            return found


async def recorded_jobs(keeper_id: str) -> list[JobRecord]:
    """The run's jobs that may still be active (recorded at creation, unrecorded at their end)."""
    # `like_` matches anywhere in the name: run key "a" must not see run key "a-b"'s jobs.
    mine = re.compile(re.escape(_jobs_prefix(keeper_id)) + "[0-9a-f]{12}")
    return [
        JobRecord.model_validate({"keeper_id": keeper_id, **value})
        for name, value in await all_records(_jobs_prefix(keeper_id))
        if mine.fullmatch(name)
    ]
