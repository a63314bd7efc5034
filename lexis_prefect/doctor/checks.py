"""The doctor's read-only checks, in the order a run takes the steps: the job, the configuration, the AAI,
HEAppE at each location (login, then the job's names), the DDI staging and dataset APIs, and each input and output.

Each returns its `Check` row (and what the checks after it need); none changes anything on LEXIS, except that
the token exchange mints an offline token, which `revoke` then revokes where the AAI allows it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from lexis_prefect.doctor.report import Check, describe, failed, ok
from lexis_prefect.exceptions import (
    AuthenticationError,
    ConfigurationError,
    JobValidationError,
    LexisAPIError,
    LexisError,
    LexisTransportError,
)
from lexis_prefect.models.aai import TokenSet, is_offline_token
from lexis_prefect.models.ddi import DatasetHit, alternate_identifier_query
from lexis_prefect.models.job import SingleHPCJob
from lexis_prefect.resolve import JobRejected, resolve_specification

__all__ = [
    "TEST_GROUP",
    "Settings",
    "check_configuration",
    "check_dataset_api",
    "check_discovery",
    "check_heappe_login",
    "check_input",
    "check_job",
    "check_output",
    "check_resolution",
    "check_staging",
    "check_token",
    "revoke",
]

#: A dataset-search query that matches nothing: asks the dataset API to answer, and reads nothing.
_PROBE_QUERY = alternate_identifier_query("lexis-prefect-doctor-probe", "lexis-prefect-doctor")
#: The group id the job's names are resolved under here, and the test job runs under.
TEST_GROUP = "doctor"


# -- where a setting lives -----------------------------------------------------------------------


class Settings:
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
        return failed("configuration", f"cannot load {source}: {describe(exc)}", fix), None
    return ok("configuration", f"from {source}: AAI {credentials.endpoints.aai_url}"), credentials


async def check_discovery(credentials: Any, settings: Settings) -> tuple[Check, dict[str, Any] | None]:
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
        return failed("OIDC discovery", describe(exc), _unreachable_fix(exc, url, setting, "the AAI")), None
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


async def check_token(credentials: Any, settings: Settings) -> tuple[Check, TokenSet | None, SecretStr | None]:
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
        return failed(name, describe(exc), fix), None, None
    except LexisError as exc:
        url = credentials.endpoints.aai_url
        fix = _unreachable_fix(exc, url, settings.name("endpoints.aai_url", "LEXIS_AAI_URL"), "the AAI")
        return failed(name, describe(exc), fix), None, None
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


async def check_heappe_login(credentials: Any, settings: Settings, location: str, token: SecretStr) -> tuple[Check, Any]:
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
        return failed(name, describe(exc), _unreachable_fix(exc, heappe.base_url, settings.heappe(location), "HEAppE")), None
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
        return failed(name, describe(exc), f"HEAppE at {heappe.base_url} did not list its clusters: try again later")
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


async def check_staging(credentials: Any, settings: Settings, job: SingleHPCJob | None, token: SecretStr) -> tuple[Check, list[str] | None]:
    """6a. The staging API answers `GET /info`, and knows the staging system of each of the job's locations."""
    name = "DDI staging API"
    url = credentials.endpoints.staging_url
    try:
        async with credentials.get_client("ddi", access_token=token) as ddi:
            systems = await ddi.info()
    except LexisError as exc:
        setting = settings.name("endpoints.staging_url", "LEXIS_STAGING_URL")
        return failed(name, describe(exc), _unreachable_fix(exc, url, setting, "the DDI staging API")), None
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


async def check_dataset_api(credentials: Any, settings: Settings, token: SecretStr) -> tuple[Check, Any]:
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
        return failed(name, describe(exc), _unreachable_fix(exc, client.base_url, setting, "the DDI dataset API")), None
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

