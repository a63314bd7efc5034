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

import json
import os
import re
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from lexis_prefect._http import scrub
from lexis_prefect.exceptions import (
    AuthenticationError,
    ConfigurationError,
    HpcJobError,
    JobValidationError,
    LexisAPIError,
    LexisError,
    LexisTransportError,
    NoLocationError,
)
from lexis_prefect.models.aai import TokenSet, is_offline_token
from lexis_prefect.models.ddi import DatasetHit, alternate_identifier_query, within_zone
from lexis_prefect.models.job import SingleHPCJob
from lexis_prefect.resolve import JobRejected, resolve_specification, run_job_name

__all__ = ["Check", "render_table", "run_doctor"]

Result = Literal["ok", "failed", "skipped"]
#: A dataset-search query that matches nothing: asks the dataset API to answer, and reads nothing.
_PROBE_QUERY = alternate_identifier_query("lexis-prefect-doctor-probe", "lexis-prefect-doctor")
#: What a template's walltime is cut to in the test job: a check must not hold a node for hours.
TEST_JOB_WALLTIME = 600
TEST_GROUP = "doctor"


class Check(BaseModel):
    """One row of the report: which step, how it went, what was seen, and what to change if it failed."""

    model_config = ConfigDict(frozen=True)

    check: str
    result: Result
    detail: str = ""
    fix: str = ""


def ok(check: str, detail: str = "") -> Check:
    return Check(check=check, result="ok", detail=detail)


def failed(check: str, detail: str, fix: str) -> Check:
    return Check(check=check, result="failed", detail=detail, fix=fix)


def skipped(check: str, why: str) -> Check:
    """A check that cannot run because one it depends on failed: saying which spares a wrong hunt."""
    return Check(check=check, result="skipped", detail=f"skipped: {why}")


# -- where a setting lives -----------------------------------------------------------------------


class _Settings:
    """Names the place to change a setting: the LEXIS_* variable, or the field of the credentials block in use."""

    def __init__(self, block: str | None) -> None:
        self.block = block

    def name(self, field: str, variable: str) -> str:
        if self.block:
            return f"{field} of the LexisCredentials block {self.block!r}"
        return variable

    def heappe(self, location: str) -> str:
        return f"heappe_url for location {location} in " + self.name(
            "endpoints.heappe_urls", "LEXIS_HEAPPE_URLS (or LEXIS_HEAPPE_URL)"
        )


def _unreachable_fix(exc: LexisError, url: str, setting: str, what: str) -> str:
    """The fix for a service that did not answer as it should: its URL, or the service itself."""
    if isinstance(exc, LexisTransportError):
        return f"nothing answers at {url}: check {setting}"
    if isinstance(exc, AuthenticationError):
        return f"{what} refused the user's token: check the user may use it, and the token (LEXIS_ACCESS_TOKEN)"
    if isinstance(exc, LexisAPIError) and exc.status in (502, 503, 504):
        return f"{what} at {url} is unavailable ({exc.status}): try again later, or check {setting}"
    return f"{url} did not answer as {what} does: check {setting}"


def _describe(exc: BaseException) -> str:
    """An error as one line for a row; the clients have scrubbed secrets from it already."""
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, LexisError) else f"{type(exc).__name__}: {text}"


# -- the checks ----------------------------------------------------------------------------------


def check_job(job: str | Mapping[str, Any]) -> tuple[Check, SingleHPCJob | None]:
    """1. The job validates, as `build_hpc_job_step` validates it first; the error names each bad field."""
    try:
        parsed = SingleHPCJob.model_validate_json(job) if isinstance(job, str) else SingleHPCJob.model_validate(job)
    except JobValidationError as exc:
        problems = "; ".join(line.strip() for line in str(exc).splitlines()[1:])
        fields = ", ".join(dict.fromkeys(".".join(map(str, e["loc"])) or "(root)" for e in exc.errors()))
        return failed("job", problems, f"correct {fields} in the job (--job FILE)"), None
    req = parsed.requirements
    detail = (
        f"{req.job_name!r}: {len(req.tasks)} task(s) at {', '.join(loc.location_name for loc in req.locations)}, "
        f"{len(parsed.data_inputs)} input(s), {len(parsed.data_outputs)} output(s)"
    )
    return ok("job", detail), parsed


