"""One HEAppE session per run and location: shared by the steps, and one list read serving many polls."""

from __future__ import annotations

import asyncio
import time

import httpx
import respx

from lexis_prefect.blocks import LexisCredentials, LexisEndpoints
from lexis_prefect.keeper import TokenKeeper
from lexis_prefect.locations import LIST_STATES_FROM, location_session
from tests.test_heappe import AUTH, CODE, INFO, JWT, LIST_JOBS, job_info, url
from tests.test_keeper import tokens

BASE = "https://heappe.test"


def run_keeper(keeper_id: str = "run-1") -> TokenKeeper:
    endpoints = LexisEndpoints(
        aai_url="https://aai.test/realms/LEXIS", staging_url="https://ddi.test/staging", default_heappe_url=BASE
    )
    return TokenKeeper(keeper_id, LexisCredentials(endpoints=endpoints, client_id="lexis-prefect"), tokens(JWT, 300))


def heappe_api(router: respx.Router, jobs: list[dict]) -> dict[str, respx.Route]:
    return {
        "auth": router.post(url(AUTH)).mock(return_value=httpx.Response(200, json=CODE)),
        "list": router.get(url(LIST_JOBS)).mock(return_value=httpx.Response(200, json=jobs)),
        "info": router.get(url(INFO)).mock(
            side_effect=lambda request: httpx.Response(
                200, json=job_info(int(request.url.params["SubmittedJobInfoId"]), state=8)
            )
        ),
    }


async def test_steps_of_a_run_share_one_client_and_one_session_code():
    kept = run_keeper()
    with respx.mock(assert_all_called=False) as router:
        routes = heappe_api(router, [])
        async with location_session(kept, "Karolina") as first, location_session(kept, "Karolina") as second:
            assert first is second
            await first.heappe.job_info(1)
            await second.heappe.job_info(2)
        async with location_session(kept, "Karolina") as later:  # the last user closed it: a new session
            assert later is not first
        async with location_session(run_keeper("run-2"), "Karolina") as other_run:
            assert other_run is not later
    assert routes["auth"].call_count == 1, "one AuthenticateLexisToken for both steps"
    assert routes["info"].call_count == 2


async def test_many_watched_jobs_are_polled_with_one_list_read():
    jobs = [job_info(job_id, state=8) for job_id in range(1, 11)]
    with respx.mock(assert_all_called=False) as router:
        routes = heappe_api(router, jobs)
        async with location_session(run_keeper(), "Karolina") as session:
            for job in jobs:
                session.watched.add(job["Id"])
            infos = await asyncio.gather(*(session.job_info(job["Id"]) for job in jobs))
    assert [info.id for info in infos] == [job["Id"] for job in jobs]
    assert routes["list"].call_count == 1 == session.list_reads
    assert routes["info"].call_count == 0


async def test_few_watched_jobs_or_a_job_missing_from_the_list_are_asked_for_directly():
    with respx.mock(assert_all_called=False) as router:
        routes = heappe_api(router, [job_info(1), job_info(2), job_info(3)])
        async with location_session(run_keeper(), "Karolina") as session:
            with session.watching(1):
                await session.job_info(1)  # fewer than LIST_STATES_FROM watched: no list read
                assert routes["list"].call_count == 0 and routes["info"].call_count == 1
            session.watched.update(range(1, LIST_STATES_FROM + 2))
            missing = LIST_STATES_FROM + 1  # watched, yet not in the list (e.g. created after the read)
            assert (await session.job_info(missing)).id == missing
    assert routes["list"].call_count == 1
    assert routes["info"].call_count == 2


async def test_a_lookup_since_a_moment_never_gets_an_older_read():
    with respx.mock(assert_all_called=False) as router:
        routes = heappe_api(router, [job_info(1)])
        async with location_session(run_keeper(), "Karolina") as session:
            await session.jobs(since=session.opened_at)
            await session.jobs(since=session.opened_at)  # served by the read above
            assert routes["list"].call_count == 1
            routes["list"].mock(return_value=httpx.Response(200, json=[job_info(1), job_info(2)]))
            fresh = await session.jobs(since=time.monotonic())
    assert routes["list"].call_count == 2
    assert set(fresh) == {1, 2}
