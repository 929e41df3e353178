"""Issue 15, OpenID Connect: what relying parties cities already run need, with their defaults.

- ``client_secret_post`` (openid-client's default with a secret) beside ``client_secret_basic``, still
  exactly one method per request and the registered one;
- RS256 offered (OpenID Connect Discovery 1.0 §3 requires it), ES256 staying the default, and a
  discovery document that does not contradict itself or the JWKS;
- ``error_response_iss = false`` for mod_auth_openidc before 2.4.13, which loops on ``iss`` in errors.
"""

from __future__ import annotations

import base64
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from eid_gateway.app import create_app
from eid_gateway.config import load_config
from eid_gateway.core.port import FailureKind
from eid_gateway.frontends.oidc.settings import parse_client_settings
from eid_gateway.instance import write_example_config
from eid_gateway.settings_base import ConfigError

from .conftest import (
    LEGACY_CB,
    LIBRARY_CB,
    LIBRARY_SECRET,
    PORTAL_SECRET,
    Provider,
    authorize,
    code_for,
    free_port,
    in_thread,
    query_of,
    token_request,
)
from .test_end_to_end import RelyingParty, sign_in

LIBRARY = {
    "response_type": "code",
    "client_id": "library-rp",
    "redirect_uri": LIBRARY_CB,
    "scope": "openid profile",
    "state": "lib-1",
}
LEGACY = {
    "response_type": "code",
    "client_id": "legacy-rp",
    "redirect_uri": LEGACY_CB,
    "scope": "openid",
    "state": "legacy-1",
}


@pytest.fixture(autouse=True)
def _insecure_transport_for_localhost(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test provider listens on http://127.0.0.1; authlib insists on https otherwise."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    yield


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# --- client_secret_post --------------------------------------------------------------------------------


async def test_authlib_client_secret_post_gets_a_verified_rs256_id_token(provider: Provider) -> None:
    """authlib as the RP with client_secret_post (openid-client's default), registered for RS256."""
    rp = RelyingParty.for_client(
        provider.issuer, "library-rp", LIBRARY_CB, LIBRARY_SECRET, auth_method="client_secret_post"
    )
    id_token, userinfo = await in_thread(sign_in, rp)

    assert id_token.header["alg"] == "RS256" and id_token.header["kid"] == "rsa-1"
    assert userinfo["family_name"] == "MUSTERMANN" and "birthdate" not in userinfo  # not registered
    # an RP registered for RS256 accepts only RS256, with the RSA key from the JWKS
    keys = KeySet.import_key_set(await (await provider.client.get("/oidc/jwks")).json())
    rsa_only = KeySet([k for k in keys.keys if k.key_type == "RSA"])
    raw = rp.session.token["id_token"]
    decoded = jwt.decode(raw, rsa_only, registry=JWSRegistry(algorithms=["RS256"]))
    assert decoded.claims["aud"] == "library-rp" and decoded.claims["sub"] == id_token["sub"]


async def test_client_secret_post_by_hand(provider: Provider) -> None:
    code = await code_for(provider, **LIBRARY)
    status, body = await token_request(
        provider,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": LIBRARY_CB,
            "client_id": "library-rp",
            "client_secret": LIBRARY_SECRET,
        },
        auth=None,
    )
    assert status == 200, body
    published = KeySet.import_key_set(provider.frontend.keys.jwks())
    decoded = jwt.decode(body["id_token"], published, registry=JWSRegistry(algorithms=["RS256"]))
    assert decoded.header["kid"] == "rsa-1" and decoded.claims["aud"] == "library-rp"


@pytest.mark.parametrize(
    "form_extra,auth,expected",
    [
        # wrong secret, posted
        ({"client_id": "library-rp", "client_secret": "wrong-" + LIBRARY_SECRET}, None, (401, "invalid_client")),
        # the right secret, but sent with Basic: the client is registered for client_secret_post
        ({}, ("library-rp", LIBRARY_SECRET), (401, "invalid_client")),
        # a client registered for client_secret_basic that posts its (right) secret
        ({"client_id": "portal-rp", "client_secret": PORTAL_SECRET}, None, (401, "invalid_client")),
        # two methods at once: Basic header and a posted secret (RFC 6749 §2.3: MUST NOT)
        (
            {"client_id": "library-rp", "client_secret": LIBRARY_SECRET},
            ("library-rp", LIBRARY_SECRET),
            (400, "invalid_request"),
        ),
        # two methods at once: a posted secret and a client assertion
        (
            {
                "client_id": "library-rp",
                "client_secret": LIBRARY_SECRET,
                "client_assertion": "a.b.c",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            },
            None,
            (400, "invalid_request"),
        ),
        # a posted secret without the client_id it belongs to
        ({"client_secret": LIBRARY_SECRET}, None, (401, "invalid_client")),
        # the library's secret under another client's id
        ({"client_id": "portal-rp", "client_secret": LIBRARY_SECRET}, None, (401, "invalid_client")),
        # an empty secret
        ({"client_id": "library-rp", "client_secret": ""}, None, (401, "invalid_client")),
        # a public client cannot turn itself into a confidential one by posting a secret
        ({"client_id": "youth-app", "client_secret": "anything"}, None, (401, "invalid_client")),
    ],
)
async def test_client_secret_post_attacks(
    provider: Provider, form_extra: dict[str, str], auth: tuple[str, str] | None, expected: tuple[int, str]
) -> None:
    code = await code_for(provider, **LIBRARY)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": LIBRARY_CB}
    status, body = await token_request(provider, {**form, **form_extra}, auth=auth)
    assert (status, body["error"]) == expected
    assert "access_token" not in body and "id_token" not in body
    # the refused request did not spend the code: the registered method still redeems it
    status, body = await token_request(
        provider, {**form, "client_id": "library-rp", "client_secret": LIBRARY_SECRET}, auth=None
    )
    assert status == 200, body


