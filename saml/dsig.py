"""XML-DSig signing and strict verification on top of xmlsec, plus raw signatures for HTTP-Redirect.

Verification is built so that the caller can only read what was verified: before xmlsec runs, the
``ds:Signature`` is checked against an exact shape (one ``SignedInfo``, exclusive C14N, allowlisted
algorithms, the expected references and transforms only), every referenced ID is resolved by us across
the whole document (duplicates refused), and the key comes from the caller's trusted certificates, never
from ``KeyInfo``. :func:`verify_enveloped` then returns the element the signature covers.

Both the SAML enveloped case and the WS-Security multi-reference case run through one core
(:func:`_verify_core`), so there is one way a signature is accepted.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from lxml import etree

from saml import algorithms as alg
from saml.algorithms import DEFAULT_POLICY, AlgorithmPolicy
from saml.errors import SignatureError
from saml.keys import (
    ExternalKey,
    KeyPair,
    WeakKeyError,
    cert_b64,
    check_key_strength,
    generate_key_pair,
    xmlsec_public_key,
)

__all__ = [
    "BadSignature",
    "DuplicateId",
    "ForbiddenAlgorithm",
    "ForbiddenTransform",
    "MalformedSignature",
    "MissingSignature",
    "MultipleSignatures",
    "ReferenceMismatch",
    "UntrustedKey",
    "WeakKeyError",
    "has_signature",
    "sign_bytes",
    "sign_enveloped",
    "sign_references",
    "verify_bytes",
    "verify_enveloped",
    "verify_references",
]

DS: Final = "http://www.w3.org/2000/09/xmldsig#"
EC_NS: Final = alg.EXC_C14N  # namespace of ec:InclusiveNamespaces is the algorithm URI itself
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"

_SIGNATURE: Final = f"{{{DS}}}Signature"
_SIGNED_INFO: Final = f"{{{DS}}}SignedInfo"
_C14N_METHOD: Final = f"{{{DS}}}CanonicalizationMethod"
_SIGNATURE_METHOD: Final = f"{{{DS}}}SignatureMethod"
_REFERENCE: Final = f"{{{DS}}}Reference"
_TRANSFORMS: Final = f"{{{DS}}}Transforms"
_TRANSFORM: Final = f"{{{DS}}}Transform"
_DIGEST_METHOD: Final = f"{{{DS}}}DigestMethod"
_DIGEST_VALUE: Final = f"{{{DS}}}DigestValue"
_SIGNATURE_VALUE: Final = f"{{{DS}}}SignatureValue"
_KEY_INFO: Final = f"{{{DS}}}KeyInfo"
_X509_DATA: Final = f"{{{DS}}}X509Data"
_X509_CERTIFICATE: Final = f"{{{DS}}}X509Certificate"
_INCLUSIVE_NS: Final = f"{{{EC_NS}}}InclusiveNamespaces"


# --- errors -----------------------------------------------------------------------------------------------


class MissingSignature(SignatureError):
    """The element carries no ``ds:Signature`` as a direct child (a nested one does not count)."""

    code = "signature_missing"


class MultipleSignatures(SignatureError):
    """More than one ``ds:Signature`` is a direct child of the element."""

    code = "signature_ambiguous"


class MalformedSignature(SignatureError):
    """The ``ds:Signature`` does not have the exact shape we accept (extra children, ds:Object, ...)."""

    code = "signature_malformed"


class ForbiddenAlgorithm(SignatureError):
    """A signature, digest or canonicalisation algorithm outside the policy's allowlist."""

    code = "algorithm_forbidden"


class ForbiddenTransform(SignatureError):
    """A reference uses a transform other than the expected ones (XSLT, XPath, ...)."""

    code = "transform_forbidden"


class ReferenceMismatch(SignatureError):
    """The references do not point at exactly the expected element(s): the signature-wrapping check."""

    code = "reference_mismatch"


class DuplicateId(SignatureError):
    """An ID value occurs more than once in the document, so a reference to it would be ambiguous."""

    code = "duplicate_id"


class BadSignature(SignatureError):
    """The signature does not verify: the signed content was altered after signing."""

    code = "signature_bad"


class UntrustedKey(BadSignature):
    """The signed content is intact, but no trusted key made the signature (forged / attacker's key)."""

    code = "signature_untrusted"


# --- algorithm helpers ------------------------------------------------------------------------------------

