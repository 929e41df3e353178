"""Each test names the attack or mistake it stops (SECURITY.md, OpenID Connect part)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import pytest
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidClaimError, JoseError
from joserfc.jwk import ECKey, KeySet
from joserfc.jws import JWSRegistry

from eid_gateway.core.port import FailureKind

from .conftest import (
    PORTAL_CB,
    PORTAL_CB_QUERY,
    PORTAL_SECRET,
    TAX_CB,
    YOUTH_CB,
    Provider,
    authorize,
    code_for,
    pkce_pair,
    query_of,
    token_request,
)

PORTAL = {"response_type": "code", "client_id": "portal-rp", "redirect_uri": PORTAL_CB, "scope": "openid profile"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None = None) -> str:
    """An attacker's JWS, made by hand on purpose (no library would make these)."""
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    sig = b"" if hmac_key is None else hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(sig)


async def userinfo_status(provider: Provider, access_token: str) -> int:
    resp = await provider.client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    return resp.status


# --- redirect_uri: exact match, errors shown, never redirected -------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://attacker.example/cb",
        PORTAL_CB + "/",  # path extension
        PORTAL_CB + "?x=1",  # query added (oidcc-redirect-uri-query-added)
        "https://portal.example/cb?tenant=bonn",  # query changed (oidcc-redirect-uri-query-mismatch)
        "http://LOCALHOST:8765/cb",  # case variant
        "http://localhost:8765/cb#frag",
    ],
)
async def test_unregistered_redirect_uri_shows_page_and_never_redirects(provider: Provider, redirect_uri: str) -> None:
    status, location, body = await authorize(provider, **{**PORTAL, "redirect_uri": redirect_uri})
    assert status == 400 and location == ""
    assert "nicht registriert" in body
    assert "attacker" not in body and redirect_uri not in body  # nothing reflected


async def test_registered_redirect_uri_with_query_keeps_its_query(provider: Provider) -> None:
    status, location, _ = await authorize(provider, **{**PORTAL, "redirect_uri": PORTAL_CB_QUERY, "state": "s"})
    assert status == 303
    assert location.startswith(PORTAL_CB_QUERY + "&code=")
    assert query_of(location)["tenant"] == "köln"


async def test_unknown_client_page_in_english_on_request(provider: Provider) -> None:
    status, location, body = await authorize(provider, **{**PORTAL, "client_id": "nobody", "ui_locales": "en"})
    assert (status, location) == (400, "")
    assert "not registered with this gateway" in body and 'lang="en"' in body
    resp = await provider.client.get(
        "/oidc/authorize",
        params={"redirect_uri": PORTAL_CB},
        headers={"Accept-Language": "en-GB,en;q=0.8"},
        allow_redirects=False,
    )
    assert resp.status == 400 and "client_id is missing" in await resp.text()


async def test_missing_redirect_uri_is_a_page(provider: Provider) -> None:
    params = {k: v for k, v in PORTAL.items() if k != "redirect_uri"}
    status, location, body = await authorize(provider, **params)
    assert (status, location) == (400, "") and "redirect_uri" in body


# --- PKCE -----------------------------------------------------------------------------------------------


async def test_public_client_without_pkce_gets_redirect_error_with_iss(provider: Provider) -> None:
    status, location, _ = await authorize(
        provider, response_type="code", client_id="youth-app", redirect_uri=YOUTH_CB, scope="openid", state="abc"
    )
    q = query_of(location)
    assert status == 303 and location.startswith(YOUTH_CB + "?")
    assert q["error"] == "invalid_request" and q["state"] == "abc" and q["iss"] == provider.issuer
    assert provider.flow.begun == []  # the citizen was never sent to the card step


@pytest.mark.parametrize(
    "extra",
    [
        {"code_challenge": "x" * 43, "code_challenge_method": "plain"},
        {"code_challenge": "x" * 43},  # method defaults to plain: refused
        {"code_challenge": "short", "code_challenge_method": "S256"},
        {"code_challenge_method": "S256"},  # method without challenge
    ],
)
async def test_pkce_other_than_s256_is_refused(provider: Provider, extra: dict[str, str]) -> None:
    _, location, _ = await authorize(provider, **PORTAL, **extra)
    assert query_of(location)["error"] == "invalid_request"


async def test_pkce_wrong_or_missing_verifier_fails_and_burns_code(provider: Provider) -> None:
    verifier, challenge = pkce_pair()
    for bad in ({}, {"code_verifier": pkce_pair()[0]}, {"code_verifier": "tooshort"}):
        code = await code_for(provider, code_challenge=challenge, code_challenge_method="S256")
        status, body = await token_request(
            provider, {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB, **bad}
        )
        assert (status, body["error"]) == (400, "invalid_grant")
        # the failed attempt used the code up: the right verifier does not help any more
        status, body = await token_request(
            provider,
            {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB, "code_verifier": verifier},
        )
        assert body["error"] == "invalid_grant"


