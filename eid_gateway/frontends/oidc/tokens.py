"""JOSE for the provider: ID tokens out, client assertions in, PKCE in between — all via joserfc.

The algorithm is never taken from a token: ID tokens are signed with the one ``alg`` fixed in the
client's registration, and client assertions are verified with an allowlist of asymmetric algorithms
against the client's registered public keys, so ``alg: none`` and HMAC-keyed-with-a-public-key
forgeries fail by construction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from eid_gateway.frontends.oidc.keys import ProviderKeys

#: Client assertion algorithms: asymmetric only (never HS*, never none).
CLIENT_ASSERTION_ALGS = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256")
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1
CLOCK_SKEW = 30


class ClientAssertionError(Exception):
    """A private_key_jwt assertion is malformed, forged, expired or aimed elsewhere."""


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) == challenge; a malformed verifier never matches."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)


def access_token_hash(access_token: str) -> str:
    """``at_hash`` (OIDC Core §3.1.3.6) for the SHA-256 based algorithms the provider signs with."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def sign_id_token(keys: ProviderKeys, alg: str, claims: Mapping[str, Any]) -> str:
    """Compact JWS with the provider key for ``alg`` (fixed per client registration)."""
    key = keys.for_alg(alg)
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, dict(claims), key, algorithms=[alg])


@dataclass(frozen=True)
class ClientAssertion:
    """The checked parts of a client assertion the replay cache needs."""

    jti: str
    expires_at: int


def verify_client_assertion(
    assertion: str,
    keys: KeySet,
    client_id: str,
    audiences: tuple[str, ...],
    now: int,
    max_lifetime: int,
) -> ClientAssertion:
    """RFC 7523 §3 / OIDC Core §9: signature by a registered key, iss = sub = client_id, our ``aud``,
    unexpired, not issued for longer than ``max_lifetime``, with a ``jti`` for the replay cache."""
    try:
        token = jwt.decode(assertion, keys, algorithms=list(CLIENT_ASSERTION_ALGS))
    except (JoseError, ValueError) as e:
        raise ClientAssertionError(f"client assertion rejected: {type(e).__name__}") from None
    claims = token.claims
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise ClientAssertionError("client assertion iss and sub must be the client_id")
    aud = claims.get("aud")
    aud_list = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(a in audiences for a in aud_list):
        raise ClientAssertionError("client assertion aud is not this provider's token endpoint or issuer")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp + CLOCK_SKEW < now:
        raise ClientAssertionError("client assertion expired or without exp")
    if exp > now + max_lifetime + CLOCK_SKEW:
        raise ClientAssertionError("client assertion lives too long")
    for name in ("iat", "nbf"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, int) or value > now + CLOCK_SKEW):
            raise ClientAssertionError(f"client assertion {name} is in the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise ClientAssertionError("client assertion jti missing")
    return ClientAssertion(jti=jti, expires_at=exp)
