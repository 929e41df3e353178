"""Authorization codes and the grants (access tokens) issued for them, kept in the shared Store.

* A code is stored under its SHA-256 only, for at most 60 s, and is taken atomically.
* ``consume_once`` on the code's hash is the single arbiter of "first redemption": a second
  redemption (RFC 6749 §4.1.2, RFC 9700 §4.2.1) revokes the grant, and because the revoker *creates*
  the grant record as revoked when the winner has not written it yet, there is no race in which a
  replay slips through.
* An access token is ``<grant id>.<secret>``: the grant id names the Store record, the record holds
  only the secret's hash, so a Store dump yields no usable tokens.
* Personal data leaves the Store when it is handed over: the code's record (ID token claims) is taken
  at the token request, the grant's claims (``sub`` and userinfo) at the first userinfo request, which
  uses the access token up; a revoked grant keeps none. Until then both are sealed under a key derived
  from the code / token secret (:mod:`.sealed`), so nothing on disk opens without the client's token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from eid_gateway.frontends.oidc.sealed import SealError, seal, unseal
from eid_gateway.store.base import FlowExists, Store

CODE_NAMESPACE = "oidc_code"
USED_NAMESPACE = "oidc_code_used"
JTI_NAMESPACE = "oidc_client_jti"
GRANT_PREFIX = "oidc-grant-"
ACTIVE, REVOKED, USED = "oidc_active", "oidc_revoked", "oidc_used"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CodeRecord:
    """What a code is bound to and what it will release."""

    client_id: str
    redirect_uri: str
    code_challenge: str | None
    nonce: str | None
    sub: str
    acr: str
    auth_time: int
    expires_at: float
    scope: str
    id_token_claims: Mapping[str, Any]
    userinfo_claims: Mapping[str, Any]

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CodeRecord:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Grant:
    """An active access token's record."""

    client_id: str
    sub: str
    scope: str
    userinfo_claims: Mapping[str, Any]
    expires_at: float


class GrantStore:
    """The OIDC provider's state over the gateway's :class:`Store` port."""

    def __init__(self, store: Store):
        self.store = store

    async def put_code(self, record: CodeRecord, lifetime: int) -> str:
        """A fresh code (256 random bits) bound to ``record``."""
        code = secrets.token_urlsafe(32)
        await self.store.put_value(CODE_NAMESPACE, _hash(code), seal(code, "code", record.to_json().encode()), lifetime)
        return code

    async def redeem_code(self, code: str, used_ttl: int) -> CodeRecord | None:
        """The code's record on its first redemption; on any later one ``None`` and the grant revoked."""
        key = _hash(code)
        if not await self.store.consume_once(USED_NAMESPACE, key, used_ttl):
            await self.revoke(key, used_ttl)
            return None
        raw = await self.store.take_value(CODE_NAMESPACE, key)
        if raw is None:
            return None
        try:
            return CodeRecord.from_json(unseal(code, "code", raw).decode("utf-8"))
        except SealError:
            return None

    async def revoke(self, code_key: str, ttl: int) -> None:
        """Mark the grant of a code revoked, whether or not it has been written yet."""
        ref = GRANT_PREFIX + code_key
        try:
            await self.store.create_flow(ref, REVOKED, {}, ttl)
        except FlowExists:
            await self.store.transition(ref, ACTIVE, REVOKED, {"token_hash": "", "sealed": None})

    async def issue_access_token(self, code: str, grant: Grant, lifetime: int) -> str | None:
        """The access token for a redeemed code; ``None`` when a replay revoked it meanwhile."""
        grant_id = _hash(code)
        token_secret = secrets.token_urlsafe(32)
        personal = {"sub": grant.sub, "userinfo_claims": dict(grant.userinfo_claims)}
        data = {
            "token_hash": _hash(token_secret),
            "client_id": grant.client_id,
            "scope": grant.scope,
            "expires_at": grant.expires_at,
            "sealed": seal(token_secret, "grant", json.dumps(personal, separators=(",", ":")).encode()),
        }
        try:
            await self.store.create_flow(GRANT_PREFIX + grant_id, ACTIVE, data, lifetime)
        except FlowExists:
            return None
        return f"{grant_id}.{token_secret}"

    async def take_grant(self, access_token: str, now: float) -> Grant | None:
        """The active grant an access token belongs to, handed out once: its claims leave the Store with
        this answer and the token is used up. ``None`` when unknown, expired, revoked or used."""
        grant_id, _, token_secret = access_token.partition(".")
        if len(grant_id) != 64 or not token_secret or len(access_token) > 200:
            return None
        record = await self.store.get_flow(GRANT_PREFIX + grant_id)
        if record is None or record.state != ACTIVE:
            return None
        data = record.data
        if not hmac.compare_digest(str(data.get("token_hash", "")), _hash(token_secret)):
            return None
        if float(data["expires_at"]) <= now:
            return None
        sealed = data.get("sealed")
        if not isinstance(sealed, str):  # a grant written before claims were sealed: nothing to hand out
            return None
        try:
            personal = json.loads(unseal(token_secret, "grant", sealed))
        except SealError:
            return None
        # The compare-and-set is the one use: of two concurrent requests with the token, one gets the claims.
        if await self.store.transition(record.ref, ACTIVE, USED, {"sealed": None, "token_hash": ""}) is None:
            return None
        return Grant(
            client_id=str(data["client_id"]),
            sub=str(personal["sub"]),
            scope=str(data["scope"]),
            userinfo_claims=dict(personal["userinfo_claims"]),
            expires_at=float(data["expires_at"]),
        )

    async def first_use_of_assertion(self, client_id: str, jti: str, ttl: float) -> bool:
        """Replay cache for private_key_jwt assertions (RFC 7523 §3 item 7)."""
        return await self.store.consume_once(JTI_NAMESPACE, _hash(client_id + "\0" + jti), max(ttl, 1.0))