_XMLSEC_SIGNATURE_TRANSFORMS: Final[dict[str, xmlsec.constants.__Transform]] = {
    alg.RSA_SHA256: xmlsec.constants.TransformRsaSha256,
    alg.RSA_SHA384: xmlsec.constants.TransformRsaSha384,
    alg.RSA_SHA512: xmlsec.constants.TransformRsaSha512,
    alg.ECDSA_SHA256: xmlsec.constants.TransformEcdsaSha256,
    alg.ECDSA_SHA384: xmlsec.constants.TransformEcdsaSha384,
    alg.ECDSA_SHA512: xmlsec.constants.TransformEcdsaSha512,
}
_XMLSEC_DIGESTS: Final[dict[str, xmlsec.constants.__Transform]] = {
    alg.SHA256: xmlsec.constants.TransformSha256,
    alg.SHA384: xmlsec.constants.TransformSha384,
    alg.SHA512: xmlsec.constants.TransformSha512,
}
_HASHES: Final[dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | hashes.SHA1]]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha1": hashes.SHA1,
}
_PSS: Final = frozenset({alg.RSA_PSS_SHA256, alg.RSA_PSS_SHA384, alg.RSA_PSS_SHA512})


def _default_algorithm(key: KeyPair) -> str:
    return alg.ECDSA_SHA256 if key.is_ec else alg.RSA_SHA256


def _key_fits(public_key: object, algorithm: str) -> bool:
    if algorithm in alg.RSA_SIGNATURES:
        return isinstance(public_key, rsa.RSAPublicKey)
    if algorithm in alg.ECDSA_SIGNATURES:
        return isinstance(public_key, ec.EllipticCurvePublicKey)
    return False


def _check_signing(key: KeyPair, algorithm: str, digest: str | None, policy: AlgorithmPolicy) -> None:
    if algorithm not in policy.signature:
        raise ForbiddenAlgorithm(f"signature algorithm {algorithm} is not allowed")
    if digest is not None and digest not in policy.digest:
        raise ForbiddenAlgorithm(f"digest algorithm {digest} is not allowed")
    if not _key_fits(key.private_key.public_key(), algorithm):
        raise ForbiddenAlgorithm(f"signature algorithm {algorithm} does not fit the key type")
    check_key_strength(key.private_key.public_key(), policy)


def _split_clark(qname: str) -> tuple[str, str | None]:
    """``{ns}local`` -> (local, ns); ``local`` -> (local, None)."""
    if qname.startswith("{"):
        ns, _, local = qname[1:].partition("}")
        return local, ns
    return qname, None


# --- signing ----------------------------------------------------------------------------------------------


def _sub(parent: etree._Element, tag: str, **attrib: str) -> etree._Element:
    return etree.SubElement(parent, tag, attrib)


@functools.lru_cache(maxsize=64)
def _template_prototype(count: int, transforms: tuple[str, ...], algorithm: str, digest: str) -> etree._Element:
    sig = etree.Element(_SIGNATURE, nsmap={"ds": DS})
    info = _sub(sig, _SIGNED_INFO)
    _sub(info, _C14N_METHOD, Algorithm=alg.EXC_C14N)
    _sub(info, _SIGNATURE_METHOD, Algorithm=algorithm)
    for _ in range(count):
        ref = _sub(info, _REFERENCE)
        tr = _sub(ref, _TRANSFORMS)
        for t in transforms:
            _sub(tr, _TRANSFORM, Algorithm=t)
        _sub(ref, _DIGEST_METHOD, Algorithm=digest)
        _sub(ref, _DIGEST_VALUE)
    _sub(sig, _SIGNATURE_VALUE)
    return sig


def _signature_template(
    uris: Sequence[str], transforms: tuple[str, ...], algorithm: str, digest: str
) -> etree._Element:
    """An unsigned ``ds:Signature`` with one Reference per URI (copied from a cached prototype)."""
    sig = copy.deepcopy(_template_prototype(len(uris), transforms, algorithm, digest))
    for ref, uri in zip(sig[0].iterchildren(_REFERENCE), uris, strict=True):
        ref.set("URI", uri)
    return sig


_key_info_cache: dict[bytes, etree._Element] = {}