async def test_verifier_without_challenge_is_refused(provider: Provider) -> None:
    """PKCE downgrade: a verifier for a code that was issued without a challenge."""
    code = await code_for(provider)
    status, body = await token_request(
        provider,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB, "code_verifier": pkce_pair()[0]},
    )
    assert body["error"] == "invalid_grant"


# --- codes ----------------------------------------------------------------------------------------------


async def test_reused_code_fails_and_revokes_the_access_token(provider: Provider) -> None:
    code = await code_for(provider)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB}
    status, first = await token_request(provider, form)
    assert status == 200
    status, second = await token_request(provider, form)
    assert (status, second["error"]) == (400, "invalid_grant")
    assert await userinfo_status(provider, first["access_token"]) == 401  # unused, but revoked


async def test_code_reuse_30_seconds_later_still_revokes(provider: Provider) -> None:
    code = await code_for(provider)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB}
    _, first = await token_request(provider, form)
    provider.clock.advance(30)
    status, second = await token_request(provider, form)
    assert second["error"] == "invalid_grant"
    assert await userinfo_status(provider, first["access_token"]) == 401


async def test_expired_code_is_refused(provider: Provider) -> None:
    code = await code_for(provider)
    provider.clock.advance(61)
    status, body = await token_request(
        provider, {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB}
    )
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_code_is_bound_to_redirect_uri_and_client(provider: Provider, tax_client_key: ECKey) -> None:
    code = await code_for(provider)
    status, body = await token_request(
        provider, {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB_QUERY}
    )
    assert body["error"] == "invalid_grant"
    # a code stolen from the portal, redeemed by another (properly authenticated) client
    code = await code_for(provider)
    assertion = jwt.encode(
        {"alg": "ES256", "kid": "tax-1"}, _assertion_claims(provider), tax_client_key, algorithms=["ES256"]
    )
    status, body = await token_request(
        provider,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": PORTAL_CB,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        auth=None,
    )
    assert (status, body["error"]) == (400, "invalid_grant")


# --- client authentication ------------------------------------------------------------------------------


async def test_wrong_client_secret_is_invalid_client(provider: Provider) -> None:
    code = await code_for(provider)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB}
    resp = await provider.client.post(
        "/oidc/token",
        data=form,
        auth=None,
        headers={"Authorization": "Basic " + base64.b64encode(b"portal-rp:wrong-secret").decode()},
    )
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    assert (await resp.json())["error"] == "invalid_client"
    assert resp.headers["Cache-Control"] == "no-store"
    # the code was not spent by the failed authentication
    status, _ = await token_request(provider, form)
    assert status == 200


@pytest.mark.parametrize(
    "form_extra,auth",
    [
        ({"client_id": "portal-rp"}, None),  # confidential client, no auth
        ({"client_id": "portal-rp", "client_secret": PORTAL_SECRET}, None),  # client_secret_post: not allowed
        ({}, ("nobody", PORTAL_SECRET)),
        ({}, ("youth-app", "")),  # public client pretending
    ],
)
async def test_client_authentication_failures(
    provider: Provider, form_extra: dict[str, str], auth: tuple[str, str] | None
) -> None:
    code = await code_for(provider)
    status, body = await token_request(
        provider,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB, **form_extra},
        auth=auth,
    )
    assert (status, body["error"]) == (401, "invalid_client")


def _assertion_claims(provider: Provider, **override: Any) -> dict[str, Any]:
    now = int(provider.clock())
    claims = {
        "iss": "tax-rp",
        "sub": "tax-rp",
        "aud": provider.url("/oidc/token"),
        "exp": now + 60,
        "iat": now,
        "jti": f"jti-{time.monotonic_ns()}",
    }
    claims.update(override)
    return claims


async def _tax_token(provider: Provider, assertion: str) -> tuple[int, dict[str, Any]]:
    verifier, challenge = pkce_pair()
    code = await code_for(
        provider, client_id="tax-rp", redirect_uri=TAX_CB, code_challenge=challenge, code_challenge_method="S256"
    )
    return await token_request(
        provider,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": TAX_CB,
            "code_verifier": verifier,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        auth=None,
    )


async def test_client_assertion_replay_is_refused(provider: Provider, tax_client_key: ECKey) -> None:
    assertion = jwt.encode(
        {"alg": "ES256", "kid": "tax-1"}, _assertion_claims(provider), tax_client_key, algorithms=["ES256"]
    )
    status, _ = await _tax_token(provider, assertion)
    assert status == 200
    status, body = await _tax_token(provider, assertion)
    assert (status, body["error"]) == (401, "invalid_client")


@pytest.mark.parametrize(
    "override",
    [
        {"aud": "https://other-op.example/token"},
        {"iss": "portal-rp"},
        {"exp": 1},
        {"jti": None},
    ],
)
async def test_client_assertion_claims_are_checked(
    provider: Provider, tax_client_key: ECKey, override: dict[str, Any]
) -> None:
    claims = {k: v for k, v in _assertion_claims(provider, **override).items() if v is not None}
    assertion = jwt.encode({"alg": "ES256"}, claims, tax_client_key, algorithms=["ES256"])
    status, body = await _tax_token(provider, assertion)
    assert (status, body["error"]) == (401, "invalid_client")


