"""Verification of an SD-JWT VC presentation with key binding (RFC 9901 SD-JWT, SD-JWT VC), own code.

``<issuer-signed JWT>~<disclosure>~...~<KB-JWT>``. The checks, each refusing with its own
:class:`~eid_gateway.wallet.errors.RejectReason`:

1. the issuer JWT: ``typ`` dc+sd-jwt, ES256, no ``crit`` (CRITICAL), the ``x5c`` chain to the trust
   list (UNTRUSTED_ISSUER), the signature by its leaf (ISSUER_SIGNATURE), ``iss`` (when present) one of
   the leaf's subjectAltNames (UNTRUSTED_ISSUER);
2. ``vct`` one of the accepted PID types (VCT); ``nbf``/``iat`` not in the future (NOT_YET_VALID);
   ``exp`` not passed (EXPIRED); a leeway of ``leeway`` seconds for clock skew;
3. the disclosures: every one referenced by exactly one digest in the signed payload (DISCLOSURE_UNKNOWN),
   none twice, no digest twice (DISCLOSURE_DUPLICATE); a disclosure may not overwrite a claim or
   disclose the registered claims (iss, vct, cnf, status, validity) that must stay plain (MALFORMED);
4. the KB-JWT: ``typ`` kb+jwt, signed by the ``cnf.jwk`` holder key (KB_SIGNATURE), ``nonce`` of this
   transaction (NONCE), ``aud`` our client_id (AUDIENCE), ``iat`` within ``max_kb_age`` (KB_STALE),
   ``sd_hash`` over exactly this presentation (SD_HASH).

The status list (revocation) is checked separately (:mod:`eid_gateway.wallet.statuslist`): it needs a
fetch, and this module stays free of I/O.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from eid_gateway.wallet.errors import PresentationRejected, RejectReason
from eid_gateway.wallet.jose import (
    ES256,
    CompactJws,
    JoseFormatError,
    b64url_decode,
    b64url_encode,
    ec_thumbprint,
    json_value,
    parse_compact,
    public_key_from_jwk,
)
from eid_gateway.wallet.trust import TrustList

#: ``typ`` of the issuer-signed JWT of an SD-JWT VC (``vc+sd-jwt`` is the name before draft 06).
ISSUER_TYPES = frozenset({"dc+sd-jwt", "vc+sd-jwt"})
KB_TYP = "kb+jwt"
SD_ALG = "sha-256"
#: Limits against resource exhaustion before any signature is checked.
MAX_PRESENTATION = 128 * 1024
MAX_DISCLOSURES = 256
MAX_DEPTH = 16
#: Claims that must not come from a disclosure (SD-JWT VC §3.2.2.2 plus the digest machinery).
NEVER_DISCLOSED = frozenset(
    {"iss", "nbf", "exp", "iat", "cnf", "vct", "vct#integrity", "status", "_sd", "_sd_alg", "..."}
)


@dataclass(frozen=True)
class StatusRef:
    """Where the credential's revocation status is: a Token Status List and the credential's index."""

    uri: str
    idx: int


@dataclass(frozen=True)
class VerifiedPid:
    """A presentation that passed every check but the status list: what mapping turns into an Identity."""

    claims: dict[str, Any]
    vct: str
    issuer: str
    issued_at: int | None
    expires_at: int | None
    status: StatusRef | None
    holder_jwk_thumbprint: str


def _reject(reason: RejectReason, message: str) -> PresentationRejected:
    return PresentationRejected(reason, message)


def _jws(token: str, what: str) -> CompactJws:
    try:
        return parse_compact(token)
    except JoseFormatError as exc:
        raise _reject(RejectReason.MALFORMED, f"{what}: {exc}") from None


def _int_claim(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _reject(RejectReason.MALFORMED, f"{name} is not an integer")
    return value


def _digest(disclosure: str) -> str:
    return b64url_encode(hashlib.sha256(disclosure.encode("ascii")).digest())


def split_presentation(presentation: str) -> tuple[str, list[str], str]:
    """The issuer JWT, the disclosures and the KB-JWT of a presentation (which must end in a KB-JWT)."""
    if not isinstance(presentation, str) or len(presentation) > MAX_PRESENTATION or not presentation.isascii():
        raise _reject(RejectReason.MALFORMED, "not an SD-JWT presentation")
    parts = presentation.split("~")
    if len(parts) < 2:
        raise _reject(RejectReason.MALFORMED, "not an SD-JWT presentation")
    issuer_jwt, disclosures, kb_jwt = parts[0], parts[1:-1], parts[-1]
    if not kb_jwt:
        raise _reject(RejectReason.MALFORMED, "no key binding JWT")
    if len(disclosures) > MAX_DISCLOSURES or any(not d for d in disclosures):
        raise _reject(RejectReason.MALFORMED, "empty or too many disclosures")
    return issuer_jwt, disclosures, kb_jwt


@dataclass
class _Disclosure:
    key: str | None  # None: an array element
    value: Any
    used: bool = False


def _decode_disclosures(disclosures: list[str]) -> dict[str, _Disclosure]:
    """digest -> decoded disclosure; the same disclosure twice is DISCLOSURE_DUPLICATE."""
    out: dict[str, _Disclosure] = {}
    for text in disclosures:
        digest = _digest(text)
        if digest in out:
            raise _reject(RejectReason.DISCLOSURE_DUPLICATE, "a disclosure appears twice")
        try:
            value = json_value(b64url_decode(text))
        except JoseFormatError:
            raise _reject(RejectReason.MALFORMED, "a disclosure is not base64url JSON") from None
        if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[0], str):
            raise _reject(RejectReason.MALFORMED, "a disclosure is not [salt, (name,) value]")
        if len(value) == 3:
            if not isinstance(value[1], str):
                raise _reject(RejectReason.MALFORMED, "a disclosure's claim name is not a string")
            out[digest] = _Disclosure(value[1], value[2])
        else:
            out[digest] = _Disclosure(None, value[1])
    return out


class _Resolver:
    """Replaces digests by their disclosures, recursively, counting every digest once."""

    def __init__(self, disclosures: dict[str, _Disclosure]) -> None:
        self.disclosures = disclosures
        self.seen: set[str] = set()

    def _take(self, digest: object) -> _Disclosure | None:
        if not isinstance(digest, str):
            raise _reject(RejectReason.MALFORMED, "a digest is not a string")
        if digest in self.seen:
            raise _reject(RejectReason.DISCLOSURE_DUPLICATE, "a digest appears twice")
        self.seen.add(digest)
        found = self.disclosures.get(digest)
        if found is not None:
            found.used = True
        return found  # None: a decoy or an undisclosed claim

    def resolve(self, node: Any, depth: int, top: bool = False) -> Any:
        if depth > MAX_DEPTH:
            raise _reject(RejectReason.MALFORMED, "nested too deeply")
        if isinstance(node, dict):
            return self._object(node, depth, top)
        if isinstance(node, list):
            return self._array(node, depth)
        return node

    def _object(self, node: dict[str, Any], depth: int, top: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in node.items():
            if name in ("_sd", "_sd_alg") or (top and name == "cnf"):
                continue
            out[name] = self.resolve(value, depth + 1)
        digests = node.get("_sd", [])
        if not isinstance(digests, list):
            raise _reject(RejectReason.MALFORMED, "_sd is not an array")
        for digest in digests:
            disclosure = self._take(digest)
            if disclosure is None:
                continue
            if disclosure.key is None:
                raise _reject(RejectReason.MALFORMED, "an array-element disclosure is referenced from _sd")
            if disclosure.key in ("_sd", "_sd_alg", "..."):
                raise _reject(RejectReason.MALFORMED, "a disclosure names a reserved claim")
            if disclosure.key in out or disclosure.key in node or (top and disclosure.key in NEVER_DISCLOSED):
                raise _reject(RejectReason.MALFORMED, f"disclosure would set claim {disclosure.key!r}")
            out[disclosure.key] = self.resolve(disclosure.value, depth + 1)
        return out

    def _array(self, node: list[Any], depth: int) -> list[Any]:
        out: list[Any] = []
        for element in node:
            if isinstance(element, dict) and "..." in element:
                if len(element) != 1:
                    raise _reject(RejectReason.MALFORMED, "an array digest object has other members")
                disclosure = self._take(element["..."])
                if disclosure is None:
                    continue
                if disclosure.key is not None:
                    raise _reject(RejectReason.MALFORMED, "an object-property disclosure is referenced from an array")
                out.append(self.resolve(disclosure.value, depth + 1))
            else:
                out.append(self.resolve(element, depth + 1))
        return out


@functools.lru_cache(maxsize=256)
def _san_names(leaf: x509.Certificate) -> tuple[frozenset[str], frozenset[str]]:
    """The leaf's subjectAltName URIs and (lower-case) DNS names, read once per certificate."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):  # ValueError: an extension that does not parse
        return frozenset(), frozenset()
    uris = frozenset(san.get_values_for_type(x509.UniformResourceIdentifier))
    return uris, frozenset(n.lower() for n in san.get_values_for_type(x509.DNSName))


