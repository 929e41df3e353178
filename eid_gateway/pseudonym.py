"""Per-service pseudonyms derived from the card's RestrictedID.

The RestrictedID is the same for every service behind this gateway (it is bound to the gateway's
authorization certificate), so handing it out would let services link their users. Each service gets
HMAC-SHA256(secret, service id, RestrictedID) instead: stable for one citizen at one service, unlinkable
between services without the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_HEX = re.compile(r"[0-9a-fA-F]+")


class PseudonymError(ValueError):
    """The RestrictedID is not hex, or the secret is too short."""


def _field(data: bytes) -> bytes:
    """Length-prefixed, so that ("ab", "c") and ("a", "bc") never collide."""
    return len(data).to_bytes(4, "big") + data


def derive_pseudonym(secret: bytes, service_id: str, restricted_id: str) -> str:
    """52 lowercase base32 characters (256 bits), stable per (secret, service, card)."""
    if len(secret) < 32:
        raise PseudonymError("pseudonym secret must be at least 32 bytes")
    if not _HEX.fullmatch(restricted_id) or len(restricted_id) % 2:
        raise PseudonymError("RestrictedID must be an even-length hex string")
    message = b"eid-gateway pseudonym v1" + _field(service_id.encode("utf-8")) + _field(bytes.fromhex(restricted_id))
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()
