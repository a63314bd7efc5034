"""Prefect Blocks for LEXIS endpoints and credentials, with environment variables as the fallback.

Nothing in the clients knows a LEXIS URL: they are handed one by these blocks.
Where the configuration comes from, first match wins:

1. a block name passed explicitly (`LexisCredentials.load("prod")`, or `resolve_credentials("prod")`);
2. the block named by `LEXIS_CREDENTIALS_BLOCK`;
3. the `LEXIS_*` environment variables below (`LexisCredentials.from_env()`).

| variable | meaning |
|---|---|
| `LEXIS_AAI_URL` | realm URL, e.g. `https://aai.lexis.tech/auth/realms/LEXIS_AAI` |
| `LEXIS_CLIENT_ID`, `LEXIS_CLIENT_SECRET` | OIDC client that tokens are exchanged for |
| `LEXIS_USERNAME`, `LEXIS_PASSWORD` | optional password-grant login (the sandbox's demo user) |
| `LEXIS_STAGING_URL` | DDI staging API base, e.g. `https://<host>/staging` |
| `LEXIS_DATASET_URL` | optional DDI dataset API base, e.g. `https://<host>/dataset`; else derived from the staging URL |
| `LEXIS_HEAPPE_URLS` | JSON object: location name -> HEAppE base URL |
| `LEXIS_HEAPPE_URL` | HEAppE base URL for locations not in `LEXIS_HEAPPE_URLS` |
| `LEXIS_HPC_STAGING_SYSTEMS` | JSON object: location name -> DDI staging system of its cluster |
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, overload

from prefect.blocks.abstract import CredentialsBlock
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from pydantic import Field, SecretStr, WithJsonSchema, field_validator

from lexis_prefect._http import TokenSource
from lexis_prefect.aai import AAIClient
from lexis_prefect.ddi import DDIDatasetClient, DDIStagingClient
from lexis_prefect.exceptions import ConfigurationError
from lexis_prefect.heappe import HEAppEClient

__all__ = [
    "ACCESS_TOKEN_SCHEMA",
    "AccessToken",
    "LexisCredentials",
    "LexisEndpoints",
    "resolve_credentials",
    "reveal_token",
    "secret_reference_schema",
    "secret_text",
]

_DOCS = "https://docs.lexis.tech"


def _http_url(value: str, field: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{field} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


class LexisEndpoints(Block):
    """Where the LEXIS services of one platform live.

    Example:
        ```python
        from lexis_prefect.blocks import LexisEndpoints

        endpoints = LexisEndpoints.load("BLOCK_NAME")
        heappe_url = endpoints.heappe_url("Karolina")
        ```
    """

    _block_type_name = "LEXIS Endpoints"
    _block_type_slug = "lexis-endpoints"
    _documentation_url = _DOCS

    aai_url: str = Field(description="AAI realm URL, e.g. https://aai.lexis.tech/auth/realms/LEXIS_AAI.")
    staging_url: str = Field(description="DDI staging API base URL, e.g. https://<host>/staging.")
    dataset_url: str | None = Field(
        default=None,
        description="DDI dataset API base URL, e.g. https://<host>/dataset; if empty, staging_url with /staging made /dataset.",
    )
    heappe_urls: dict[str, str] = Field(
        default_factory=dict, description="HEAppE base URL per location name, e.g. {'Karolina': 'https://heappe.example'}."
    )
    default_heappe_url: str | None = Field(
        default=None, description="HEAppE base URL for locations not listed in heappe_urls."
    )
    hpc_staging_systems: dict[str, str] = Field(
        default_factory=dict,
        description="DDI staging system name of each location's cluster scratch, e.g. {'Karolina': 'karolina_scratch'}.",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of every HTTP call.")

    @field_validator("aai_url", "staging_url", "dataset_url", "default_heappe_url")
    @classmethod
    def _urls(cls, value: str | None, info) -> str | None:
        return None if value is None else _http_url(value, info.field_name)

    @field_validator("heappe_urls")
    @classmethod
    def _location_urls(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: _http_url(url, f"heappe_urls[{name!r}]") for name, url in value.items()}

    def heappe_url(self, location_name: str) -> str:
        """The HEAppE instance that serves `location_name`."""
        url = self.heappe_urls.get(location_name, self.default_heappe_url)
        if url is None:
            known = ", ".join(sorted(self.heappe_urls)) or "none"
            raise ConfigurationError(
                f"no HEAppE URL for location {location_name!r} (known: {known}); "
                "add it to heappe_urls / LEXIS_HEAPPE_URLS or set default_heappe_url / LEXIS_HEAPPE_URL"
            )
        return url

    def dataset_api_url(self) -> str | None:
        """The dataset API base: `dataset_url`, else `staging_url` with its last `/staging` made `/dataset`.

        [I] The derivation assumes both APIs sit side by side under one prefix, as Py4Lexis has
        `.../api/v0.2/dataset` and the staging API is likely `.../api/v0.2/staging`; None when
        `staging_url` does not end in `/staging`, since then there is nothing to go by.
        """
        if self.dataset_url is not None:
            return self.dataset_url
        base, slash, last = self.staging_url.rpartition("/")
        return f"{base}/dataset" if slash and last == "staging" else None

    def hpc_staging_system(self, location_name: str) -> str:
        """The staging system that reaches `location_name`'s job directories."""
        try:
            return self.hpc_staging_systems[location_name]
        except KeyError:
            raise ConfigurationError(
                f"no DDI staging system for location {location_name!r}; "
                "add it to hpc_staging_systems / LEXIS_HPC_STAGING_SYSTEMS"
            ) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LexisEndpoints:
        """Endpoints from the `LEXIS_*` environment variables (see the module docstring)."""
        env = os.environ if environ is None else environ
        missing = [name for name in ("LEXIS_AAI_URL", "LEXIS_STAGING_URL") if not env.get(name)]
        if missing:
            raise ConfigurationError(
                f"LEXIS endpoints are not configured: set {' and '.join(missing)}, "
                "or save a LexisCredentials block and name it in LEXIS_CREDENTIALS_BLOCK"
            )
        try:
            return cls(
                aai_url=env["LEXIS_AAI_URL"],
                staging_url=env["LEXIS_STAGING_URL"],
                dataset_url=env.get("LEXIS_DATASET_URL") or None,
                heappe_urls=_json_object(env, "LEXIS_HEAPPE_URLS"),
                default_heappe_url=env.get("LEXIS_HEAPPE_URL") or None,
                hpc_staging_systems=_json_object(env, "LEXIS_HPC_STAGING_SYSTEMS"),
            )
        except ValueError as exc:
            raise ConfigurationError(f"invalid LEXIS endpoint in the environment: {exc}") from None