def _x509_key_info(key: KeyPair) -> etree._Element:
    """``ds:KeyInfo`` with the certificate (and chain), built once per key pair and copied."""
    cache_key = key.fingerprint + b"".join(c.fingerprint(hashes.SHA256()) for c in key.chain)
    proto = _key_info_cache.get(cache_key)
    if proto is None:
        proto = etree.Element(_KEY_INFO, nsmap={"ds": DS})
        data = _sub(proto, _X509_DATA)
        for cert in (key.certificate, *key.chain):
            _sub(data, _X509_CERTIFICATE).text = cert_b64(cert)
        if len(_key_info_cache) > 64:
            _key_info_cache.clear()
        _key_info_cache[cache_key] = proto
    return copy.deepcopy(proto)


_stand_ins: dict[bool, KeyPair] = {}


def _stand_in(key: KeyPair) -> KeyPair:
    """A throwaway software key of the same type, for keys xmlsec cannot hold (see :func:`_xmlsec_sign`)."""
    found = _stand_ins.get(key.is_ec)
    if found is None:
        found = generate_key_pair("ec-p256" if key.is_ec else "rsa-2048", "stand-in", 1)
        _stand_ins[key.is_ec] = found
    return found


def _xmlsec_sign(signature: etree._Element, targets: Sequence[etree._Element], key: KeyPair, id_attr: str) -> None:
    """Let xmlsec transform, digest and sign. A key held in a token (:class:`ExternalKey`) cannot be
    given to xmlsec: xmlsec then signs with a stand-in key, which fills in every DigestValue, and the
    canonical SignedInfo is signed again through the real key, whose value replaces the stand-in's."""
    local, ns = _split_clark(id_attr)
    ctx = xmlsec.SignatureContext()
    try:
        for target in targets:
            ctx.register_id(target, local, ns)
    except xmlsec.Error:
        raise DuplicateId("the ID to sign is already bound to another element of this document") from None
    external = isinstance(key.private_key, ExternalKey)
    ctx.key = _stand_in(key).xmlsec_key if external else key.xmlsec_key
    try:
        ctx.sign(signature)
    except xmlsec.Error as exc:
        raise SignatureError(f"signing failed: {exc}") from None
    if external:
        info = signature.find(_SIGNED_INFO)
        value = signature.find(_SIGNATURE_VALUE)
        method = info.find(_SIGNATURE_METHOD) if info is not None else None
        if info is None or value is None or method is None:
            raise SignatureError("signing failed: incomplete signature template")
        octets = etree.tostring(info, method="c14n", exclusive=True, with_comments=False)
        try:
            raw = sign_bytes(key, octets, method.get("Algorithm", ""))
        except (SignatureError, ValueError, TypeError) as exc:
            raise SignatureError(f"signing with the token key failed: {type(exc).__name__}") from None
        value.text = base64.b64encode(raw).decode("ascii")