async def test_posted_secret_given_twice_is_refused(provider: Provider) -> None:
    code = await code_for(provider, **LIBRARY)
    body = (
        f"grant_type=authorization_code&code={code}&redirect_uri={LIBRARY_CB}&client_id=library-rp"
        f"&client_secret=wrong&client_secret={LIBRARY_SECRET}"
    )
    resp = await provider.client.post(
        "/oidc/token", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"


def test_client_secret_post_needs_a_hash() -> None:
    raw = {
        "client_id": "c",
        "redirect_uris": ["https://a.example/cb"],
        "token_endpoint_auth_method": "client_secret_post",
    }
    with pytest.raises(ConfigError, match=r"required for client_secret_post .*`eid-gateway client-secret`"):
        parse_client_settings("s", raw, Path("."))
    client = parse_client_settings("s", {**raw, "client_secret_hash": "scrypt$1$2$3$4$5"}, Path("."))
    assert client.uses_secret and client.error_response_iss is True


# --- discovery: RS256 offered, no contradictions ----------------------------------------------------


def contradictions(meta: dict[str, Any], jwks: dict[str, Any]) -> list[str]:
    """What a careful RP library would trip over in a discovery document (Discovery 1.0 §3, RFC 8414)."""
    found = []
    if meta.get("require_request_uri_registration") and not meta.get("request_uri_parameter_supported"):
        found.append("require_request_uri_registration without request_uri support")
    if not meta.get("request_parameter_supported") and "request_object_signing_alg_values_supported" in meta:
        found.append("request object algorithms without request object support")
    if "RS256" not in meta["id_token_signing_alg_values_supported"]:
        found.append("RS256 missing from id_token_signing_alg_values_supported (Discovery §3: MUST)")
    if "none" in meta["id_token_signing_alg_values_supported"]:
        found.append("unsigned ID tokens offered")
    kty = {"ES256": ("EC", "P-256"), "RS256": ("RSA", None), "PS256": ("RSA", None)}
    for alg in meta["id_token_signing_alg_values_supported"]:
        want = kty.get(alg)
        if want is None or not any(
            k["kty"] == want[0] and k.get("crv") == want[1] and k.get("use") == "sig" for k in jwks["keys"]
        ):
            found.append(f"{alg} offered but no signing key for it in the JWKS")
    if "code" in meta["response_types_supported"] and "authorization_code" not in meta["grant_types_supported"]:
        found.append("response type code without the authorization_code grant")
    methods = meta["token_endpoint_auth_methods_supported"]
    algs = meta.get("token_endpoint_auth_signing_alg_values_supported", [])
    if {"private_key_jwt", "client_secret_jwt"} & set(methods) and not algs:
        found.append("JWT client authentication without signing algorithms")
    if "none" in algs:
        found.append("token_endpoint_auth_signing_alg_values_supported must not list none")
    if not set(meta.get("response_modes_supported", ["query"])) <= {"query", "fragment"}:
        found.append("response modes beyond query/fragment")
    if "openid" not in meta["scopes_supported"]:
        found.append("scopes_supported without openid")
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        if not meta[name].startswith(meta["issuer"] + "/"):
            found.append(f"{name} outside the issuer")
    if meta.get("code_challenge_methods_supported") != ["S256"]:
        found.append("PKCE methods other than S256")
    return found


async def test_discovery_offers_client_secret_post_and_has_no_contradictions(provider: Provider) -> None:
    meta = await (await provider.client.get("/.well-known/openid-configuration")).json()
    jwks = await (await provider.client.get("/oidc/jwks")).json()
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    assert meta["id_token_signing_alg_values_supported"][0] == "ES256"  # still the preferred one
    assert meta["require_request_uri_registration"] is False
    assert contradictions(meta, jwks) == []


async def test_embedded_default_discovery_offers_rs256_without_contradictions(tmp_path: Path) -> None:
    """`eid-gateway init` as it is: its RSA key makes discovery offer RS256; the demo client keeps ES256."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    config = load_config(write_example_config(tmp_path, origin, port))
    assert config.oidc is not None and config.oidc.provider.rsa_signing_key is not None
    demo = config.oidc.client("demo-oidc")
    assert demo is not None and demo.id_token_signed_response_alg == "ES256"
    client = TestClient(TestServer(create_app(config), host="127.0.0.1", port=port))
    await client.start_server()
    try:
        resp = await client.get("/.well-known/openid-configuration")
        assert resp.status == 200
        meta = await resp.json()
        jwks = await (await client.get("/oidc/jwks")).json()
    finally:
        await client.close()
    assert meta["issuer"] == origin
    assert meta["id_token_signing_alg_values_supported"] == ["ES256", "PS256", "RS256"]
    assert "client_secret_post" in meta["token_endpoint_auth_methods_supported"]
    assert contradictions(meta, jwks) == []
    rsa_keys = [k for k in jwks["keys"] if k["kty"] == "RSA"]
    assert len(rsa_keys) == 1 and rsa_keys[0]["kid"] == "oidc-rsa-dev-1"
    assert len(base64.urlsafe_b64decode(rsa_keys[0]["n"] + "==")) * 8 == 3072


def test_contradictions_are_found() -> None:
    """The check above can fail: the discovery document as it was before issue 15."""
    meta = {
        "issuer": "https://gw.example",
        "authorization_endpoint": "https://gw.example/oidc/authorize",
        "token_endpoint": "https://gw.example/oidc/token",
        "userinfo_endpoint": "https://gw.example/oidc/userinfo",
        "jwks_uri": "https://gw.example/oidc/jwks",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "scopes_supported": ["openid"],
        "code_challenge_methods_supported": ["S256"],
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": True,
    }
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "use": "sig"}]}
    assert contradictions(meta, jwks) == [
        "require_request_uri_registration without request_uri support",
        "RS256 missing from id_token_signing_alg_values_supported (Discovery §3: MUST)",
    ]


# --- error_response_iss ----------------------------------------------------------------------------------


@pytest.mark.parametrize("params,sends_iss", [(LIBRARY, True), (LEGACY, False)], ids=["default", "switched-off"])
async def test_error_response_iss_after_cancel(provider: Provider, params: dict[str, str], sends_iss: bool) -> None:
    provider.flow.failure = FailureKind.CANCELLED
    status, location, _ = await authorize(provider, **params)
    q = query_of(location)
    assert status == 303 and location.startswith(params["redirect_uri"] + "?")
    assert (q["error"], q["state"]) == ("access_denied", params["state"]) and "code" not in q
    assert ("iss" in q) is sends_iss
    if sends_iss:
        assert q["iss"] == provider.issuer


@pytest.mark.parametrize("params,sends_iss", [(LIBRARY, True), (LEGACY, False)], ids=["default", "switched-off"])
async def test_error_response_iss_for_a_refused_request(
    provider: Provider, params: dict[str, str], sends_iss: bool
) -> None:
    status, location, _ = await authorize(provider, **{**params, "scope": "profile"})  # no openid
    q = query_of(location)
    assert status == 303 and (q["error"], q["state"]) == ("invalid_scope", params["state"])
    assert ("iss" in q) is sends_iss


async def test_error_response_iss_off_keeps_iss_on_success(provider: Provider) -> None:
    """Only errors lose ``iss``: mod_auth_openidc handles it beside a code, and the mix-up defence
    (RFC 9207) stays for every response that carries a code."""
    status, location, _ = await authorize(provider, **LEGACY)
    q = query_of(location)
    assert status == 303 and "code" in q and q["iss"] == provider.issuer
    status, body = await token_request(
        provider,
        {
            "grant_type": "authorization_code",
            "code": q["code"],
            "redirect_uri": LEGACY_CB,
        },
        auth=("legacy-rp", PORTAL_SECRET),
    )
    assert status == 200, body


def test_error_response_iss_must_be_a_boolean() -> None:
    raw = tomllib.loads(
        'client_id = "c"\nredirect_uris = ["https://a.example/cb"]\npublic_client = true\nerror_response_iss = "no"'
    )
    with pytest.raises(ConfigError, match=r"services\.oidc\.error_response_iss: must be true or false"):
        parse_client_settings("s", raw, Path("."))
    off = parse_client_settings("s", {**raw, "error_response_iss": False}, Path("."))
    assert off.error_response_iss is False
