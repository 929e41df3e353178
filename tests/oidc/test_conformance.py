"""The offline-runnable checks of the OpenID Foundation conformance suite's Basic OP plan
(oidcc-basic-certification-test-plan, client_secret_basic, response_type=code) and its PKCE checks.

Each test is named after the suite's test module it re-enacts. Modules covered elsewhere:
oidcc-codereuse, oidcc-codereuse-30seconds, oidcc-ensure-registered-redirect-uri,
oidcc-redirect-uri-query-{added,mismatch}, oidcc-server-client-secret-post (refused: not offered)
and the PKCE negatives (verifier required, wrong verifier, plain refused) are in ``test_attacks.py``;
oidcc-redirect-uri-query-OK there too.

Not applicable by design: oidcc-prompt-none-logged-in and oidcc-id-token-hint with prompt=none (every
sign-in reads the ID card, there is no session to answer silently from), oidcc-refresh-token (no
refresh tokens are issued), oidcc-registration-* (no dynamic registration), request-object modules
(refused with request_not_supported / request_uri_not_supported, which the suite accepts).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from .conftest import PORTAL_CB, PORTAL_SECRET, Provider, authorize, pkce_pair, query_of, token_request

BASE = {"response_type": "code", "client_id": "portal-rp", "redirect_uri": PORTAL_CB, "scope": "openid"}


async def sign_in(provider: Provider, method: str = "GET", **params: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Authorization (GET or POST) + token request; returns (token response, verified ID token claims)."""
    args = {**BASE, "state": "conf-state", "nonce": "conf-nonce", **params}
    args = {k: v for k, v in args.items() if v != ""}
    if method == "POST":
        resp = await provider.client.post("/oidc/authorize", data=args, allow_redirects=False)
        location = resp.headers.get("Location", "")
    else:
        _, location, _ = await authorize(provider, **args)
    q = query_of(location)
    assert "code" in q, q
    assert q.get("state") == args.get("state") and q["iss"] == provider.issuer
    form = {"grant_type": "authorization_code", "code": q["code"], "redirect_uri": PORTAL_CB}
    if "code_verifier" in params:
        form["code_verifier"] = params["code_verifier"]
    status, body = await token_request(provider, form)
    assert status == 200, body
    keys = KeySet.import_key_set(await (await provider.client.get("/oidc/jwks")).json())
    claims = jwt.decode(body["id_token"], keys, algorithms=["ES256"]).claims
    return body, claims


async def userinfo(provider: Provider, access_token: str, how: str = "get") -> dict[str, Any]:
    if how == "get":
        resp = await provider.client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    elif how == "post-header":
        resp = await provider.client.post("/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    else:
        resp = await provider.client.post("/oidc/userinfo", data={"access_token": access_token})
    assert resp.status == 200
    return dict(await resp.json())


async def redirect_error(provider: Provider, **params: str) -> dict[str, str]:
    args = {**BASE, "state": "err-state", **params}
    status, location, _ = await authorize(provider, **{k: v for k, v in args.items() if v != ""})
    assert status == 303 and location.startswith(PORTAL_CB + "?"), location
    q = query_of(location)
    assert q["state"] == "err-state" and q["iss"] == provider.issuer and "code" not in q
    return q


async def test_oidcc_server(provider: Provider) -> None:
    body, claims = await sign_in(provider)
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    now = time.time()
    assert claims["iss"] == provider.issuer and claims["aud"] == "portal-rp"
    assert claims["sub"] and claims["nonce"] == "conf-nonce"
    assert claims["iat"] <= now + 5 and claims["exp"] > now


async def test_oidcc_discovery_endpoint_verification(provider: Provider) -> None:
    resp = await provider.client.get("/.well-known/openid-configuration")
    assert resp.status == 200 and resp.content_type == "application/json"
    meta = await resp.json()
    for name in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ):
        assert name in meta, name
    assert meta["issuer"] == provider.issuer
    assert "RS256" in meta["id_token_signing_alg_values_supported"]  # Discovery §3 (with [oidc.rsa_signing_key])
    assert "openid" in meta["scopes_supported"]
    assert all(
        meta[k].startswith(provider.issuer)
        for k in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    )
    jwks = await (await provider.client.get("/oidc/jwks")).json()
    assert all("kid" in k and k["use"] == "sig" for k in jwks["keys"])


async def test_oidcc_response_type_missing(provider: Provider) -> None:
    q = await redirect_error(provider, response_type="")
    assert q["error"] == "invalid_request"


async def test_unsupported_response_type(provider: Provider) -> None:
    for response_type in ("token", "id_token", "code id_token"):
        q = await redirect_error(provider, response_type=response_type)
        assert q["error"] == "unsupported_response_type"


@pytest.mark.parametrize("how", ["get", "post-header", "post-body"])
async def test_oidcc_userinfo(provider: Provider, how: str) -> None:
    body, claims = await sign_in(provider, scope="openid profile")
    info = await userinfo(provider, body["access_token"], how)
    assert info["sub"] == claims["sub"] and info["family_name"] == "MUSTERMANN"


async def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(provider: Provider) -> None:
    _, claims = await sign_in(provider, nonce="")
    assert "nonce" not in claims


