"""Secrets that are presented to the gateway (staff passwords, OIDC client secrets) are stored only as
scrypt hashes, so a leaked config file does not leak them.

One format: ``scrypt$<N>$<r>$<p>$<salt>$<hash>`` (salt and hash base64url without padding). The cost is
part of the stored string, so a hash made with another cost (client secrets used N=2^14, staff
passwords N=2^15) verifies as it is, and raising the cost for new hashes leaves old ones valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "scrypt$"
#: Below N=2^14 a hash is too cheap to guess against.
MIN_N: Final = 2**14
#: scrypt needs 128 * N * r bytes: a check may take at most 64 MiB (N=2^16 at r=8), so that a few at
#: once cannot exhaust the machine (and hashlib's memory limit below is never what refuses a check).
MAX_MEMORY: Final = 2**26
_R, _P = 8, 1


class HashFormatError(ValueError):
    """A stored hash is not in the format above, or its parameters are too weak or out of range (the
    message is a predicate: "<what> " + message reads as a sentence)."""


@dataclass(frozen=True)
class ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, h: ScryptHash, dklen: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=h.salt, n=h.n, r=h.r, p=h.p, maxmem=2 * MAX_MEMORY, dklen=dklen)


def hash_secret(secret: str, *, n: int, r: int = _R, p: int = _P) -> str:
    """The stored form of ``secret`` with a fresh 16-byte salt at cost ``n`` (a power of two, 2^14..2^16)."""
    params = ScryptHash(n, r, p, secrets.token_bytes(16), b"")
    _check(params, salt_length=16, digest_length=32)
    digest = _scrypt(secret, params, 32)
    return PREFIX + "$".join((str(n), str(r), str(p), _b64(params.salt), _b64(digest)))


def _check(h: ScryptHash, *, salt_length: int, digest_length: int) -> None:
    if h.n < MIN_N or h.n & (h.n - 1) or not 1 <= h.r <= 32 or not 1 <= h.p <= 16:
        raise HashFormatError("parameters are too weak or invalid (N a power of two, at least 2^14)")
    if 128 * h.n * h.r > MAX_MEMORY:
        raise HashFormatError("parameters ask for more than 64 MiB (128 * N * r)")
    if salt_length < 16 or digest_length < 32:
        raise HashFormatError("salt or hash too short (at least 16 and 32 bytes): too weak")


def parse_hash(stored: str) -> ScryptHash:
    """The parameters of a stored hash; :class:`HashFormatError` unless it is one we accept."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] + "$" != PREFIX:
        raise HashFormatError("must be scrypt$N$r$p$salt$hash")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        raise HashFormatError("has malformed fields") from None
    parsed = ScryptHash(n, r, p, salt, digest)
    _check(parsed, salt_length=len(salt), digest_length=len(digest))
    return parsed


def verify_secret(secret: str, stored: str) -> bool:
    """Recompute scrypt with the stored parameters and compare in constant time. Slow on purpose (tens of
    milliseconds): run it off the event loop where it can be flooded. A malformed hash never verifies."""
    try:
        parsed = parse_hash(stored)
    except HashFormatError:
        return False
    return hmac.compare_digest(_scrypt(secret, parsed, len(parsed.digest)), parsed.digest)
