"""Client secrets are stored only as scrypt hashes (:mod:`eid_gateway.secret_hash`), so a leaked config
file does not leak them."""

from __future__ import annotations

import secrets
from typing import Final

from eid_gateway.secret_hash import hash_secret, verify_secret

#: A client secret is 256 random bits (nothing to guess from a dictionary) and is checked on every token
#: request, so the cheapest accepted cost.
CLIENT_SECRET_N: Final = 2**14


def new_client_secret() -> str:
    """A fresh secret (256 random bits) for ``eid-gateway client-secret`` to hand to the service operator."""
    return secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    """``scrypt$<n>$<r>$<p>$<salt>$<hash>`` for ``client_secret_hash``."""
    return hash_secret(secret, n=CLIENT_SECRET_N)


def verify_client_secret(secret: str, stored: str) -> bool:
    """Constant-time comparison against a stored hash; a malformed hash never verifies."""
    return verify_secret(secret, stored)
