"""Presentations for the verifier tests, built with the IETF reference library (``sd-jwt``) — the oracle —
plus the few hand-made changes an attack test needs (a re-signed key binding, a changed header).

Nothing here uses the verifier's own JOSE code: the issuer and holder sign with jwcrypto (through the
library) or with ``cryptography`` directly (:func:`es256`), so a shared mistake cannot make both agree.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from jwcrypto import jwk
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer

from eid_gateway.wallet.trust import x5c_of
from eid_gateway.wallet_sim.pid_provider import ISSUER_ID
from saml.keys import KeyPair

VCT = "urn:eudi:pid:de:1"
AUDIENCE = "x509_hash:verifier-under-test"
NONCE = "nonce-of-this-transaction"

#: Erika Mustermann, the BSI sample citizen, as a PID (rulebook claim names).
ERIKA: dict[str, Any] = {
    "given_name": "ERIKA",
    "family_name": "MUSTERMANN",
    "birthdate": "1964-08-12",
    "place_of_birth": {"locality": "BERLIN", "country": "DE"},
    "nationalities": ["DE"],
    "birth_family_name": "GABLER",
    "address": {
        "street_address": "HEIDESTRASSE",
        "house_number": "17",
        "locality": "KÖLN",
        "postal_code": "51147",
        "country": "DE",
    },
    "age_equal_or_over": {"16": True, "18": True, "65": False},
    "issuing_country": "DE",
    "date_of_expiry": "2031-10-31",
}


def jwcrypto_key(pair: KeyPair) -> jwk.JWK:
    pem = pair.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())  # type: ignore[union-attr]
    return jwk.JWK.from_pem(pem)


def all_disclosable(value: Any) -> Any:
    """Every member (nested too) selectively disclosable, as a PID provider issues it."""
    if isinstance(value, dict):
        return {SDObj(k): all_disclosable(v) for k, v in value.items()}
    return value


@dataclass
class Holder:
    """The wallet's credential key (P-256)."""

    key: jwk.JWK = field(default_factory=lambda: jwk.JWK.generate(kty="EC", crv="P-256"))

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = self.key.get_op_key("sign")
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


def issue(
    issuer: KeyPair,
    holder: Holder,
    *,
    claims: dict[str, Any] | None = None,
    vct: str = VCT,
    iat: int | None = None,
    exp: int | None = None,
    status: dict[str, Any] | None = None,
    chain: list[Any] | None = None,
    header: dict[str, Any] | None = None,
    plain: dict[str, Any] | None = None,
    decoys: bool = True,
) -> str:
    """An SD-JWT VC issuance (issuer JWT ~ disclosures ~) of ``claims`` (default Erika), all disclosable."""
    now = int(time.time())
    user: dict[Any, Any] = {"iss": ISSUER_ID, "vct": vct, "iat": now if iat is None else iat}
    user["exp"] = now + 30 * 86400 if exp is None else exp
    if status is not None:
        user["status"] = status
    user.update(plain or {})
    user.update(all_disclosable(ERIKA if claims is None else claims))
    extra = {"typ": "dc+sd-jwt", "x5c": x5c_of(chain or [issuer.certificate])}
    extra.update(header or {})
    made = SDJWTIssuer(
        user,
        jwcrypto_key(issuer),
        holder_key=holder.key,
        sign_alg="ES256",
        add_decoy_claims=decoys,
        extra_header_parameters=extra,
    )
    return made.sd_jwt_issuance


def present(
    issuance: str,
    holder: Holder,
    disclose: dict[str, Any] | None = None,
    *,
    nonce: str = NONCE,
    aud: str = AUDIENCE,
) -> str:
    """The library's presentation of ``disclose`` (default: everything) with its KB-JWT."""
    made = SDJWTHolder(issuance)
    everything = {k: True for k in ERIKA} | {"address": {k: True for k in ERIKA["address"]}}
    everything |= {"place_of_birth": {k: True for k in ERIKA["place_of_birth"]}}
    everything |= {"age_equal_or_over": {k: True for k in ERIKA["age_equal_or_over"]}}
    made.create_presentation(
        everything if disclose is None else disclose, nonce=nonce, aud=aud, holder_key=holder.key, sign_alg="ES256"
    )
    return made.sd_jwt_presentation


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def without_kb(presentation: str) -> str:
    """The presentation up to and including its last ``~`` (what ``sd_hash`` covers)."""
    return presentation[: presentation.rindex("~") + 1]


def bind(
    body: str,
    holder: Holder,
    *,
    nonce: str = NONCE,
    aud: str = AUDIENCE,
    iat: int | None = None,
    sd_hash: str | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """``body`` (ending in ``~``) with a fresh KB-JWT signed by joserfc: for presentations the library
    would not make (a changed disclosure that the holder nevertheless binds)."""
    claims = {
        "nonce": nonce,
        "aud": aud,
        "iat": int(time.time()) if iat is None else iat,
        "sd_hash": sd_hash or b64url(hashlib.sha256(body.encode("ascii")).digest()),
    }
    protected = {"alg": "ES256", "typ": "kb+jwt"} | (header or {})
    return body + es256(protected, claims, holder.private_key)


def es256(header: dict[str, Any], payload: dict[str, Any] | bytes, key: ec.EllipticCurvePrivateKey) -> str:
    """A compact JWS written by hand, for what no library writes (unknown critical parameters, a payload
    that is not JSON)."""
    h = b64url(json.dumps(header).encode())
    p = b64url(payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    r, s = decode_dss_signature(key.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{h}.{p}." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def resign_issuer_jwt(
    presentation: str, issuer: KeyPair, *, header: dict[str, Any] | None = None, payload: dict[str, Any] | None = None
) -> str:
    """The presentation with its issuer JWT's header/payload members replaced and signed anew by ``issuer``."""
    first, rest = presentation.split("~", 1)
    h, p, _ = first.split(".")
    head = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4))) | (header or {})
    body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) | (payload or {})
    return es256(head, body, issuer.private_key) + "~" + rest  # type: ignore[arg-type]


def status_list_token(
    signer: KeyPair,
    uri: str,
    statuses: list[int],
    *,
    bits: int = 1,
    chain: list[Any] | None = None,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """A Token Status List JWT (IETF draft: LSB-first packing, zlib, base64url) written here, not by the verifier."""
    import zlib

    packed = bytearray((len(statuses) * bits + 7) // 8)
    for idx, value in enumerate(statuses):
        packed[(idx * bits) // 8] |= value << ((idx * bits) % 8)
    now = int(time.time())
    body = {
        "sub": uri,
        "iat": now,
        "exp": now + 3600,
        "ttl": 300,
        "status_list": {"bits": bits, "lst": b64url(zlib.compress(bytes(packed)))},
    }
    head = {"alg": "ES256", "typ": "statuslist+jwt", "x5c": x5c_of(chain or [signer.certificate])}
    return es256(head | (header or {}), body | (claims or {}), signer.private_key)  # type: ignore[arg-type]
