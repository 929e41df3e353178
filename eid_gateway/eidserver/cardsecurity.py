"""EF.CardSecurity: a CMS SignedData (RFC 5652) over the chip's SecurityInfos (TR-03110 part 3, A.1).

Chip Authentication only proves that the chip holds the private key whose public key the server uses;
that public key must therefore come from EF.CardSecurity, whose signature (by a document signer) ties it
to a genuine document. Here the structure is parsed, the signed-attribute message digest is checked
against the SecurityInfos, and the signer's signature is verified with the embedded document-signer
certificate whenever `cryptography` can load it. Trusting that certificate (a CSCA chain) is a
deployment question: :attr:`CardSecurity.signer` is returned for that check. The SecurityInfos set itself
is parsed by :mod:`tr03110.security_infos` (the one parser of that structure, shared with EF.CardAccess).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, univ
from pyasn1_modules import rfc5280, rfc5652

from tr03110 import security_infos
from tr03110.oids import ID_CA_ECDH, ID_PK_ECDH, ID_SECURITY_OBJECT, STANDARDIZED_DOMAIN_PARAMETERS
from tr03110.security_infos import ChipAuthenticationInfo, SecurityInfosError, UnknownInfo

_ID_SIGNED_DATA: Final = "1.2.840.113549.1.7.2"
_ID_MESSAGE_DIGEST: Final = "1.2.840.113549.1.9.4"
_ID_CONTENT_TYPE: Final = "1.2.840.113549.1.9.3"
_BRAINPOOL_P256R1_ID: Final = 13
_BRAINPOOL_P256R1_OID: Final = "1.3.36.3.3.2.8.1.1.7"
_MAX_SECURITY_INFOS: Final = 65536  # a sanity bound only: the signed content of a file the card bounds
_DIGESTS: Final[dict[str, Any]] = {
    "1.3.14.3.2.26": hashlib.sha1,
    "2.16.840.1.101.3.4.2.4": hashlib.sha224,
    "2.16.840.1.101.3.4.2.1": hashlib.sha256,
    "2.16.840.1.101.3.4.2.2": hashlib.sha384,
    "2.16.840.1.101.3.4.2.3": hashlib.sha512,
}
_SIG_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    "1.2.840.10045.4.3.2": hashes.SHA256(),
    "1.2.840.10045.4.3.3": hashes.SHA384(),
    "1.2.840.10045.4.3.4": hashes.SHA512(),
    "1.2.840.113549.1.1.11": hashes.SHA256(),
    "1.2.840.113549.1.1.12": hashes.SHA384(),
    "1.2.840.113549.1.1.13": hashes.SHA512(),
}


class CardSecurityError(ValueError):
    """EF.CardSecurity is malformed, its digest does not match, or its signature does not verify."""


class _CaPublicKeyInfo(univ.Sequence):  # type: ignore[misc]  # pyasn1 ships no types
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("protocol", univ.ObjectIdentifier()),
        namedtype.NamedType("chipAuthenticationPublicKey", rfc5280.SubjectPublicKeyInfo()),
        namedtype.OptionalNamedType("keyId", univ.Integer()),
    )


@dataclass(frozen=True)
class ChipAuthenticationKey:
    key_id: int | None
    point: bytes  # uncompressed, brainpoolP256r1


@dataclass(frozen=True)
class CardSecurity:
    security_infos: bytes
    keys: tuple[ChipAuthenticationKey, ...]
    ca_infos: tuple[ChipAuthenticationInfo, ...]
    signer: x509.Certificate | None
    #: True: signature verified with the embedded signer certificate; False: that certificate's key
    #: could not be loaded (e.g. explicit curve parameters), only the digest was checked.
    signature_verified: bool

    def key(self, key_id: int | None) -> ChipAuthenticationKey:
        """The CA key with ``key_id`` (or the only one when ``key_id`` is ``None``)."""
        if key_id is None and len(self.keys) == 1:
            return self.keys[0]
        for k in self.keys:
            if k.key_id == key_id:
                return k
        raise CardSecurityError(f"no Chip Authentication key with keyId {key_id}")


def _decode(data: bytes, spec: Any, what: str) -> Any:
    try:
        value, rest = der_decoder.decode(data, asn1Spec=spec)
    except (PyAsn1Error, OverflowError):  # OverflowError: a length field wider than 2**63 (pyasn1#107)
        raise CardSecurityError(f"{what} is not valid DER") from None
    if rest:
        raise CardSecurityError(f"trailing bytes after {what}")
    return value


def parse_security_infos(data: bytes) -> tuple[tuple[ChipAuthenticationKey, ...], tuple[ChipAuthenticationInfo, ...]]:
    """The Chip Authentication keys (brainpoolP256r1 only) and ECDH CA infos of a SecurityInfos set.

    ChipAuthenticationPublicKeyInfo is only in EF.CardSecurity, so the shared parser keeps it as an
    :class:`UnknownInfo`; its public key is decoded here.
    """
    try:
        infos = security_infos.parse_security_infos(
            data, source="EF.CardSecurity content", max_size=_MAX_SECURITY_INFOS
        )
    except SecurityInfosError as exc:
        raise CardSecurityError(str(exc)) from None
    keys: list[ChipAuthenticationKey] = []
    for entry in infos.entries:
        if isinstance(entry, UnknownInfo) and entry.protocol == ID_PK_ECDH:
            pk = _decode(entry.der, _CaPublicKeyInfo(), "ChipAuthenticationPublicKeyInfo")
            alg = pk["chipAuthenticationPublicKey"]["algorithm"]
            if not _is_brainpool_p256(str(alg["algorithm"]), alg["parameters"]):
                continue  # keys on other curves are not usable here
            point = pk["chipAuthenticationPublicKey"]["subjectPublicKey"].asOctets()
            key_id = int(pk["keyId"]) if pk["keyId"].isValue else None
            keys.append(ChipAuthenticationKey(key_id, point))
    cas = tuple(ca for ca in infos.chip_authentication if ca.protocol.startswith(ID_CA_ECDH + "."))
    return tuple(keys), cas


def _is_brainpool_p256(algorithm: str, params: Any) -> bool:
    """Domain parameters: TR-03110's standardized ID 13, or id-ecPublicKey with the named curve."""
    if not params.isValue:
        return False
    if algorithm == STANDARDIZED_DOMAIN_PARAMETERS:
        return int(_decode(bytes(params), univ.Integer(), "domain parameter ID")) == _BRAINPOOL_P256R1_ID
    if algorithm == "1.2.840.10045.2.1":
        try:
            curve = _decode(bytes(params), univ.ObjectIdentifier(), "named curve")
        except CardSecurityError:
            return False  # explicit parameters are not accepted for the CA key
        return str(curve) == _BRAINPOOL_P256R1_OID
    return False


