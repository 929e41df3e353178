"""End to end with a third-party relying party library (authlib): what a city service really does.

discovery -> authorization URL (state, nonce, PKCE S256) -> the browser (card step via the flow) ->
authorization response (``iss`` checked, RFC 9207) -> token request -> ID token validated against the
discovery document and the JWKS -> userinfo.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from joserfc.jws import JWSRegistry

from eid_gateway.identity import Attribute, LevelOfAssurance
from eid_gateway.pseudonym import derive_pseudonym

from .conftest import (
    ERIKA,
    PORTAL_CB,
    PORTAL_SECRET,
    PSEUDONYM_SECRET,
    TAX_CB,
    YOUTH_CB,
    Provider,
    in_thread,
    query_of,
)


@pytest.fixture(autouse=True)
def _insecure_transport_for_localhost(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test provider listens on http://127.0.0.1; authlib insists on https otherwise."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    yield


@dataclass
class RelyingParty:
    """A city service's OIDC client, built only from authlib, joserfc and requests."""

    issuer: str
    session: OAuth2Session
    metadata: dict[str, Any] = field(default_factory=dict)
    nonce: str = ""
    verifier: str = ""
    state: str = ""

    @classmethod
    def for_client(
        cls,
        issuer: str,
        client_id: str,
        redirect_uri: str,
        secret: Any = None,
        *,
        scope: str = "openid profile",
        auth_method: Any = "client_secret_basic",
    ) -> RelyingParty:
        """A client registered as ``client_id`` (``secret``: its secret or private key) that uses PKCE S256."""
        session = OAuth2Session(
            client_id,
            secret,
            scope=scope,
            redirect_uri=redirect_uri,
            token_endpoint_auth_method=auth_method,
            code_challenge_method="S256",
        )
        return cls(issuer, session)

    def discover(self) -> None:
        resp = requests.get(self.issuer + "/.well-known/openid-configuration", timeout=5)
        resp.raise_for_status()
        self.metadata = resp.json()
        assert self.metadata["issuer"] == self.issuer  # OIDC Discovery §4.3

    def authorization_url(self, **extra: str) -> str:
        self.nonce = generate_token(24)
        self.verifier = generate_token(64)
        url, self.state = self.session.create_authorization_url(
            self.metadata["authorization_endpoint"], nonce=self.nonce, code_verifier=self.verifier, **extra
        )
        return str(url)

    def browser(self, url: str) -> str:
        """The citizen's browser: follow the gateway until it sends us back to the redirect_uri."""
        resp = requests.get(url, allow_redirects=False, timeout=5)
        assert resp.status_code in (302, 303), resp.text
        return str(resp.headers["Location"])

    def callback(self, location: str) -> dict[str, Any]:
        params = query_of(location)
        assert params.get("iss") == self.issuer  # RFC 9207 mix-up defence
        token = self.session.fetch_token(
            self.metadata["token_endpoint"], authorization_response=location, code_verifier=self.verifier
        )
        return dict(token)

    def validate_id_token(self, token: dict[str, Any]) -> CodeIDToken:
        keys = KeySet.import_key_set(requests.get(self.metadata["jwks_uri"], timeout=5).json())
        decoded = jwt.decode(
            token["id_token"],
            keys,
            registry=JWSRegistry(algorithms=self.metadata["id_token_signing_alg_values_supported"]),
        )
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.session.client_id},
            },
            {"nonce": self.nonce, "client_id": self.session.client_id, "access_token": token["access_token"]},
        )
        claims.validate(leeway=5)
        return claims

    def userinfo(self) -> dict[str, Any]:
        resp = self.session.get(self.metadata["userinfo_endpoint"])
        resp.raise_for_status()
        assert resp.headers["Content-Type"].startswith("application/json")
        return dict(resp.json())


def sign_in(rp: RelyingParty, **extra: str) -> tuple[CodeIDToken, dict[str, Any]]:
    rp.discover()
    location = rp.browser(rp.authorization_url(**extra))
    token = rp.callback(location)
    assert token["token_type"] == "Bearer"
    return rp.validate_id_token(token), rp.userinfo()