def check_configuration() -> tuple[Check, Any]:
    """The run's configuration, found as `resolve_credentials` finds it (block, else LEXIS_* variables)."""
    from lexis_prefect.blocks import resolve_credentials

    block = os.environ.get("LEXIS_CREDENTIALS_BLOCK")
    source = f"LexisCredentials block {block!r}" if block else "the LEXIS_* environment variables"
    try:
        credentials = resolve_credentials()
    except ConfigurationError as exc:
        return failed("configuration", str(exc), "set the LEXIS_* variables, or LEXIS_CREDENTIALS_BLOCK"), None
    except Exception as exc:  # a block that does not load: missing, or no Prefect API
        fix = f"save the block (`lexis-prefect blocks save-credentials {block}`) or unset LEXIS_CREDENTIALS_BLOCK"
        return failed("configuration", f"cannot load {source}: {_describe(exc)}", fix), None
    return ok("configuration", f"from {source}: AAI {credentials.endpoints.aai_url}"), credentials


async def check_discovery(credentials: Any, settings: _Settings) -> tuple[Check, dict[str, Any] | None]:
    """2. The AAI's OIDC discovery document: the realm URL is right, and the token endpoint is where the client posts.

    Read through the library's `AAIClient` (its retries and error handling); it has no public discovery call.
    """
    url = credentials.endpoints.aai_url
    setting = settings.name("endpoints.aai_url", "LEXIS_AAI_URL")
    try:
        async with credentials.get_client("aai") as aai:
            response = await aai._request("GET", ".well-known/openid-configuration", idempotent=True)
            document = aai._parse(response, dict[str, Any])
    except LexisError as exc:
        return failed("OIDC discovery", _describe(exc), _unreachable_fix(exc, url, setting, "the AAI")), None
    expected = f"{url}/protocol/openid-connect/token"
    if document.get("token_endpoint") != expected:
        detail = f"the realm's token endpoint is {document.get('token_endpoint')!r}, not {expected!r}"
        return failed("OIDC discovery", detail, f"set {setting} to the realm's issuer URL {document.get('issuer')!r}"), None
    return ok("OIDC discovery", f"issuer {document.get('issuer')}"), document


async def _user_token(credentials: Any) -> SecretStr:
    """The user's token as a run gets it: LEXIS_ACCESS_TOKEN, else the credentials' password login."""
    given = os.environ.get("LEXIS_ACCESS_TOKEN")
    if given:
        return SecretStr(given)
    if not (credentials.username and credentials.password):
        raise ConfigurationError(
            "no user token: set LEXIS_ACCESS_TOKEN, or LEXIS_USERNAME and LEXIS_PASSWORD for a password login"
        )
    async with credentials.get_client("aai") as aai:
        return (await aai.password_grant(credentials.username, credentials.password)).access_token


async def check_token(credentials: Any, settings: _Settings) -> tuple[Check, TokenSet | None, SecretStr | None]:
    """3. The user's token becomes a refreshable offline token, as the keeper's `refresh_token` makes it.

    Returns the row, the exchanged tokens (their access token serves the checks that follow) and the user's token.
    """
    name = "token exchange"
    try:
        user_token = await _user_token(credentials)
        async with credentials.get_client("aai") as aai:
            if is_offline_token(user_token):  # a deployment's saved token is refreshed, not exchanged
                tokens = await aai.refresh(user_token)
            else:
                tokens = await aai.exchange_token(user_token, offline_access=True)
    except ConfigurationError as exc:
        return failed(name, str(exc), "give the doctor the user's token as a run gets it"), None, None
    except AuthenticationError as exc:
        fix = (
            f"the AAI refused the grant: check the client ({settings.name('client_id', 'LEXIS_CLIENT_ID')}, "
            "its secret, and that it may exchange tokens) and that the user's token has not expired"
        )
        return failed(name, _describe(exc), fix), None, None
    except LexisError as exc:
        url = credentials.endpoints.aai_url
        fix = _unreachable_fix(exc, url, settings.name("endpoints.aai_url", "LEXIS_AAI_URL"), "the AAI")
        return failed(name, _describe(exc), fix), None, None
    detail = f"for {tokens.username or 'the user'}, offline: {tokens.is_offline}"
    if not tokens.is_offline:
        return failed(name, detail, "the client must be allowed the offline_access scope"), None, None
    return ok(name, detail), tokens, user_token


