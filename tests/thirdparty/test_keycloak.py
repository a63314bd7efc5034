"""python-keycloak, the usual Keycloak client, against the sandbox AAI: the realm of a LEXIS user.

The sandbox serves Keycloak's legacy `/auth` layout (`<url>/auth/realms/LEXIS_AAI/...`), so
python-keycloak's `server_url` is `<url>/auth/`, as for the LEXIS AAI itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakPostError

from lexis_prefect.models.aai import REFRESH_TOKEN_TYPE
from lexis_prefect.sandbox import SandboxProcess

REALM, SECRET = "LEXIS_AAI", "thirdparty-secret"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    # lexis-prefect: a public client, as the library's own; thirdparty: a confidential one,
    # which Keycloak wants for introspection.
    with SandboxProcess("--client", "lexis-prefect", "--client", f"thirdparty:{SECRET}") as sb:
        yield sb


def oidc(sandbox: SandboxProcess, client_id: str = "lexis-prefect", secret: str | None = None) -> KeycloakOpenID:
    return KeycloakOpenID(server_url=f"{sandbox.url}/auth/", realm_name=REALM, client_id=client_id, client_secret_key=secret)


def test_discovery_names_the_endpoints_python_keycloak_uses(sandbox: SandboxProcess):
    known = oidc(sandbox).well_known()
    realm = f"{sandbox.url}/auth/realms/{REALM}"
    assert known["issuer"] == realm
    assert known["token_endpoint"] == f"{realm}/protocol/openid-connect/token"
    assert known["userinfo_endpoint"] == f"{realm}/protocol/openid-connect/userinfo"
    assert known["introspection_endpoint"] == f"{realm}/protocol/openid-connect/token/introspect"
    assert known["end_session_endpoint"] == f"{realm}/protocol/openid-connect/logout"
    assert {"password", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"} <= set(known["grant_types_supported"])


def test_password_refresh_userinfo_exchange_and_logout(sandbox: SandboxProcess):
    keycloak = oidc(sandbox)
    tokens = keycloak.token("demo", "demo")
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0 and tokens["refresh_expires_in"] > 0
    assert keycloak.decode_token(tokens["access_token"], validate=False)["preferred_username"] == "demo"

    renewed = keycloak.refresh_token(tokens["refresh_token"])
    assert renewed["access_token"] != tokens["access_token"]
    info = keycloak.userinfo(renewed["access_token"])
    assert info["preferred_username"] == "demo" and info["sub"]

    # The keeper's exchange (lexis_prefect.aai.AAIClient.exchange_token): an access token for an
    # offline refresh token of the same client.
    offline = keycloak.exchange_token(renewed["access_token"], requested_token_type=REFRESH_TOKEN_TYPE, scope="offline_access")
    assert offline["refresh_expires_in"] == 0 and "offline_access" in offline["scope"].split()
    assert keycloak.decode_token(offline["refresh_token"], validate=False)["typ"] == "Offline"
    from_offline = keycloak.refresh_token(offline["refresh_token"])
    assert keycloak.userinfo(from_offline["access_token"])["preferred_username"] == "demo"

    # Logout ends the online session: its refresh token and access tokens are dead, the offline one lives.
    assert keycloak.logout(renewed["refresh_token"]) == {}
    with pytest.raises(KeycloakPostError) as refused:
        keycloak.refresh_token(renewed["refresh_token"])
    assert refused.value.response_code == 400 and b"invalid_grant" in refused.value.response_body
    with pytest.raises(KeycloakAuthenticationError):
        keycloak.userinfo(renewed["access_token"])
    assert keycloak.refresh_token(offline["refresh_token"])["access_token"]


def test_wrong_password_is_401_invalid_grant(sandbox: SandboxProcess):
    with pytest.raises(KeycloakAuthenticationError) as refused:
        oidc(sandbox).token("demo", "not-the-password")
    assert refused.value.response_code == 401 and b"invalid_grant" in refused.value.response_body


def test_confidential_client_introspects(sandbox: SandboxProcess):
    keycloak = oidc(sandbox, "thirdparty", SECRET)
    tokens = keycloak.token("demo", "demo")
    active = keycloak.introspect(tokens["access_token"])
    assert active["active"] is True and active["preferred_username"] == "demo" and active["exp"] > active["iat"]
    assert keycloak.introspect("not-a-token") == {"active": False}
    with pytest.raises(KeycloakAuthenticationError):
        oidc(sandbox, "thirdparty", "wrong-secret").introspect(tokens["access_token"])