def _names_issuer(leaf: x509.Certificate, iss: object) -> bool:
    """SD-JWT VC §3.5 (x5c): ``iss`` is a uniformResourceIdentifier SAN of the leaf, or for a ``dns:``
    URI a dNSName SAN — so one trusted provider cannot issue in another provider's name."""
    if not isinstance(iss, str):
        return False
    uris, dns_names = _san_names(leaf)
    if iss.startswith("dns:"):
        return iss[4:].lower() in dns_names
    return iss in uris


def _check_issuer_jwt(
    jwt: CompactJws, *, trust: TrustList, vct_values: frozenset[str], now: int, leeway: int
) -> x509.Certificate:
    """The issuer's (trusted) certificate once header, chain, signature, type and validity pass."""
    header, payload = jwt.header, jwt.payload
    if "crit" in header:
        raise _reject(RejectReason.CRITICAL, "the issuer JWT has critical header parameters")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ not in ISSUER_TYPES:
        raise _reject(RejectReason.MALFORMED, "the issuer JWT's typ is not dc+sd-jwt")
    if header.get("alg") != ES256:
        raise _reject(RejectReason.ISSUER_SIGNATURE, "the issuer JWT is not ES256")
    leaf = trust.verify_x5c(header.get("x5c"), now)
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not jwt.verify(key):
        raise _reject(RejectReason.ISSUER_SIGNATURE, "the issuer signature does not verify")
    iss = payload.get("iss")
    if iss is not None and not _names_issuer(leaf, iss):
        raise _reject(RejectReason.UNTRUSTED_ISSUER, "iss is not a name in the issuer's certificate")
    if payload.get("_sd_alg", SD_ALG) != SD_ALG:
        raise _reject(RejectReason.MALFORMED, "unsupported _sd_alg")
    vct = payload.get("vct")
    if not isinstance(vct, str) or vct not in vct_values:
        raise _reject(RejectReason.VCT, "not an accepted PID type")
    nbf, iat, exp = _int_claim(payload, "nbf"), _int_claim(payload, "iat"), _int_claim(payload, "exp")
    if (nbf is not None and nbf > now + leeway) or (iat is not None and iat > now + leeway):
        raise _reject(RejectReason.NOT_YET_VALID, "the credential is not valid yet")
    if exp is not None and exp <= now - leeway:
        raise _reject(RejectReason.EXPIRED, "the credential has expired")
    return leaf


