"""LexisEndpoints / LexisCredentials: Prefect block standards, save/load on a real Prefect server, env fallback."""

from __future__ import annotations

import json
import re

import pytest
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from pydantic import SecretStr, ValidationError

from lexis_prefect.aai import AAIClient
from lexis_prefect.blocks import (
    ACCESS_TOKEN_SCHEMA,
    AccessToken,
    LexisCredentials,
    LexisEndpoints,
    resolve_credentials,
    reveal_token,
)
from lexis_prefect.ddi import DDIDatasetClient, DDIStagingClient
from lexis_prefect.exceptions import ConfigurationError
from lexis_prefect.heappe import HEAppEClient

ENV = {
    "LEXIS_AAI_URL": "https://aai.test/auth/realms/LEXIS_AAI",
    "LEXIS_STAGING_URL": "https://api.test/staging/",
    "LEXIS_HEAPPE_URLS": json.dumps({"Karolina": "https://heappe.test/karolina"}),
    "LEXIS_HEAPPE_URL": "https://heappe.test/default",
    "LEXIS_CLIENT_ID": "lexis-prefect",
    "LEXIS_CLIENT_SECRET": "very-secret-client-secret",
}


def credentials() -> LexisCredentials:
    return LexisCredentials.from_env(ENV)


# -- Prefect's block standards (BlockStandardTestSuite, minus its network logo check) ---------


@pytest.mark.parametrize("block", [LexisEndpoints, LexisCredentials])
def test_block_meets_prefect_standards(block: type[Block]):
    assert block.get_description()
    assert block._documentation_url
    for name, field in block.model_fields.items():
        if Block.annotation_refers_to_block_class(field.annotation):
            continue
        assert field.description and field.description.endswith("."), f"{block.__name__}.{name}"
    example = block.get_code_example()
    assert re.search(rf"from .* import {block.__name__}", example)
    assert re.search(rf'.* = {block.__name__}\.load\("BLOCK_NAME"\)', example)


# -- environment fallback --------------------------------------------------------------------


def test_from_env_reads_every_variable():
    creds = credentials()
    assert creds.endpoints.aai_url == ENV["LEXIS_AAI_URL"]
    assert creds.endpoints.staging_url == "https://api.test/staging"
    assert creds.endpoints.heappe_url("Karolina") == "https://heappe.test/karolina"
    assert creds.endpoints.heappe_url("Barbora") == "https://heappe.test/default"
    assert creds.client_id == "lexis-prefect"
    assert creds.client_secret.get_secret_value() == ENV["LEXIS_CLIENT_SECRET"]
    assert creds.username is None and creds.password is None


@pytest.mark.parametrize("missing", ["LEXIS_AAI_URL", "LEXIS_STAGING_URL", "LEXIS_CLIENT_ID"])
def test_missing_variable_is_named(missing):
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        LexisCredentials.from_env(env)


def test_malformed_heappe_urls_is_named():
    with pytest.raises(ConfigurationError, match="LEXIS_HEAPPE_URLS"):
        LexisCredentials.from_env({**ENV, "LEXIS_HEAPPE_URLS": "Karolina=https://x"})
    with pytest.raises(ConfigurationError, match="LEXIS_HEAPPE_URLS"):
        LexisCredentials.from_env({**ENV, "LEXIS_HEAPPE_URLS": '["https://x"]'})


def test_non_http_url_is_refused_naming_the_field():
    with pytest.raises(ConfigurationError, match="staging_url must be an http"):
        LexisCredentials.from_env({**ENV, "LEXIS_STAGING_URL": "ftp://x"})
    with pytest.raises(ValidationError, match=r"heappe_urls\['Karolina'\] must be an http"):
        LexisEndpoints(aai_url="https://a", staging_url="https://s", heappe_urls={"Karolina": "karolina"})


def test_unknown_location_without_default_names_the_known_ones():
    endpoints = LexisEndpoints(aai_url="https://a", staging_url="https://s", heappe_urls={"Karolina": "https://k"})
    with pytest.raises(ConfigurationError, match=r"'LUMI' \(known: Karolina\)"):
        endpoints.heappe_url("LUMI")


def test_resolve_credentials_falls_back_to_the_environment(monkeypatch):
    monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert resolve_credentials().client_id == "lexis-prefect"
    monkeypatch.delenv("LEXIS_AAI_URL")
    with pytest.raises(ConfigurationError, match="LEXIS_AAI_URL"):
        resolve_credentials()


