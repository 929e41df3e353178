"""Personal data in the OIDC provider's state (issue 13, item 2): sealed while it waits for the client,
gone from the Store once handed over (code at the token request, claims at the first userinfo
request), and never kept by a revoked grant."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from eid_gateway.frontends.oidc.grants import ACTIVE, CODE_NAMESPACE, GRANT_PREFIX, REVOKED, USED
from eid_gateway.frontends.oidc.sealed import SealError, seal, unseal

from .conftest import PORTAL_CB, Provider, code_for, token_request

PERSONAL = [b"MUSTERMANN", b"ERIKA", b"1964-08-12", b"HEIDESTRASSE"]


def _key(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def store_bytes(tmp_path: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(tmp_path.glob("store.sqlite3*")))


async def test_claims_wait_sealed_and_leave_at_hand_over(provider: Provider, tmp_path: Path) -> None:
    code = await code_for(provider, scope="openid profile address")
    sealed_code = await provider.store.get_value(CODE_NAMESPACE, _key(code))
    assert sealed_code is not None and not any(p.decode() in sealed_code for p in PERSONAL)
    assert not [p for p in PERSONAL if p in store_bytes(tmp_path)]

    status, body = await token_request(
        provider, {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB}
    )
    assert status == 200
    assert await provider.store.get_value(CODE_NAMESPACE, _key(code)) is None  # taken with the answer
    grant = await provider.store.get_flow(GRANT_PREFIX + _key(code))
    assert grant is not None and grant.state == ACTIVE and "sealed" in grant.data
    assert "userinfo_claims" not in grant.data and "sub" not in grant.data

    headers = {"Authorization": f"Bearer {body['access_token']}"}
    first = await provider.client.get("/oidc/userinfo", headers=headers)
    assert first.status == 200 and (await first.json())["family_name"] == "MUSTERMANN"
    grant = await provider.store.get_flow(GRANT_PREFIX + _key(code))
    assert grant is not None and grant.state == USED and "sealed" not in grant.data
    # the token is used up: the claims are not in the Store any more to be handed out again
    again = await provider.client.get("/oidc/userinfo", headers=headers)
    assert again.status == 401 and "invalid_token" in again.headers["WWW-Authenticate"]
    assert not [p for p in PERSONAL if p in store_bytes(tmp_path)]


async def test_a_revoked_grant_keeps_no_claims(provider: Provider) -> None:
    code = await code_for(provider)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB}
    assert (await token_request(provider, form))[0] == 200
    assert (await token_request(provider, form))[0] == 400  # replay: the grant is revoked
    grant = await provider.store.get_flow(GRANT_PREFIX + _key(code))
    assert grant is not None and grant.state == REVOKED
    assert set(grant.data) <= {"client_id", "scope", "expires_at", "token_hash"} and grant.data["token_hash"] == ""


def test_sealed_values_open_only_with_their_secret_and_purpose() -> None:
    sealed = seal("code-secret", "code", b'{"family_name":"MUSTERMANN"}')
    assert b"MUSTERMANN" not in sealed.encode()
    assert unseal("code-secret", "code", sealed) == b'{"family_name":"MUSTERMANN"}'
    for secret, purpose, value in [
        ("other", "code", sealed),
        ("code-secret", "grant", sealed),
        ("code-secret", "code", sealed[:-4] + "AAAA"),
        ("code-secret", "code", "%%"),
        ("code-secret", "code", ""),
    ]:
        with pytest.raises(SealError):
            unseal(secret, purpose, value)
