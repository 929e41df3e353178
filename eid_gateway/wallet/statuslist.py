"""IETF Token Status List: is the credential at ``idx`` of the list at ``uri`` still valid?

The list is a JWT (``typ: statuslist+jwt``) signed by a key whose ``x5c`` chain leads to the same trust
list as the credentials; claim ``status_list: {bits, lst}`` with ``lst`` = base64url(zlib(bytes)), the
status of index ``i`` in bits ``i*bits .. i*bits+bits-1`` counted from the least significant bit of each
byte. 0 is VALID; anything else (1 INVALID, 2 SUSPENDED, application-specific values) is not accepted.
Every doubt about the list itself is :class:`StatusUnavailable`, never an accept.
"""

from __future__ import annotations

import hmac
import zlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from eid_gateway.wallet.errors import PresentationRejected, RejectReason, StatusUnavailable
from eid_gateway.wallet.jose import JoseFormatError, b64url_decode, parse_compact
from eid_gateway.wallet.sdjwt import StatusRef
from eid_gateway.wallet.trust import TrustList

STATUS_LIST_TYP = "statuslist+jwt"
VALID = 0
#: The decompressed list may not be larger than this (a zlib bomb is refused, not inflated).
MAX_LIST_BYTES = 4 * 1024 * 1024
#: The token itself (compressed list inside) may be as large as the fetcher accepts.
MAX_TOKEN = 1024 * 1024
_BITS = (1, 2, 4, 8)


def _int(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise StatusUnavailable(f"status list {name} is not an integer")
    return value


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_LIST_BYTES + 1)
    except zlib.error:
        raise StatusUnavailable("status list lst is not zlib data") from None
    if len(out) > MAX_LIST_BYTES or inflater.unconsumed_tail or not inflater.eof:
        raise StatusUnavailable("status list lst is too large or truncated")
    return out


def status_value(lst: bytes, bits: int, idx: int) -> int:
    """The status of ``idx`` in the (decompressed) list."""
    position = idx * bits
    byte = position // 8
    if byte >= len(lst):
        raise StatusUnavailable("the credential's index is outside the status list")
    return (lst[byte] >> (position % 8)) & ((1 << bits) - 1)


def read_status_list(token: str, ref: StatusRef, *, trust: TrustList, now: int, leeway: int = 60) -> tuple[int, bytes]:
    """``(bits, decompressed list)`` of a status list token that passes every check."""
    try:
        jwt = parse_compact(token, max_size=MAX_TOKEN)
    except JoseFormatError as exc:
        raise StatusUnavailable(f"status list token: {exc}") from None
    if jwt.header.get("typ") != STATUS_LIST_TYP or "crit" in jwt.header:
        raise StatusUnavailable("not a status list token")
    try:
        leaf = trust.verify_x5c(jwt.header.get("x5c"), now)
    except PresentationRejected as exc:
        raise StatusUnavailable(f"status list signer: {exc.message or exc.reason.value}") from None
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not jwt.verify(key):
        raise StatusUnavailable("the status list signature does not verify")
    claims = jwt.payload
    sub = claims.get("sub")
    if not isinstance(sub, str) or not hmac.compare_digest(sub.encode(), ref.uri.encode()):
        raise StatusUnavailable("the status list is not the one the credential names")
    exp, iat = _int(claims, "exp"), _int(claims, "iat")
    if exp is not None and exp <= now - leeway:
        raise StatusUnavailable("the status list has expired")
    if iat is not None and iat > now + leeway:
        raise StatusUnavailable("the status list is from the future")
    status_list = claims.get("status_list")
    if not isinstance(status_list, dict):
        raise StatusUnavailable("no status_list claim")
    bits, lst = status_list.get("bits"), status_list.get("lst")
    if bits not in _BITS or isinstance(bits, bool) or not isinstance(lst, str):
        raise StatusUnavailable("status_list needs bits (1, 2, 4, 8) and lst")
    try:
        compressed = b64url_decode(lst)
    except JoseFormatError:
        raise StatusUnavailable("status list lst is not base64url") from None
    assert isinstance(bits, int)
    return bits, _inflate(compressed)


def check_status(token: str, ref: StatusRef, *, trust: TrustList, now: int) -> None:
    """Returns when the credential's status is VALID; REVOKED (PresentationRejected) otherwise."""
    bits, lst = read_status_list(token, ref, trust=trust, now=now)
    if status_value(lst, bits, ref.idx) != VALID:
        raise PresentationRejected(RejectReason.REVOKED, "the credential is revoked or suspended")


def cache_lifetime(token: str, *, now: int, default: int) -> int:
    """How long a fetched list may be reused: ``ttl`` when given, never past ``exp``, at most ``default``.

    Read without verification (the list is verified on every use); a token without either is kept
    ``default`` seconds.
    """
    try:
        claims = parse_compact(token, max_size=MAX_TOKEN).payload
    except JoseFormatError:
        return 0
    lifetime = default
    ttl, exp = claims.get("ttl"), claims.get("exp")
    if isinstance(ttl, int) and not isinstance(ttl, bool):
        lifetime = min(lifetime, max(ttl, 0))
    if isinstance(exp, int) and not isinstance(exp, bool):
        lifetime = min(lifetime, max(exp - now, 0))
    return lifetime