# -- clients ---------------------------------------------------------------------------------


async def test_get_client_builds_each_client_from_the_endpoints():
    creds = credentials()
    token = SecretStr("user-token")
    async with creds.get_client("aai") as aai, creds.get_client("ddi", access_token=token) as ddi:
        async with creds.get_client("heappe", access_token=token, location="Karolina") as heappe:
            assert isinstance(aai, AAIClient) and aai.base_url == ENV["LEXIS_AAI_URL"] + "/"
            assert aai.client_id == "lexis-prefect"
            assert isinstance(ddi, DDIStagingClient) and ddi.base_url == "https://api.test/staging/"
            assert isinstance(heappe, HEAppEClient) and heappe.base_url == "https://heappe.test/karolina/"


def test_get_client_for_a_user_service_needs_the_token_and_location():
    creds = credentials()
    with pytest.raises(ValueError, match="access_token"):
        creds.get_client("ddi")
    with pytest.raises(ValueError, match="location"):
        creds.get_client("heappe", access_token=SecretStr("t"))


# -- the dataset API (metadata search) ---------------------------------------------------------


def test_dataset_url_is_derived_from_a_staging_url_that_ends_in_staging():
    assert credentials().endpoints.dataset_url is None
    assert credentials().endpoints.dataset_api_url() == "https://api.test/dataset"
    endpoints = LexisEndpoints(aai_url="https://a", staging_url="https://api.lexis.tech/api/v0.2/staging")
    assert endpoints.dataset_api_url() == "https://api.lexis.tech/api/v0.2/dataset"


@pytest.mark.parametrize("staging_url", ["https://ddi.test", "https://ddi.test/api/staging-v2", "https://staging.test"])
def test_dataset_url_is_not_guessed_from_other_staging_urls(staging_url):
    assert LexisEndpoints(aai_url="https://a", staging_url=staging_url).dataset_api_url() is None


def test_dataset_url_from_the_environment_wins_over_the_derivation():
    creds = LexisCredentials.from_env({**ENV, "LEXIS_DATASET_URL": "https://data.test/api/dataset/"})
    assert creds.endpoints.dataset_url == "https://data.test/api/dataset"
    assert creds.endpoints.dataset_api_url() == "https://data.test/api/dataset"
    assert LexisCredentials.from_env({**ENV, "LEXIS_DATASET_URL": ""}).endpoints.dataset_url is None


def test_non_http_dataset_url_is_refused_naming_the_field():
    with pytest.raises(ConfigurationError, match="dataset_url must be an http"):
        LexisCredentials.from_env({**ENV, "LEXIS_DATASET_URL": "api.test/dataset"})


async def test_get_client_dataset_builds_the_search_client():
    token = SecretStr("user-token")
    async with credentials().get_client("dataset", access_token=token) as dataset:
        assert isinstance(dataset, DDIDatasetClient) and dataset.base_url == "https://api.test/dataset/"
    explicit = LexisCredentials.from_env({**ENV, "LEXIS_DATASET_URL": "https://data.test/dataset"})
    async with explicit.get_client("dataset", access_token=token) as dataset:
        assert dataset.base_url == "https://data.test/dataset/"
    with pytest.raises(ValueError, match="access_token"):
        credentials().get_client("dataset")


def test_get_client_dataset_without_any_url_names_the_setting():
    creds = LexisCredentials.from_env({**ENV, "LEXIS_STAGING_URL": "https://ddi.test/api"})
    with pytest.raises(ConfigurationError, match="dataset_url / LEXIS_DATASET_URL"):
        creds.get_client("dataset", access_token=SecretStr("t"))


# -- on a real Prefect server ------------------------------------------------------------------


def test_credentials_block_saves_and_loads_with_nested_endpoints(prefect_harness):
    credentials().save("lexis-test", overwrite=True)
    loaded = LexisCredentials.load("lexis-test")
    assert loaded.endpoints.heappe_urls == {"Karolina": "https://heappe.test/karolina"}
    assert loaded.endpoints.dataset_url is None
    assert loaded.client_secret.get_secret_value() == ENV["LEXIS_CLIENT_SECRET"]


