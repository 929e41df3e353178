"""Personal data kept for an OIDC client, sealed with a key only that client holds.

Between the card step and the client's token / userinfo request the released claims wait in the
shared Store. They are encrypted (AES-256-GCM) under a key derived (HKDF-SHA256) from the code or the
access token's secret, which the Store never holds: it keeps only their SHA-256 as the record's name
and for the comparison. What reaches the disk (SQLite file and WAL, Redis RDB/AOF, a backup) is
ciphertext whose key left with the client's answer; the record itself is deleted at hand-over.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


class SealError(Exception):
    """The sealed value is malformed or does not open with this secret (wrong token, tampering)."""


def _key(secret: str, purpose: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"eid-gateway oidc " + purpose.encode())
    return AESGCM(hkdf.derive(secret.encode("utf-8")))


def seal(secret: str, purpose: str, plaintext: bytes) -> str:
    """``plaintext`` encrypted under a key derived from ``secret`` (a code or token secret, ≥ 128 bits)."""
    nonce = os.urandom(_NONCE)
    sealed = nonce + _key(secret, purpose).encrypt(nonce, plaintext, purpose.encode())
    return base64.urlsafe_b64encode(sealed).decode("ascii")


def unseal(secret: str, purpose: str, value: str) -> bytes:
    """The plaintext of :func:`seal`; :class:`SealError` unless ``secret`` and ``purpose`` match."""
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SealError("sealed value is not base64url") from None
    if len(raw) < _NONCE + 16:
        raise SealError("sealed value too short")
    try:
        return _key(secret, purpose).decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode())
    except InvalidTag:
        raise SealError("sealed value does not open with this secret") from None
