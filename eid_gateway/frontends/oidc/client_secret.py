"""Client secrets are stored only as scrypt hashes, so a leaked config file does not leak them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1


def new_client_secret() -> str:
    """A fresh secret (256 random bits) for ``eid-gateway client-secret`` to hand to the service operator."""
    return secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    """``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (base64url, no padding) for ``client_secret_hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(("scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)))


def verify_client_secret(secret: str, stored: str) -> bool:
    """Constant-time comparison against a stored hash; a malformed hash never verifies."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return False
    if not (2**10 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16 and len(expected) >= 16):
        return False
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected), maxmem=2**27)
    return hmac.compare_digest(digest, expected)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