def test_resolve_credentials_prefers_the_named_block(prefect_harness, monkeypatch):
    creds = credentials().model_copy(update={"client_id": "from-block"})
    creds.save("lexis-named", overwrite=True)
    monkeypatch.setenv("LEXIS_CREDENTIALS_BLOCK", "lexis-named")
    assert resolve_credentials().client_id == "from-block"


async def test_resolve_credentials_loads_the_block_in_async_code_too(prefect_harness, monkeypatch):
    """Flows here are async: Block.load would hand back a coroutine (seen in a worker's run)."""
    creds = credentials().model_copy(update={"client_id": "from-block-async"})
    await creds.save("lexis-named-async", overwrite=True)
    monkeypatch.setenv("LEXIS_CREDENTIALS_BLOCK", "lexis-named-async")
    assert resolve_credentials().client_id == "from-block-async"


def test_secret_is_not_readable_from_the_api_or_repr(prefect_harness):
    from prefect.client.orchestration import get_client

    creds = credentials()
    creds.save("lexis-secret", overwrite=True)
    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name("lexis-secret", "lexis-credentials", include_secrets=False)
    assert ENV["LEXIS_CLIENT_SECRET"] not in json.dumps(document.data, default=str)
    assert ENV["LEXIS_CLIENT_SECRET"] not in repr(creds) + str(creds.model_dump())


# -- the access token: the text from Python, a Secret block reference through a deployment ------

TOKEN = "eyJ.access-token-under-test.sig"


@pytest.mark.parametrize(
    "value", [TOKEN, SecretStr(TOKEN), Secret(value=TOKEN)], ids=["text", "SecretStr", "Secret block"]
)
def test_reveal_token_reads_every_form(value):
    assert reveal_token(value).get_secret_value() == TOKEN


def test_reveal_token_takes_an_int_as_its_text():
    assert reveal_token(12345).get_secret_value() == "12345"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "access_token is empty"),
        (Secret(value=""), "access_token is empty"),
        (Secret(value={"token": TOKEN}), "must hold text, not JSON"),
        (LexisEndpoints(aai_url="https://a.test", staging_url="https://s.test"), "must reference a Secret block"),
    ],
    ids=["empty", "empty block", "JSON block", "other block"],
)
def test_reveal_token_refuses_what_is_not_a_token_naming_the_parameter(value, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        reveal_token(value)
    assert TOKEN not in str(caught.value)


def test_access_token_schema_takes_only_a_block_reference():
    from prefect.utilities.schema_tools.validation import ValidationError as SchemaError
    from prefect.utilities.schema_tools.validation import validate

    schema = {"type": "object", "properties": {"access_token": ACCESS_TOKEN_SCHEMA}}
    for reference in ({"block_document_slug": "secret/mine"}, "0b7a3f0e-3a5e-4f54-8f43-2ef6b2b1c001"):
        validate({"access_token": {"$ref": reference}}, schema, raise_on_error=True, preprocess=True)
    for clear in (TOKEN, {"value": TOKEN}, {"$ref": {"block_document_slug": "secret/mine"}, "value": TOKEN}):
        with pytest.raises(SchemaError):
            validate({"access_token": clear}, schema, raise_on_error=True, preprocess=True)


def test_a_flow_run_given_a_secret_block_reference_gets_the_token_and_stores_only_the_reference(prefect_harness):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    Secret(value=TOKEN).save("lexis-access-token-test", overwrite=True)

    @flow
    def uses(access_token: AccessToken) -> tuple[str, str]:
        return reveal_token(access_token).get_secret_value(), flow_run.get_id()

    reference = {"$ref": {"block_document_slug": "secret/lexis-access-token-test"}}
    seen, run_id = uses(access_token=reference)
    assert seen == TOKEN
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(run_id).parameters
    assert TOKEN not in json.dumps(stored, default=str)


def test_prefect_block_register_finds_the_lexis_blocks(prefect_harness):
    """`prefect block register -m lexis_prefect` (the package's names load lazily)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    prefect = Path(sys.executable).parent / "prefect"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run(
        [str(prefect), "block", "register", "-m", "lexis_prefect"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LEXIS Credentials" in done.stdout and "LEXIS Endpoints" in done.stdout, done.stdout
    with get_client(sync_client=True) as client:
        assert client.read_block_type_by_slug("lexis-credentials").name == "LEXIS Credentials"
