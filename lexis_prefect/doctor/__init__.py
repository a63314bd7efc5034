"""`lexis-prefect doctor`: every step a run of a job will take on the configured LEXIS, checked without side effects.

A first run on a new platform stops at its first wrong setting, minutes in, after a token exchange and
maybe a staging copy. The doctor finds every wrong setting at once, in seconds, and says which variable
or job field to change. So that what passes here also passes in a run, it takes nothing of its own:
the configuration comes from `resolve_credentials`, the token is exchanged as the keeper's
`refresh_token` does, the services are asked through the library's clients, and the job's names are
resolved by the run's own `resolve.resolve_specification`. Only `--test-job` changes anything (one tiny job, then
removed again).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from lexis_prefect._http import scrub
from lexis_prefect.doctor.checks import (
    Settings,
    check_configuration,
    check_dataset_api,
    check_discovery,
    check_heappe_login,
    check_input,
    check_job,
    check_output,
    check_resolution,
    check_staging,
    check_token,
    revoke,
)
from lexis_prefect.doctor.report import Check, describe, failed, render_table, rows_json, skipped
from lexis_prefect.doctor.test_job import run_test_job, tiny_job
from lexis_prefect.exceptions import LexisError
from lexis_prefect.models.aai import TokenSet
from lexis_prefect.models.job import SingleHPCJob

__all__ = ["Check", "render_table", "rows_json", "run_doctor"]


# -- the whole run ---------------------------------------------------------------------------------


class _Doctor:
    """The checks in order, each fed what the ones before found; dependents of a failure are skipped."""

    def __init__(self) -> None:
        self.rows: list[Check] = []
        self.settings = Settings(os.environ.get("LEXIS_CREDENTIALS_BLOCK"))
        self.credentials: Any = None
        self.discovery: dict[str, Any] | None = None
        self.tokens: TokenSet | None = None
        self.user_token: SecretStr | None = None
        self.resolved: list[str] = []

    def add(self, row: Check) -> Check:
        self.rows.append(row)
        return row

    def skip(self, names: list[str], why: str) -> None:
        self.rows += [skipped(n, why) for n in names]

    async def run(self, job_text: str | Mapping[str, Any], test_job: bool) -> list[Check]:
        row, job = check_job(job_text)
        self.add(row)
        row, self.credentials = check_configuration()
        if self.add(row).result != "ok":
            self.skip(_dependents(job, test_job), "no LEXIS configuration")
            return self.rows
        try:
            await self._services(job)
            if test_job:
                await self._test_job(job)
        finally:
            await self._revoke()
        return self.rows

    async def _services(self, job: SingleHPCJob | None) -> None:
        row, self.discovery = await check_discovery(self.credentials, self.settings)
        if self.add(row).result != "ok":
            self.skip(_dependents(job, False)[1:], "the AAI's discovery failed")
            return
        row, self.tokens, self.user_token = await check_token(self.credentials, self.settings)
        if self.add(row).result != "ok":
            self.skip(_dependents(job, False)[2:], "no token")
            return
        token = self.tokens.access_token
        if job is None:
            self.skip(["HEAppE", "inputs"], "the job does not validate")
        else:
            await self._heappe(job, token)
        row, systems = await check_staging(self.credentials, self.settings, job, token)
        self.add(row)
        row, datasets = await check_dataset_api(self.credentials, self.settings, token)
        self.add(row)
        if job is not None:
            await self._data(job, datasets, systems)

    async def _heappe(self, job: SingleHPCJob, token: SecretStr) -> None:
        for loc in job.requirements.locations:
            row, heappe = await check_heappe_login(self.credentials, self.settings, loc.location_name, token)
            self.add(row)
            if heappe is None:
                self.add(skipped(f"names at {loc.location_name}", f"no HEAppE session at {loc.location_name}"))
                continue
            async with heappe:
                row = self.add(await check_resolution(job, loc.location_name, heappe))
            if row.result == "ok":
                self.resolved.append(loc.location_name)

    async def _data(self, job: SingleHPCJob, datasets: Any, systems: list[str] | None) -> None:
        inputs = [f"input {i}" for i in range(len(job.data_inputs))]
        if datasets is None:
            self.skip(inputs, "the dataset API did not answer")
        else:
            async with datasets:
                try:
                    # The search matches `internalID` as a regex on the dataset's collection name
                    # (ddi-service-apis 9e96c41 irodsapi/demo/dataset.py `CollChecks`): one query finds them all.
                    ids = sorted({data.source.info.dataset_id for data in job.data_inputs})
                    query = {"internalID": "^(?:" + "|".join(re.escape(i) for i in ids) + ")$"}
                    hits = await datasets.search(query) if inputs else []
                except LexisError as exc:
                    self.rows += [failed(n, describe(exc), "the dataset API's search failed: try again later") for n in inputs]
                    hits = None
            for index in range(len(inputs) if hits is not None else 0):
                self.add(check_input(job, index, hits or [], systems))
        for index in range(len(job.data_outputs) if systems is not None else 0):
            self.add(check_output(job, index, systems or []))

    async def _test_job(self, job: SingleHPCJob | None) -> None:
        if job is None or not self.resolved or any(r.result != "ok" for r in self.rows):
            self.add(skipped("test job", "an earlier check failed"))
            return
        assert self.user_token is not None
        try:
            self.rows += await run_test_job(tiny_job(job, self.resolved[0]), self.user_token)
        except Exception as exc:  # the flow itself failed (no Prefect API?): a row, never a traceback
            self.add(failed("test job", describe(exc), "run the test job where a Prefect API is reachable"))

    async def _revoke(self) -> None:
        if self.tokens is None or self.discovery is None:
            return
        try:
            note = await revoke(self.credentials, self.discovery, self.tokens)
        except LexisError as exc:
            note = f"could not revoke the doctor's offline token: {describe(exc)}"
        token_row = next(i for i, r in enumerate(self.rows) if r.check == "token exchange")
        row = self.rows[token_row]
        self.rows[token_row] = row.model_copy(update={"detail": f"{row.detail}; {note}"})


def _dependents(job: SingleHPCJob | None, test_job: bool) -> list[str]:
    """The names of the rows after the configuration, for skipping them all with one reason."""
    rows = ["OIDC discovery", "token exchange"]
    if job is not None:
        for loc in job.requirements.locations:
            rows += [f"HEAppE login at {loc.location_name}", f"names at {loc.location_name}"]
    rows += ["DDI staging API", "DDI dataset API"]
    if job is not None:
        rows += [f"input {i}" for i in range(len(job.data_inputs))]
    return rows + (["test job"] if test_job else [])


async def run_doctor(job: str | Mapping[str, Any], *, test_job: bool = False) -> list[Check]:
    """Every check, in order, on the configured LEXIS; no secret is left in any row."""
    doctor = _Doctor()
    rows = await doctor.run(job, test_job)
    secrets = [t.get_secret_value() for t in (doctor.user_token,) if t is not None]
    if doctor.tokens is not None:
        secrets += [t.get_secret_value() for t in (doctor.tokens.access_token, doctor.tokens.refresh_token) if t]
    return [r.model_copy(update={"detail": scrub(r.detail, secrets), "fix": scrub(r.fix, secrets)}) for r in rows]