def sign_enveloped(
    element: etree._Element,
    key: KeyPair,
    *,
    algorithm: str | None = None,
    digest: str = alg.SHA256,
    id_attribute: str = "ID",
    insert_after: etree._Element | None = None,
    include_certificate: bool = True,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> etree._Element:
    """Sign ``element`` with an enveloped signature over ``#<its ID>`` and return the ``ds:Signature``.

    The signature goes right after ``insert_after`` (SAML wants it after ``saml:Issuer``) or first.
    ``policy`` guards what *we* emit, so the gateway cannot produce a signature its peers should refuse.
    """
    algorithm = algorithm or _default_algorithm(key)
    _check_signing(key, algorithm, digest, policy)
    id_value = element.get(id_attribute)
    if not id_value:
        raise ReferenceMismatch(f"element has no {id_attribute} attribute to reference")
    sig = _signature_template(["#" + id_value], (alg.ENVELOPED, alg.EXC_C14N), algorithm, digest)
    if insert_after is not None:
        if insert_after.getparent() is not element:
            raise ValueError("insert_after must be a child of the signed element")
        insert_after.addnext(sig)
    else:
        element.insert(0, sig)
    try:
        _xmlsec_sign(sig, [element], key, id_attribute)
    except SignatureError:
        element.remove(sig)
        raise
    if include_certificate:
        sig.append(_x509_key_info(key))  # KeyInfo is not signed; adding it afterwards is equivalent
    return sig


def sign_references(
    signature_parent: etree._Element,
    targets: Sequence[tuple[etree._Element, str]],
    key: KeyPair,
    *,
    id_attr_qname: str,
    algorithm: str | None = None,
    digest: str = alg.SHA256,
    key_info: etree._Element | None = None,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> etree._Element:
    """Sign several elements (detached, exclusive C14N only) and append the ``ds:Signature`` to the parent.

    Each target's ``id_attr_qname`` attribute (Clark notation, e.g. ``{wsu-ns}Id``) is set to its ID.
    ``key_info`` replaces the default ``ds:KeyInfo`` (X509Certificate); pass a ``ds:KeyInfo`` element or
    its content (e.g. a ``wsse:SecurityTokenReference``), which is then wrapped in one.
    """
    if not targets:
        raise ValueError("nothing to sign")
    algorithm = algorithm or _default_algorithm(key)
    _check_signing(key, algorithm, digest, policy)
    for el, id_value in targets:
        el.set(id_attr_qname, id_value)
    sig = _signature_template(["#" + i for _, i in targets], (alg.EXC_C14N,), algorithm, digest)
    signature_parent.append(sig)
    try:
        _xmlsec_sign(sig, [el for el, _ in targets], key, id_attr_qname)
    except SignatureError:
        signature_parent.remove(sig)
        raise
    if key_info is None:
        sig.append(_x509_key_info(key))
    elif key_info.tag == _KEY_INFO:
        sig.append(key_info)
    else:
        _sub(sig, _KEY_INFO).append(key_info)
    return sig


# --- verification -------------------------------------------------------------------------------------------


def has_signature(element: etree._Element) -> bool:
    """Whether a ``ds:Signature`` is a direct child of ``element``."""
    return any(child.tag == _SIGNATURE for child in element)


@dataclass(frozen=True)
class _Ref:
    uri: str
    transforms: tuple[str, ...]
    inclusive_prefixes: tuple[str, ...]
    digest_method: str
    digest_value: str  # base64 as written; decoded only on the failure path


@dataclass(frozen=True)
class _Parsed:
    signature_method: str
    references: tuple[_Ref, ...]
    key_infos: tuple[etree._Element, ...]


def _keyinfo_certs(parsed: _Parsed) -> set[bytes]:
    """DER certificates named in KeyInfo (a hint only; unreadable entries are skipped, never trusted)."""
    certs: set[bytes] = set()
    for ki in parsed.key_infos:
        for data in ki.iterchildren(_X509_DATA):
            for c in data.iterchildren(_X509_CERTIFICATE):
                der = _b64_or_none(c.text or "")
                if der is not None:
                    certs.add(der)
    return certs


def _b64_or_none(text: str) -> bytes | None:
    """Base64 text of a signature element, or None when it is not (non-ASCII text included, which
    ``b64decode`` refuses with a plain ValueError rather than ``binascii.Error``)."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except ValueError:  # binascii.Error is a ValueError
        return None


def _algorithm_of(el: etree._Element) -> str:
    value = el.get("Algorithm")
    if not value:
        raise MalformedSignature(f"{etree.QName(el).localname} without Algorithm")
    return value


def _inclusive_prefixes(el: etree._Element) -> tuple[str, ...]:
    children = list(el)
    if not children:
        return ()
    if len(children) != 1 or children[0].tag != _INCLUSIVE_NS:
        raise MalformedSignature("unexpected content inside a canonicalisation transform")
    return tuple((children[0].get("PrefixList") or "").split())


def _parse_signature(signature: etree._Element, policy: AlgorithmPolicy) -> _Parsed:
    """Check the exact shape of ``ds:Signature`` and the algorithms; return what it claims."""
    if signature.tag != _SIGNATURE:
        raise MalformedSignature("not a ds:Signature element")
    allowed_children = {_SIGNED_INFO, _SIGNATURE_VALUE, _KEY_INFO}
    for child in signature:
        if child.tag not in allowed_children:
            # ds:Object is where XSW variants hide the original assertion; SAML and WSS never need it.
            raise MalformedSignature(f"unexpected element {etree.QName(child).localname} in ds:Signature")
    tags = [c.tag for c in signature]
    if tags.count(_SIGNED_INFO) != 1 or tags.count(_SIGNATURE_VALUE) != 1 or tags.count(_KEY_INFO) > 1:
        raise MalformedSignature("ds:Signature needs one SignedInfo, one SignatureValue, at most one KeyInfo")
    if tags[0] != _SIGNED_INFO:
        raise MalformedSignature("ds:SignedInfo must come first")
    info = signature[0]

    children = list(info)
    if len(children) < 3 or children[0].tag != _C14N_METHOD or children[1].tag != _SIGNATURE_METHOD:
        raise MalformedSignature("ds:SignedInfo must hold CanonicalizationMethod, SignatureMethod, Reference+")
    c14n = _algorithm_of(children[0])
    if c14n != alg.EXC_C14N:
        raise ForbiddenAlgorithm(f"canonicalisation {c14n} is not allowed")
    _inclusive_prefixes(children[0])
    method = _algorithm_of(children[1])
    if method not in policy.signature:
        raise ForbiddenAlgorithm(f"signature algorithm {method} is not allowed")
    if len(children[1]):
        raise MalformedSignature("unexpected content inside ds:SignatureMethod")

    refs: list[_Ref] = []
    for ref in children[2:]:
        if ref.tag != _REFERENCE:
            raise MalformedSignature("only ds:Reference may follow ds:SignatureMethod")
        uri = ref.get("URI")
        parts = list(ref)
        transforms: list[str] = []
        prefixes: tuple[str, ...] = ()
        if parts and parts[0].tag == _TRANSFORMS:
            for t in parts.pop(0):
                if t.tag != _TRANSFORM:
                    raise MalformedSignature("unexpected element in ds:Transforms")
                name = _algorithm_of(t)
                transforms.append(name)
                if name == alg.EXC_C14N:
                    prefixes = _inclusive_prefixes(t)
                elif len(t):
                    raise ForbiddenTransform(f"transform {name} with parameters is not allowed")
        if len(parts) != 2 or parts[0].tag != _DIGEST_METHOD or parts[1].tag != _DIGEST_VALUE:
            raise MalformedSignature("ds:Reference must hold Transforms?, DigestMethod, DigestValue")
        digest_method = _algorithm_of(parts[0])
        if digest_method not in policy.digest:
            raise ForbiddenAlgorithm(f"digest algorithm {digest_method} is not allowed")
        if uri is None:
            raise ReferenceMismatch("ds:Reference without URI")
        refs.append(_Ref(uri, tuple(transforms), prefixes, digest_method, parts[1].text or ""))
    return _Parsed(method, tuple(refs), tuple(c for c in signature if c.tag == _KEY_INFO))


_ID_ATTRIBUTES: Final = ("ID", "Id", "id", f"{{{WSU}}}Id", f"{{{XML_NS}}}id")


@functools.lru_cache(maxsize=16)
def _id_xpath(id_attr: str) -> etree.XPath:
    """All ID-like attributes of a document (plus ``id_attr``), in one XPath pass."""
    attrs = _ID_ATTRIBUTES if id_attr in _ID_ATTRIBUTES else (*_ID_ATTRIBUTES, id_attr)
    parts: list[str] = []
    namespaces: dict[str, str] = {}
    for a in attrs:
        local, ns = _split_clark(a)
        if ns is None:
            parts.append(f"//@{local}")
        else:
            prefix = f"n{len(namespaces)}"
            namespaces[prefix] = ns
            parts.append(f"//@{prefix}:{local}")
    return etree.XPath(" | ".join(parts), namespaces=namespaces)


def _resolve_ids(root: etree._Element, id_attr: str, wanted: dict[str, etree._Element]) -> None:
    """Refuse a document in which any ID-like value occurs twice; check each wanted ID names its element."""
    seen: set[str] = set()
    owners: dict[str, etree._Element] = {}
    result = _id_xpath(id_attr)(root)
    assert isinstance(result, list)
    for attr in result:
        value = str(attr)
        if value in seen:
            raise DuplicateId("an ID value occurs more than once in the document")
        seen.add(value)
        if value in wanted and isinstance(attr, etree._ElementUnicodeResult) and attr.attrname == id_attr:
            parent = attr.getparent()
            if parent is not None:
                owners[value] = parent
    for value, el in wanted.items():
        if owners.get(value) is not el:
            raise ReferenceMismatch("an ID does not resolve to the expected element in this document")


def _candidate_keys(
    trusted: Sequence[x509.Certificate], parsed: _Parsed, policy: AlgorithmPolicy
) -> list[x509.Certificate]:
    """Trusted, strong-enough certificates fitting the algorithm; those named in KeyInfo first."""
    fitting: list[x509.Certificate] = []
    weak: WeakKeyError | None = None
    for cert in trusted:
        public_key = cert.public_key()
        if not _key_fits(public_key, parsed.signature_method):
            continue
        try:
            check_key_strength(public_key, policy)
        except WeakKeyError as exc:
            weak = exc
            continue
        fitting.append(cert)
    if not fitting:
        if weak is not None:
            raise weak
        raise UntrustedKey("no trusted key fits the signature algorithm")
    if parsed.key_infos and len(fitting) > 1:
        hinted = _keyinfo_certs(parsed)
        fitting.sort(key=lambda c: c.public_bytes(serialization.Encoding.DER) not in hinted)
    return fitting


def _digests_match(signature: etree._Element, parsed: _Parsed, targets: dict[str, etree._Element]) -> bool:
    """Recompute the reference digests with lxml (failure path only): tells forged key from altered content."""
    for ref in parsed.references:
        target = targets[ref.uri[1:]]
        enveloped = alg.ENVELOPED in ref.transforms and signature.getparent() is target
        if enveloped:
            # Apply the enveloped-signature transform in place, then undo it exactly.
            index, tail, prev = target.index(signature), signature.tail, signature.getprevious()
            old = prev.tail if prev is not None else target.text
            signature.tail = None
            target.remove(signature)
            if prev is not None:
                prev.tail = (old or "") + (tail or "") or None
            else:
                target.text = (old or "") + (tail or "") or None
        try:
            data = etree.tostring(
                target,
                method="c14n",
                exclusive=True,
                with_comments=False,
                inclusive_ns_prefixes=list(ref.inclusive_prefixes) or None,
            )
        finally:
            if enveloped:
                if prev is not None:
                    prev.tail = old
                else:
                    target.text = old
                target.insert(index, signature)
                signature.tail = tail
        claimed = _b64_or_none(ref.digest_value)
        if claimed is None:
            return False
        if hashlib.new(alg.HASH_OF[ref.digest_method], data).digest() != claimed:
            return False
    return True


def _verify_core(
    signature: etree._Element,
    expected: Sequence[etree._Element],
    trusted: Sequence[x509.Certificate],
    *,
    id_attr: str,
    transforms: tuple[str, ...],
    policy: AlgorithmPolicy,
) -> x509.Certificate:
    """The one verification path: shape, references, IDs, algorithms, then xmlsec with each trusted key."""
    parsed = _parse_signature(signature, policy)
    ids: dict[str, etree._Element] = {}
    for el in expected:
        value = el.get(id_attr)
        if not value:
            raise ReferenceMismatch("the signed element has no ID")
        if value in ids:
            raise DuplicateId("two expected elements share an ID")
        ids[value] = el
    if len(parsed.references) != len(expected):
        raise ReferenceMismatch(f"{len(parsed.references)} references where {len(expected)} are expected")
    seen: set[str] = set()
    for ref in parsed.references:
        if not ref.uri.startswith("#") or ref.uri[1:] not in ids:
            raise ReferenceMismatch("a reference does not point at an expected element")
        if ref.uri in seen:
            raise ReferenceMismatch("the same element is referenced twice")
        seen.add(ref.uri)
        if ref.transforms != transforms:
            raise ForbiddenTransform("references must use exactly the expected transforms")

    _resolve_ids(signature.getroottree().getroot(), id_attr, ids)
    local, ns = _split_clark(id_attr)

    candidates = _candidate_keys(trusted, parsed, policy)
    ctx_transforms = [xmlsec.constants.TransformExclC14N]
    if alg.ENVELOPED in transforms:
        ctx_transforms.append(xmlsec.constants.TransformEnveloped)
    digests = [_XMLSEC_DIGESTS[d] for d in policy.digest if d in _XMLSEC_DIGESTS]
    sig_method = _XMLSEC_SIGNATURE_TRANSFORMS.get(parsed.signature_method)
    for cert in candidates:
        ctx = xmlsec.SignatureContext()
        for t in (*ctx_transforms, *digests):
            ctx.enable_reference_transform(t)
        # python-xmlsec has no constant for RSA-PSS; then the SignedInfo shape check above is the guard.
        if sig_method is not None:
            ctx.enable_signature_transform(xmlsec.constants.TransformExclC14N)
            ctx.enable_signature_transform(sig_method)
        try:
            for el in expected:
                ctx.register_id(el, local, ns)
        except xmlsec.Error:
            raise DuplicateId("the ID is already bound to another element of this document") from None
        ctx.key = xmlsec_public_key(cert)
        try:
            ctx.verify(signature)
        except xmlsec.Error:
            # VerificationError, or e.g. a signature length that does not fit this key: try the next one.
            continue
        return cert
    if _digests_match(signature, parsed, ids):
        raise UntrustedKey("the signature was not made by a trusted key")
    raise BadSignature("the signed content does not match its signature")


def verify_enveloped(
    element: etree._Element,
    trusted: Sequence[x509.Certificate],
    *,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
    id_attribute: str = "ID",
) -> etree._Element:
    """Verify the enveloped signature of ``element``; return the element it covers (``element`` itself).

    Callers must read only the returned element. Raises a :class:`SignatureError` subclass naming the
    defect; the key is always one of ``trusted``.
    """
    if not trusted:
        raise UntrustedKey("no trusted certificate configured")
    sigs = [c for c in element if c.tag == _SIGNATURE]
    if not sigs:
        raise MissingSignature("element is not signed")
    if len(sigs) > 1:
        raise MultipleSignatures("element has more than one signature")
    _verify_core(
        sigs[0],
        [element],
        trusted,
        id_attr=id_attribute,
        transforms=(alg.ENVELOPED, alg.EXC_C14N),
        policy=policy,
    )
    return element


def verify_references(
    signature: etree._Element,
    expected: Sequence[etree._Element],
    trusted: Sequence[x509.Certificate],
    *,
    id_attr_qname: str,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> x509.Certificate:
    """Verify a detached multi-reference signature covering exactly ``expected`` (exclusive C14N only).

    Returns the trusted certificate whose key verified it.
    """
    if not trusted:
        raise UntrustedKey("no trusted certificate configured")
    if not expected:
        raise ReferenceMismatch("no expected elements given")
    return _verify_core(signature, expected, trusted, id_attr=id_attr_qname, transforms=(alg.EXC_C14N,), policy=policy)


# --- raw signatures (HTTP-Redirect binding) -----------------------------------------------------------------


def _hash_for(algorithm: str) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | hashes.SHA1:
    return _HASHES[alg.HASH_OF[algorithm]]()


def sign_bytes(key: KeyPair, data: bytes, algorithm: str, *, policy: AlgorithmPolicy = DEFAULT_POLICY) -> bytes:
    """Sign raw bytes as XML-DSig would (ECDSA as r||s, PSS with salt = hash length)."""
    _check_signing(key, algorithm, None, policy)
    h = _hash_for(algorithm)
    pk = key.private_key
    if isinstance(pk, ec.EllipticCurvePrivateKey):
        r, s = utils.decode_dss_signature(pk.sign(data, ec.ECDSA(h)))
        size = (pk.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if algorithm in _PSS:
        return pk.sign(data, padding.PSS(padding.MGF1(h), h.digest_size), h)
    return pk.sign(data, padding.PKCS1v15(), h)


def verify_bytes(
    trusted: Sequence[x509.Certificate],
    data: bytes,
    signature: bytes,
    algorithm: str,
    *,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> x509.Certificate:
    """Verify a raw signature with one of ``trusted``; return the certificate that verified it."""
    if algorithm not in policy.signature:
        raise ForbiddenAlgorithm(f"signature algorithm {algorithm} is not allowed")
    h = _hash_for(algorithm)
    weak: WeakKeyError | None = None
    tried = False
    for cert in trusted:
        pub = cert.public_key()
        if not _key_fits(pub, algorithm):
            continue
        try:
            check_key_strength(pub, policy)
        except WeakKeyError as exc:
            weak = exc
            continue
        tried = True
        try:
            if isinstance(pub, ec.EllipticCurvePublicKey):
                size = (pub.curve.key_size + 7) // 8
                if len(signature) != 2 * size:
                    continue
                der = utils.encode_dss_signature(
                    int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
                )
                pub.verify(der, data, ec.ECDSA(h))
            elif isinstance(pub, rsa.RSAPublicKey):
                if algorithm in _PSS:
                    pub.verify(signature, data, padding.PSS(padding.MGF1(h), h.digest_size), h)
                else:
                    pub.verify(signature, data, padding.PKCS1v15(), h)
            else:
                continue
        except InvalidSignature:
            continue
        return cert
    if not tried and weak is not None:
        raise weak
    raise BadSignature("the signature does not verify with any trusted key")