def _json_object(env: Mapping[str, str], name: str) -> dict[str, str]:
    try:
        value = json.loads(env.get(name) or "{}")
    except ValueError as exc:
        raise ConfigurationError(f"{name} is not a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{name} must be a JSON object of location name -> value")
    return value


class LexisCredentials(CredentialsBlock):
    """The OIDC client (and optionally a user login) lexis-prefect uses on a LEXIS platform.

    `get_client("aai")` gives an `AAIClient`; `get_client("ddi", access_token=...)`,
    `get_client("dataset", access_token=...)` and `get_client("heappe", access_token=..., location=...)`
    give the clients that act for a user with that user's token.

    Example:
        ```python
        from lexis_prefect.blocks import LexisCredentials

        credentials = LexisCredentials.load("BLOCK_NAME")
        async with credentials.get_client("aai") as aai:
            tokens = await aai.exchange_token(user_access_token)
        ```
    """

    _block_type_name = "LEXIS Credentials"
    _block_type_slug = "lexis-credentials"
    _documentation_url = _DOCS

    endpoints: LexisEndpoints = Field(description="Where the LEXIS services live.")
    client_id: str = Field(min_length=1, description="OIDC client id tokens are issued to.")
    client_secret: SecretStr | None = Field(default=None, description="OIDC client secret; none for a public client.")
    username: str | None = Field(default=None, description="User for the password grant (optional).")
    password: SecretStr | None = Field(default=None, description="Password for the password grant (optional).")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LexisCredentials:
        """Credentials and endpoints from the `LEXIS_*` environment variables."""
        env = os.environ if environ is None else environ
        endpoints = LexisEndpoints.from_env(env)
        if not env.get("LEXIS_CLIENT_ID"):
            raise ConfigurationError("LEXIS credentials are not configured: set LEXIS_CLIENT_ID")
        secret, password = env.get("LEXIS_CLIENT_SECRET"), env.get("LEXIS_PASSWORD")
        return cls(
            endpoints=endpoints,
            client_id=env["LEXIS_CLIENT_ID"],
            client_secret=SecretStr(secret) if secret else None,
            username=env.get("LEXIS_USERNAME") or None,
            password=SecretStr(password) if password else None,
        )

    @overload
    def get_client(self, client_type: Literal["aai"]) -> AAIClient: ...
    @overload
    def get_client(self, client_type: Literal["ddi"], *, access_token: TokenSource) -> DDIStagingClient: ...
    @overload
    def get_client(self, client_type: Literal["dataset"], *, access_token: TokenSource) -> DDIDatasetClient: ...
    @overload
    def get_client(
        self, client_type: Literal["heappe"], *, access_token: TokenSource, location: str
    ) -> HEAppEClient: ...

    def get_client(
        self,
        client_type: Literal["aai", "ddi", "dataset", "heappe"],
        *,
        access_token: TokenSource | None = None,
        location: str | None = None,
    ) -> AAIClient | DDIStagingClient | DDIDatasetClient | HEAppEClient:
        """A new client of one service; close it with `async with` or `aclose()`."""
        timeout = self.endpoints.timeout_seconds
        if client_type == "aai":
            return AAIClient(self.endpoints.aai_url, self.client_id, self.client_secret, timeout=timeout)
        if access_token is None:
            raise ValueError(f"the {client_type} client acts for a user: pass access_token=")
        if client_type == "ddi":
            return DDIStagingClient(self.endpoints.staging_url, access_token, timeout=timeout)
        if client_type == "dataset":
            dataset_url = self.endpoints.dataset_api_url()
            if dataset_url is None:
                raise ConfigurationError(
                    f"no DDI dataset API URL: staging_url {self.endpoints.staging_url!r} does not end in /staging, "
                    "so set dataset_url / LEXIS_DATASET_URL"
                )
            return DDIDatasetClient(dataset_url, access_token, timeout=timeout)
        if client_type == "heappe":
            if location is None:
                raise ValueError("the heappe client is per location: pass location=")
            return HEAppEClient(self.endpoints.heappe_url(location), access_token, timeout=timeout)
        raise ValueError(f"unknown client_type {client_type!r}; expected 'aai', 'ddi', 'dataset' or 'heappe'")