async def revoke(credentials: Any, discovery: dict[str, Any], tokens: TokenSet) -> str:
    """Revoke the offline token the doctor minted, if the AAI offers RFC 7009 revocation; says what happened.

    Left alive, an offline token outlives the user's session until revoked in the AAI's account page.
    `AAIClient` has no revoke call, so its request machinery (retries, secret scrubbing) is used directly;
    an AAI that advertises no `revocation_endpoint` (the sandbox) cannot be asked.
    """
    endpoint = discovery.get("revocation_endpoint")
    base = credentials.endpoints.aai_url + "/"
    if tokens.refresh_token is None:
        return "no offline token to revoke"
    if not isinstance(endpoint, str) or not endpoint.startswith(base):
        return "the AAI offers no token revocation: the doctor's offline token stays until it expires"
    secret = tokens.refresh_token
    form = {"client_id": credentials.client_id, "token": secret.get_secret_value(), "token_type_hint": "refresh_token"}
    if credentials.client_secret is not None:
        form["client_secret"] = credentials.client_secret.get_secret_value()
    secrets = [form["token"], form.get("client_secret", "")]
    async with credentials.get_client("aai") as aai:
        await aai._request("POST", endpoint.removeprefix(base), idempotent=True, data=form, secrets=secrets)
    return "the doctor's offline token was revoked"


# -- HEAppE ----------------------------------------------------------------------------------------


async def check_heappe_login(credentials: Any, settings: _Settings, location: str, token: SecretStr) -> tuple[Check, Any]:
    """4. `AuthenticateLexisToken` at one location: its URL is configured, it answers, and it knows the user."""
    name = f"HEAppE login at {location}"
    try:
        heappe = credentials.get_client("heappe", access_token=token, location=location)
    except ConfigurationError as exc:
        return failed(name, str(exc), f"add {settings.heappe(location)}"), None
    try:
        await heappe.authenticate()
    except LexisError as exc:
        await heappe.aclose()
        return failed(name, _describe(exc), _unreachable_fix(exc, heappe.base_url, settings.heappe(location), "HEAppE")), None
    return ok(name, f"session at {heappe.base_url}"), heappe


def job_field(message: str) -> str | None:
    """The job field a `JobRejected` message starts with (`requirements.tasks[0].node_type_name`), if any."""
    named = re.match(r"(requirements\.[\w\[\]\.]*\w): ", message)
    return named.group(1) if named else None


async def check_resolution(job: SingleHPCJob, location: str, heappe: Any) -> Check:
    """5. `ListAvailableClusters`, and the job's names resolved to ids by the run's own `resolve_specification`."""
    name = f"names at {location}"
    try:
        clusters = await heappe.list_available_clusters()
    except LexisError as exc:
        return failed(name, _describe(exc), f"HEAppE at {heappe.base_url} did not list its clusters: try again later")
    try:
        spec = resolve_specification(job, location, clusters, TEST_GROUP)
    except JobRejected as exc:
        field = job_field(str(exc))
        if field is None:
            return failed(name, str(exc), f"HEAppE at {location} lacks what the job needs: ask its operators")
        return failed(name, str(exc), f"change {field} in the job to a name HEAppE at {location} knows")
    detail = f"cluster {spec.cluster_id}, project {spec.project_id}, " + ", ".join(
        f"task {t.name}: node type {t.cluster_node_type_id}, template {t.command_template_id}" for t in spec.tasks
    )
    return ok(name, f"resolved to ids: {detail}")


# -- DDI -------------------------------------------------------------------------------------------


async def check_staging(credentials: Any, settings: _Settings, job: SingleHPCJob | None, token: SecretStr) -> tuple[Check, list[str] | None]:
    """6a. The staging API answers `GET /info`, and knows the staging system of each of the job's locations."""
    name = "DDI staging API"
    url = credentials.endpoints.staging_url
    try:
        async with credentials.get_client("ddi", access_token=token) as ddi:
            systems = await ddi.info()
    except LexisError as exc:
        setting = settings.name("endpoints.staging_url", "LEXIS_STAGING_URL")
        return failed(name, _describe(exc), _unreachable_fix(exc, url, setting, "the DDI staging API")), None
    problems, fixes = [], []
    for loc in job.requirements.locations if job else []:
        setting = settings.name("endpoints.hpc_staging_systems", "LEXIS_HPC_STAGING_SYSTEMS")
        system = credentials.endpoints.hpc_staging_systems.get(loc.location_name)
        if system is None:
            problems.append(f"no staging system for location {loc.location_name}")
            fixes.append(f"add {loc.location_name} to {setting}")
        elif system not in systems:
            problems.append(f"location {loc.location_name}'s staging system {system!r} is not one of {systems}")
            fixes.append(f"correct {loc.location_name} in {setting}")
    if problems:
        return failed(name, "; ".join(problems), "; ".join(fixes)), systems
    return ok(name, f"systems {', '.join(systems)}"), systems