async def test_oidcc_scope_profile_address_and_unsupported_email_phone(provider: Provider) -> None:
    body, _ = await sign_in(provider, scope="openid profile")
    assert set(await userinfo(provider, body["access_token"])) == {"sub", "given_name", "family_name", "birthdate"}
    body, _ = await sign_in(provider, scope="openid address")
    info = await userinfo(provider, body["access_token"])
    assert info["address"] == {
        "street_address": "HEIDESTRASSE 17",
        "locality": "KÖLN",
        "postal_code": "51147",
        "country": "D",
    }
    body, _ = await sign_in(provider, scope="openid email phone")  # the card holds neither: ignored
    assert set(await userinfo(provider, body["access_token"])) == {"sub"}
    body, _ = await sign_in(provider, scope="openid profile email address phone")  # oidcc-scope-all
    assert {"given_name", "address"} <= set(await userinfo(provider, body["access_token"]))


async def test_oidcc_ensure_other_scope_order_succeeds(provider: Provider) -> None:
    body, _ = await sign_in(provider, scope="profile openid")
    assert "given_name" in await userinfo(provider, body["access_token"])


@pytest.mark.parametrize(
    "params",
    [
        {"display": "page"},
        {"display": "popup"},
        {"prompt": "login"},
        {"max_age": "1"},
        {"max_age": "10000"},
        {"login_hint": "erika@example.de"},
        {"ui_locales": "en"},
        {"claims_locales": "de"},
        {"acr_values": "http://eidas.europa.eu/LoA/high"},
        {"id_token_hint": "eyJ.eyJ.x"},
        {"unknown_parameter": "value"},
    ],
)
async def test_accepted_request_parameters(provider: Provider, params: dict[str, str]) -> None:
    """oidcc-display-*, -prompt-login, -max-age-*, -login-hint, -ui-locales, -claims-locales,
    -ensure-request-with-acr-values-succeeds, -ensure-request-with-unknown-parameter-succeeds."""
    _, claims = await sign_in(provider, **params)
    assert isinstance(claims["auth_time"], int)  # required with max_age; always present
    assert claims["acr"] == "http://eidas.europa.eu/LoA/high"


async def test_oidcc_prompt_none_not_logged_in(provider: Provider) -> None:
    q = await redirect_error(provider, prompt="none")
    assert q["error"] == "login_required"
    assert provider.flow.begun == []


async def test_oidcc_unsigned_request_object_rejected_as_unsupported(provider: Provider) -> None:
    assert (await redirect_error(provider, request="eyJhbGciOiJub25lIn0.e30."))["error"] == "request_not_supported"
    q = await redirect_error(provider, request_uri="https://rp.example/req")
    assert q["error"] == "request_uri_not_supported"


async def test_oidcc_claims_essential(provider: Provider) -> None:
    body, claims = await sign_in(provider, claims='{"userinfo": {"family_name": {"essential": true}}}')
    assert (await userinfo(provider, body["access_token"]))["family_name"] == "MUSTERMANN"
    _, _, eid_request = provider.flow.begun[-1]
    assert {a.value for a in eid_request.required} >= {"family_names"}


async def test_claims_parameter_id_token_member(provider: Provider) -> None:
    _, claims = await sign_in(provider, claims='{"id_token": {"birthdate": null}}')
    assert claims["birthdate"] == "1964-08-12"


async def test_malformed_claims_parameter(provider: Provider) -> None:
    for bad in ("not json", "[1]", '{"userinfo": []}', '{"id_token": {"given_name": 5}}'):
        assert (await redirect_error(provider, claims=bad))["error"] == "invalid_request"


async def test_oidcc_ensure_post_request_succeeds(provider: Provider) -> None:
    _, claims = await sign_in(provider, method="POST")
    assert claims["aud"] == "portal-rp"


async def test_oidcc_ensure_request_with_valid_pkce_succeeds(provider: Provider) -> None:
    verifier, challenge = pkce_pair()
    body, _ = await sign_in(provider, code_challenge=challenge, code_challenge_method="S256", code_verifier=verifier)
    assert body["access_token"]


async def test_missing_openid_scope_is_invalid_scope(provider: Provider) -> None:
    assert (await redirect_error(provider, scope="profile"))["error"] == "invalid_scope"


async def test_duplicate_parameter_is_invalid_request(provider: Provider) -> None:
    resp = await provider.client.get(
        "/oidc/authorize?response_type=code&client_id=portal-rp&redirect_uri="
        + PORTAL_CB
        + "&scope=openid&state=err-state&scope=openid%20profile",
        allow_redirects=False,
    )
    q = query_of(resp.headers["Location"])
    assert q["error"] == "invalid_request"


async def test_refresh_token_grant_is_unsupported(provider: Provider) -> None:
    status, body = await token_request(provider, {"grant_type": "refresh_token", "refresh_token": "x"})
    assert (status, body["error"]) == (400, "unsupported_grant_type")


async def test_token_endpoint_responses_are_not_cached(provider: Provider) -> None:
    args = {**BASE, "state": "s"}
    _, location, _ = await authorize(provider, **args)
    resp = await provider.client.post(
        "/oidc/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": PORTAL_CB,
        },
        headers={"Authorization": "Basic " + base64.b64encode(f"portal-rp:{PORTAL_SECRET}".encode()).decode()},
    )
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Pragma"] == "no-cache"
    resp = await provider.client.post("/oidc/token", json={"grant_type": "authorization_code"})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"
