"""Compact JWS with ES256, the only signature algorithm of this profile (HAIP), on ``cryptography`` alone.

Own code rather than a JOSE library for the verifier's hot path: the checks are few and explicit
(``alg`` exactly ES256, raw r||s of 64 bytes, a P-256 key), the header is available before the
signature is checked (the key comes from the header's ``x5c``), and nothing is accepted implicitly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ES256 = "ES256"

#: A compact JWS larger than this is refused before decoding (a PID is a few kB).
MAX_JWS = 64 * 1024


class JoseFormatError(ValueError):
    """Not a well-formed compact JWS (or base64url, or JSON object)."""


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding: other alphabets, padding, whitespace and non-canonical trailing
    bits are refused (so that one value has exactly one encoding)."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise JoseFormatError("not base64url")
    rest = len(text) % 4
    if rest and _ALPHABET.index(text[-1]) & (0x0F if rest == 2 else 0x03):
        raise JoseFormatError("not canonical base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JoseFormatError(f"duplicate member {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise JoseFormatError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def json_value(data: bytes) -> Any:
    """Strict JSON from UTF-8 bytes: duplicate member names (they would be read two ways) and
    NaN/Infinity are refused."""
    try:
        return _DECODER.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise JoseFormatError("not JSON") from None


def json_object(data: bytes) -> dict[str, Any]:
    """A strict JSON object (:func:`json_value`)."""
    value = json_value(data)
    if not isinstance(value, dict):
        raise JoseFormatError("not a JSON object")
    return value


@dataclass(frozen=True)
class CompactJws:
    """A parsed, *not yet verified* compact JWS."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    def verify(self, key: ec.EllipticCurvePublicKey) -> bool:
        """True when ``alg`` is ES256 and the signature verifies with the P-256 ``key``."""
        if self.header.get("alg") != ES256 or not isinstance(key.curve, ec.SECP256R1):
            return False
        if len(self.signature) != 64:
            return False
        r = int.from_bytes(self.signature[:32], "big")
        s = int.from_bytes(self.signature[32:], "big")
        try:
            key.verify(encode_dss_signature(r, s), self.signing_input, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def parse_compact(token: str, *, max_size: int = MAX_JWS) -> CompactJws:
    """Split and decode a compact JWS (header and payload must be JSON objects)."""
    if not isinstance(token, str) or len(token) > max_size:
        raise JoseFormatError("not a compact JWS")
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseFormatError("a compact JWS has three parts")
    header = json_object(b64url_decode(parts[0]))
    payload = json_object(b64url_decode(parts[1]))
    signature = b64url_decode(parts[2])
    return CompactJws(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def sign_es256(header: dict[str, Any], payload: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    """A compact JWS (``alg`` set to ES256) signed with a P-256 key (a token key signs inside its token)."""
    protected = b64url_encode(json.dumps({**header, "alg": ES256}, separators=(",", ":")).encode("utf-8"))
    body = b64url_encode(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    signing_input = f"{protected}.{body}".encode("ascii")
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return f"{protected}.{body}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def public_key_from_jwk(jwk: object) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from an EC JWK (the holder's ``cnf.jwk``); private members are refused."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
        raise JoseFormatError("not a public P-256 JWK")
    x, y = b64url_decode(jwk.get("x", "")), b64url_decode(jwk.get("y", ""))
    if len(x) != 32 or len(y) != 32:
        raise JoseFormatError("P-256 coordinates must be 32 bytes")
    try:
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError:
        raise JoseFormatError("the point is not on P-256") from None


def ec_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC key: members crv, kty, x, y in order."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())