async def check_dataset_api(credentials: Any, settings: _Settings, token: SecretStr) -> tuple[Check, Any]:
    """6b. The dataset API answers a search (one that matches nothing: reading is not the point)."""
    name = "DDI dataset API"
    setting = settings.name("endpoints.dataset_url", "LEXIS_DATASET_URL")
    try:
        client = credentials.get_client("dataset", access_token=token)
    except ConfigurationError as exc:
        return failed(name, str(exc), f"set {setting}"), None
    try:
        await client.search(_PROBE_QUERY)
    except LexisError as exc:
        await client.aclose()
        return failed(name, _describe(exc), _unreachable_fix(exc, client.base_url, setting, "the DDI dataset API")), None
    return ok(name, f"at {client.base_url}"), client


def check_input(job: SingleHPCJob, index: int, hits: list[DatasetHit], systems: list[str] | None) -> Check:
    """7. One input: its dataset is found by the user, where the stage-in will look for it."""
    source = job.data_inputs[index].source
    name, field = f"input {index}", f"data_inputs[{index}].source"
    if systems is not None and source.resource not in systems:
        return failed(name, f"{field}.resource: no staging system {source.resource!r} (has {systems})",
                      f"set {field}.resource to the DDI system that holds the dataset")
    hit = next((h for h in hits if h.location.internal_id == source.info.dataset_id), None)
    if hit is None:
        return failed(name, f"{field}.info.dataset_id: no dataset {source.info.dataset_id!r} visible to the user",
                      f"correct {field}.info.dataset_id, or ask the dataset's owner for access")
    project = job.requirements.project_shortname
    if hit.location.access != "project" or hit.location.project not in (None, project):
        where = f"a {hit.location.access} dataset" + (f" of project {hit.location.project}" if hit.location.project else "")
        return failed(name, f"requirements.project_shortname: the stage-in reads project {project!r}'s datasets, "
                            f"and {field}.info.dataset_id is {where}",
                      f"correct requirements.project_shortname, or use a dataset of project {project!r}")
    return ok(name, f"dataset {source.info.dataset_id} in {hit.location.zone}")


def check_output(job: SingleHPCJob, index: int, systems: list[str]) -> Check:
    """7b. One output: the DDI system its dataset is to be created in exists."""
    resource = job.data_outputs[index].target.resource
    field = f"data_outputs[{index}].target.resource"
    if resource not in systems:
        return failed(f"output {index}", f"{field}: no staging system {resource!r} (has {systems})",
                      f"set {field} to the DDI system to store the results in")
    return ok(f"output {index}", f"to {resource}")


# -- the whole run ---------------------------------------------------------------------------------


class _Doctor:
    """The checks in order, each fed what the ones before found; dependents of a failure are skipped."""

    def __init__(self) -> None:
        self.rows: list[Check] = []
        self.settings = _Settings(os.environ.get("LEXIS_CREDENTIALS_BLOCK"))
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
                    self.rows += [failed(n, _describe(exc), "the dataset API's search failed: try again later") for n in inputs]
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
            self.rows += await run_test_job(_tiny(job, self.resolved[0]), self.user_token)
        except Exception as exc:  # the flow itself failed (no Prefect API?): a row, never a traceback
            self.add(failed("test job", _describe(exc), "run the test job where a Prefect API is reachable"))

    async def _revoke(self) -> None:
        if self.tokens is None or self.discovery is None:
            return
        try:
            note = await revoke(self.credentials, self.discovery, self.tokens)
        except LexisError as exc:
            note = f"could not revoke the doctor's offline token: {_describe(exc)}"
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


def render_table(rows: list[Check]) -> str:
    """The rows as a plain-text table: check, result, then what was seen, and on failure how to fix it."""
    width = max((len(r.check) for r in rows), default=5)
    lines = [f"{'check':<{width}}  {'result':<7}  detail / how to fix"]
    for r in rows:
        lines.append(f"{r.check:<{width}}  {r.result:<7}  {' | '.join(r.detail.splitlines())}")
        if r.fix:
            lines.append(f"{'':<{width}}  {'':<7}  fix: {r.fix}")
    return "\n".join(lines)


def rows_json(rows: list[Check]) -> str:
    return json.dumps([r.model_dump() for r in rows], indent=2)


# -- --test-job -------------------------------------------------------------------------------------


def _tiny(job: SingleHPCJob, location: str) -> SingleHPCJob:
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
        "error": "" if error is None else _describe(error),
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
        return {"ok": False, "detail": f"{'; '.join(done)}; then: {_describe(exc)}".lstrip("; "), "state": state}
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
