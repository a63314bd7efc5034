"""The user's token of a run, kept as Prefect keeps secrets: a Secret block per run.

As `lexis-prefect blocks save-token` does, the access token is first exchanged (RFC 8693, at the
AAI, for our OIDC client) for an offline token, which outlives the minutes an access token lives;
the run's parameter is the reference `{"$ref": {"block_document_slug": "secret/<name>"}}` the
deployments' parameters already use, so the token is stored nowhere in clear.
"""

from __future__ import annotations

import uuid
from typing import Any

from prefect.blocks.system import Secret
from prefect.client.orchestration import PrefectClient
from prefect.exceptions import ObjectNotFound
from pydantic import SecretStr

from lexis_prefect.api.errors import Problem
from lexis_prefect.exceptions import LexisError

__all__ = ["BLOCK_PREFIX", "delete_token_block", "reference", "save_token_block"]

BLOCK_PREFIX = "airflow-api-run-"


def reference(name: str) -> dict[str, Any]:
    return {"$ref": {"block_document_slug": f"secret/{name}"}}


async def save_token_block(credentials: Any, token: SecretStr, transport: Any = None) -> str:
    """Exchange `token` for an offline token, save it in a new Secret block and return its name."""
    try:
        if transport is None:
            aai = credentials.get_client("aai")
        else:  # tests: the sandbox AAI in process
            from lexis_prefect.aai import AAIClient

            aai = AAIClient(credentials.endpoints.aai_url, credentials.client_id, credentials.client_secret,
                            transport=transport)
        async with aai:
            tokens = await aai.exchange_token(token, offline_access=True)
    except LexisError as exc:
        # LexisError texts name the service and status, never the token (lexis_prefect._http).
        raise Problem(400, f"The access token could not be exchanged for an offline token: {type(exc).__name__}") from None
    if tokens.refresh_token is None:
        raise Problem(400, "The LEXIS AAI gave no offline token for the access token")
    name = f"{BLOCK_PREFIX}{uuid.uuid4()}"
    await Secret(value=tokens.refresh_token).save(name)
    return name


async def delete_token_block(client: PrefectClient, parameters: dict[str, Any]) -> None:
    """Delete the Secret blocks this API made for a run (those named with BLOCK_PREFIX)."""
    for value in parameters.values():
        slug = value.get("$ref", {}).get("block_document_slug", "") if isinstance(value, dict) else ""
        kind, _, name = slug.partition("/") if isinstance(slug, str) else ("", "", "")
        if kind == "secret" and name.startswith(BLOCK_PREFIX):
            try:
                document = await client.read_block_document_by_name(name, "secret")
                await client.delete_block_document(document.id)
            except ObjectNotFound:
                pass