def _status_ref(payload: dict[str, Any]) -> StatusRef | None:
    status = payload.get("status")
    if status is None:
        return None
    if not isinstance(status, dict):
        raise _reject(RejectReason.MALFORMED, "status is not an object")
    ref = status.get("status_list")
    if ref is None:
        return None  # another status mechanism: not one this verifier knows (none is in the PID profile)
    if not isinstance(ref, dict):
        raise _reject(RejectReason.MALFORMED, "status_list is not an object")
    idx, uri = ref.get("idx"), ref.get("uri")
    if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0 or not isinstance(uri, str) or not uri:
        raise _reject(RejectReason.MALFORMED, "status_list needs idx and uri")
    if not uri.startswith(("https://", "http://")):
        raise _reject(RejectReason.MALFORMED, "status_list uri is not http(s)")
    return StatusRef(uri=uri, idx=idx)


def _check_kb_jwt(
    kb: CompactJws,
    *,
    holder_key: ec.EllipticCurvePublicKey,
    sd_hash: str,
    nonce: str,
    audience: str,
    now: int,
    max_kb_age: int,
    leeway: int,
) -> None:
    if "crit" in kb.header:
        raise _reject(RejectReason.CRITICAL, "the KB-JWT has critical header parameters")
    if kb.header.get("typ") != KB_TYP:
        raise _reject(RejectReason.MALFORMED, "the KB-JWT's typ is not kb+jwt")
    if not kb.verify(holder_key):
        raise _reject(RejectReason.KB_SIGNATURE, "the key binding signature does not verify")
    claims = kb.payload
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise _reject(RejectReason.NONCE, "the KB-JWT's nonce is not this transaction's")
    if claims.get("aud") != audience:
        raise _reject(RejectReason.AUDIENCE, "the KB-JWT is for another verifier")
    iat = _int_claim(claims, "iat")
    if iat is None or iat < now - max_kb_age or iat > now + leeway:
        raise _reject(RejectReason.KB_STALE, "the KB-JWT is not fresh")
    if not isinstance(claims.get("sd_hash"), str) or not hmac.compare_digest(claims["sd_hash"], sd_hash):
        raise _reject(RejectReason.SD_HASH, "the KB-JWT's sd_hash does not cover this presentation")