async def test_confidential_client_secret_basic(provider: Provider) -> None:
    rp = RelyingParty.for_client(provider.issuer, "portal-rp", PORTAL_CB, PORTAL_SECRET)
    id_token, userinfo = await in_thread(sign_in, rp)

    assert id_token.header["alg"] == "ES256" and id_token.header["kid"] == "es-current"
    expected_sub = derive_pseudonym(PSEUDONYM_SECRET, "portal", ERIKA.restricted_id or "")
    assert id_token["sub"] == expected_sub != ERIKA.restricted_id  # pairwise, never the RestrictedID
    assert id_token["acr"] == "http://eidas.europa.eu/LoA/high"
    assert id_token["azp"] == "portal-rp"
    assert id_token["auth_time"] == int(ERIKA.authenticated_at.timestamp())  # type: ignore[union-attr]
    assert "given_name" not in id_token  # scope claims go to userinfo only
    assert userinfo == {
        "sub": expected_sub,
        "given_name": "ERIKA",
        "family_name": "MUSTERMANN",
        "birthdate": "1964-08-12",
    }
    # what the card step was asked for: the profile scope within the registration, plus the pseudonym
    service_id, _, eid_request = provider.flow.begun[-1]
    assert service_id == "portal"
    assert eid_request.required | eid_request.optional == {
        Attribute.GIVEN_NAMES,
        Attribute.FAMILY_NAMES,
        Attribute.DATE_OF_BIRTH,
        Attribute.PSEUDONYM,
    }
    assert eid_request.level_of_assurance is LevelOfAssurance.HIGH


async def test_public_client_with_pkce_and_claims_parameter(provider: Provider) -> None:
    rp = RelyingParty.for_client(provider.issuer, "youth-app", YOUTH_CB, scope="openid", auth_method="none")
    claims = '{"id_token": {"age_verification": {"essential": true}}, "userinfo": {"given_name": null}}'
    id_token, userinfo = await in_thread(sign_in, rp, claims=claims)

    assert id_token["age_verification"] is True
    # given_name was asked for but is outside the youth portal's registration: not released
    assert "given_name" not in userinfo and "given_name" not in id_token
    assert set(userinfo) == {"sub"}
    _, _, eid_request = provider.flow.begun[-1]
    assert Attribute.GIVEN_NAMES not in eid_request.required | eid_request.optional
    assert Attribute.AGE_VERIFICATION in eid_request.required  # essential
    assert eid_request.minimum_age == 16
    # pairwise: another service sees another sub for the same card
    assert id_token["sub"] == derive_pseudonym(PSEUDONYM_SECRET, "youth", ERIKA.restricted_id or "")


async def test_private_key_jwt_client_gets_ps256_id_token(provider: Provider, tax_client_key: ECKey) -> None:
    token_endpoint = provider.url("/oidc/token")
    auth_method = PrivateKeyJWT(token_endpoint, alg="ES256")
    rp = RelyingParty.for_client(provider.issuer, "tax-rp", TAX_CB, tax_client_key, auth_method=auth_method)
    id_token, userinfo = await in_thread(sign_in, rp)

    assert id_token.header["alg"] == "PS256" and id_token.header["kid"] == "rsa-1"
    assert userinfo["family_name"] == "MUSTERMANN"
    assert "birthdate" not in userinfo  # in the profile scope but not in the tax office's registration


async def test_discovery_and_jwks_publish_current_and_next_key(provider: Provider) -> None:
    meta = await (await provider.client.get("/.well-known/openid-configuration")).json()
    jwks = await (await provider.client.get("/oidc/jwks")).json()
    kids = {k["kid"] for k in jwks["keys"]}
    assert kids == {"es-current", "es-next", "rsa-1"}
    assert all("d" not in k and "p" not in k for k in jwks["keys"])  # public parts only
    assert meta["jwks_uri"] == provider.url("/oidc/jwks")
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["subject_types_supported"] == ["pairwise"]
    assert meta["id_token_signing_alg_values_supported"][0] == "ES256"
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    assert meta["authorization_response_iss_parameter_supported"] is True