def resolve_credentials(block_name: str | None = None) -> LexisCredentials:
    """The credentials to use: the named block, else `LEXIS_CREDENTIALS_BLOCK`, else the environment."""
    name = block_name or os.environ.get("LEXIS_CREDENTIALS_BLOCK")
    if name:
        # `_sync=True`: in async code (every flow here) `load` would otherwise return a coroutine.
        return LexisCredentials.load(name, _sync=True)  # type: ignore[return-value, call-arg]
    return LexisCredentials.from_env()


def secret_reference_schema(title: str, description: str) -> dict[str, Any]:
    """The JSON schema of a parameter that only takes a reference to a saved Secret block.

    A deployment run's parameters are stored as sent, so a token passed as text would sit in
    clear in the database. With this schema the Prefect server refuses anything but
    `{"$ref": {"block_document_id": ...}}` or `{"$ref": {"block_document_slug": "secret/<name>"}}`
    when the run is created, the UI shows a picker of Secret blocks (`block_type_slug`), and the
    flow receives the loaded block (Prefect resolves `$ref` values before validating parameters).
    """
    return {
        "title": title,
        "description": description,
        "type": "object",
        "block_type_slug": "secret",
        "properties": {
            "$ref": {
                "oneOf": [
                    {"type": "string", "format": "uuid"},
                    {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1},
                ]
            }
        },
        "required": ["$ref"],
        "additionalProperties": False,
    }


ACCESS_TOKEN_SCHEMA = secret_reference_schema(
    "access_token",
    "A Secret block holding the user's LEXIS access token (never the token itself: run parameters are stored "
    "in clear). Save one with `lexis-prefect blocks save-token NAME`.",
)

#: A flow parameter holding the user's access token. Called from Python it takes the token
#: (`SecretStr`, stored masked); through a deployment it takes a Secret block reference only.
AccessToken = Annotated[Union[SecretStr, Secret], WithJsonSchema(ACCESS_TOKEN_SCHEMA)]


def secret_text(value: Any, name: str = "access_token") -> Any:
    """The text inside a `SecretStr` or a Secret block; any other value as it is."""
    if isinstance(value, Block) and not isinstance(value, Secret):
        raise ConfigurationError(f"{name} must reference a Secret block, not a {type(value).__name__} block")
    if isinstance(value, Secret):
        value = value.get()
        if not isinstance(value, str):
            raise ConfigurationError(f"{name}: the Secret block must hold text, not JSON")
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def reveal_token(value: SecretStr | Secret | str | int, name: str = "access_token") -> SecretStr:
    """The token inside an `AccessToken` value, whichever form it came in.

    An int is taken as its text: Airflow's native rendering turns a numeric-looking token into one.

    Raises:
        ConfigurationError: the referenced block is not a Secret, holds JSON, or the token is empty.
    """
    text = str(secret_text(value, name))
    if not text:
        raise ConfigurationError(f"{name} is empty: pass the user's LEXIS access token or a Secret block holding it")
    return SecretStr(text)