def _verify(cert: x509.Certificate, signed: bytes, signature: bytes, sig_oid: str) -> bool:
    algorithm = _SIG_HASHES.get(sig_oid)
    if algorithm is None:
        raise CardSecurityError(f"unsupported signature algorithm {sig_oid}")
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return False  # e.g. explicit EC parameters: digest checked, signature left to a CSCA tool
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            from cryptography.hazmat.primitives.asymmetric import padding

            key.verify(signature, signed, padding.PKCS1v15(), algorithm)
        else:
            raise CardSecurityError("unsupported document signer key type")
    except InvalidSignature:
        raise CardSecurityError("EF.CardSecurity signature does not verify") from None
    return True


def parse_card_security(data: bytes) -> CardSecurity:
    """Parse and check EF.CardSecurity; raises :class:`CardSecurityError`."""
    info = _decode(data, rfc5652.ContentInfo(), "EF.CardSecurity")
    if str(info["contentType"]) != _ID_SIGNED_DATA:
        raise CardSecurityError("EF.CardSecurity is not a CMS SignedData")
    sd = _decode(bytes(info["content"]), rfc5652.SignedData(), "SignedData")
    encap = sd["encapContentInfo"]
    if str(encap["eContentType"]) != ID_SECURITY_OBJECT:
        raise CardSecurityError("SignedData does not hold an id-SecurityObject")
    content = bytes(encap["eContent"])
    if len(sd["signerInfos"]) != 1:
        raise CardSecurityError("EF.CardSecurity must have exactly one signer")
    si = sd["signerInfos"][0]
    digest_fn = _DIGESTS.get(str(si["digestAlgorithm"]["algorithm"]))
    if digest_fn is None:
        raise CardSecurityError("unsupported digest algorithm")
    attrs = si["signedAttrs"]
    if not attrs.isValue:
        raise CardSecurityError("SignerInfo without signed attributes")
    digest: bytes | None = None
    content_type: str | None = None
    for attr in attrs:
        kind = str(attr["attrType"])
        if kind == _ID_MESSAGE_DIGEST:
            digest = bytes(_decode(bytes(attr["attrValues"][0]), univ.OctetString(), "messageDigest"))
        elif kind == _ID_CONTENT_TYPE:
            content_type = str(_decode(bytes(attr["attrValues"][0]), univ.ObjectIdentifier(), "contentType"))
    if digest is None or content_type != ID_SECURITY_OBJECT:
        raise CardSecurityError("signed attributes lack messageDigest or the right contentType")
    if digest != digest_fn(content).digest():
        raise CardSecurityError("messageDigest does not match the SecurityInfos")
    signer: x509.Certificate | None = None
    if sd["certificates"].isValue:
        for choice in sd["certificates"]:
            if choice.getName() == "certificate":
                try:
                    signer = x509.load_der_x509_certificate(bytes(der_encoder.encode(choice["certificate"])))
                except ValueError:
                    signer = None
                break
    verified = False
    if signer is not None:
        # The signature covers the DER SET OF of the signed attributes (RFC 5652, 5.4).
        signed = bytes(der_encoder.encode(attrs, asn1Spec=rfc5652.SignedAttributes()))
        verified = _verify(signer, signed, si["signature"].asOctets(), str(si["signatureAlgorithm"]["algorithm"]))
    keys, cas = parse_security_infos(content)
    if not keys:
        raise CardSecurityError("EF.CardSecurity holds no brainpoolP256r1 Chip Authentication key")
    return CardSecurity(content, keys, cas, signer, verified)