def verify_presentation(
    presentation: str,
    *,
    trust: TrustList,
    vct_values: frozenset[str] | tuple[str, ...] | list[str],
    nonce: str,
    audience: str,
    now: int,
    max_kb_age: int = 300,
    leeway: int = 60,
) -> VerifiedPid:
    """The verified PID of one presentation, or :class:`PresentationRejected` naming the failed check."""
    issuer_token, disclosure_texts, kb_token = split_presentation(presentation)
    issuer_jwt = _jws(issuer_token, "issuer JWT")
    leaf = _check_issuer_jwt(issuer_jwt, trust=trust, vct_values=frozenset(vct_values), now=now, leeway=leeway)
    payload = issuer_jwt.payload
    cnf = payload.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    try:
        holder_key = public_key_from_jwk(jwk)
    except JoseFormatError as exc:
        raise _reject(RejectReason.MALFORMED, f"cnf.jwk: {exc}") from None
    assert isinstance(jwk, dict)  # public_key_from_jwk accepted it
    status = _status_ref(payload)

    disclosures = _decode_disclosures(disclosure_texts)
    claims = _Resolver(disclosures).resolve(payload, 0, top=True)
    if not all(d.used for d in disclosures.values()):
        raise _reject(RejectReason.DISCLOSURE_UNKNOWN, "a disclosure is not referenced by the credential")

    kb_jwt = _jws(kb_token, "KB-JWT")
    sd_hash = b64url_encode(hashlib.sha256(presentation[: len(presentation) - len(kb_token)].encode("ascii")).digest())
    _check_kb_jwt(
        kb_jwt,
        holder_key=holder_key,
        sd_hash=sd_hash,
        nonce=nonce,
        audience=audience,
        now=now,
        max_kb_age=max_kb_age,
        leeway=leeway,
    )
    issuer = payload.get("iss")
    return VerifiedPid(
        claims=claims,
        vct=payload["vct"],
        issuer=issuer if isinstance(issuer, str) else leaf.subject.rfc4514_string(),
        issued_at=_int_claim(payload, "iat"),
        expires_at=_int_claim(payload, "exp"),
        status=status,
        holder_jwk_thumbprint=ec_thumbprint(jwk),
    )