async def test_client_assertion_alg_none_and_hmac_with_public_key_are_refused(
    provider: Provider, tax_client_key: ECKey
) -> None:
    claims = _assertion_claims(provider)
    none_token = forge({"alg": "none", "typ": "JWT"}, claims)
    public_pem = tax_client_key.as_pem(private=False)
    public_jwk = json.dumps(tax_client_key.as_dict(private=False)).encode()
    for token in (
        none_token,
        forge({"alg": "HS256", "kid": "tax-1"}, _assertion_claims(provider), public_pem),
        forge({"alg": "HS256", "kid": "tax-1"}, _assertion_claims(provider), public_jwk),
    ):
        status, body = await _tax_token(provider, token)
        assert (status, body["error"]) == (401, "invalid_client")


# --- the relying party's side: forged ID tokens fail validation against the JWKS ------------------------


async def _issued(provider: Provider) -> dict[str, Any]:
    code = await code_for(provider, nonce="n-1")
    _, body = await token_request(
        provider, {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB}
    )
    return body


async def _rp_keys(provider: Provider) -> tuple[KeySet, list[str]]:
    meta = await (await provider.client.get("/.well-known/openid-configuration")).json()
    jwks = await (await provider.client.get("/oidc/jwks")).json()
    return KeySet.import_key_set(jwks), meta["id_token_signing_alg_values_supported"]


async def test_rp_refuses_id_token_with_alg_none_or_hmac_over_the_jwks(provider: Provider) -> None:
    body = await _issued(provider)
    keys, algs = await _rp_keys(provider)
    genuine = jwt.decode(body["id_token"], keys, algorithms=algs)
    evil = dict(genuine.claims, sub="someone-else")
    jwks_text = await (await provider.client.get("/oidc/jwks")).read()
    current = next(k for k in keys.keys if k.kid == "es-current")
    assert isinstance(current, ECKey)
    forgeries = [
        forge({"alg": "none", "typ": "JWT"}, evil),
        forge({"alg": "HS256", "kid": "es-current"}, evil, current.as_pem(private=False)),
        forge({"alg": "HS256", "kid": "es-current"}, evil, jwks_text),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for token in forgeries:
            with pytest.raises(JoseError):
                jwt.decode(token, keys, registry=JWSRegistry(algorithms=algs))


async def test_rp_detects_nonce_mismatch(provider: Provider) -> None:
    body = await _issued(provider)
    keys, algs = await _rp_keys(provider)
    decoded = jwt.decode(body["id_token"], keys, algorithms=algs)
    assert decoded.claims["nonce"] == "n-1"
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        None,
        {"nonce": "n-other", "client_id": "portal-rp", "access_token": body["access_token"]},
    )
    with pytest.raises(InvalidClaimError):
        claims.validate(leeway=5)


# --- data minimisation ----------------------------------------------------------------------------------


async def test_claims_beyond_registration_are_not_released(provider: Provider) -> None:
    """The tax office may have names only; it asks for address and birthdate in every way there is."""
    verifier, challenge = pkce_pair()
    claims = json.dumps(
        {
            "id_token": {"address": {"essential": True}, "birthdate": None},
            "userinfo": {"address": None, "nationalities": {"essential": True}, "family_name": None},
        }
    )
    status, location, _ = await authorize(
        provider,
        response_type="code",
        client_id="tax-rp",
        redirect_uri=TAX_CB,
        scope="openid address profile",
        claims=claims,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert status == 303
    _, _, eid_request = provider.flow.begun[-1]
    asked = {a.value for a in eid_request.required | eid_request.optional}
    assert asked == {"family_names", "given_names", "pseudonym"}


async def test_failed_card_step_is_access_denied_with_iss(provider: Provider) -> None:
    provider.flow.failure = FailureKind.CANCELLED
    status, location, _ = await authorize(provider, **PORTAL, state="xyz")
    q = query_of(location)
    assert status == 303 and location.startswith(PORTAL_CB + "?")
    assert (q["error"], q["state"], q["iss"]) == ("access_denied", "xyz", provider.issuer)
    assert "code" not in q


async def test_expired_access_token_is_refused(provider: Provider) -> None:
    body = await _issued(provider)
    assert await userinfo_status(provider, body["access_token"]) == 200
    provider.clock.advance(301)
    assert await userinfo_status(provider, body["access_token"]) == 401
    resp = await provider.client.get("/oidc/userinfo")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = await provider.client.get("/oidc/userinfo", headers={"Authorization": "Bearer x.y"})
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


async def test_access_token_is_not_usable_with_tampered_secret(provider: Provider) -> None:
    body = await _issued(provider)
    grant_id, _, secret = body["access_token"].partition(".")
    assert await userinfo_status(provider, grant_id + "." + secret[::-1]) == 401
    assert await userinfo_status(provider, grant_id + "." + secret) == 200
