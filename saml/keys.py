"""Key pairs and certificates for signing and decryption, with the xmlsec key objects cached.

Parsing PEM and building an ``xmlsec.Key`` costs far more than an ECDSA signature, so a :class:`KeyPair`
builds its xmlsec key once, and trusted certificates get their xmlsec key from a small cache keyed by
the certificate's SHA-256 fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Final

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from saml.algorithms import DEFAULT_POLICY, AlgorithmPolicy
from saml.errors import SignatureError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeyLoadError(SignatureError):
    """Key or certificate material could not be loaded (not PEM/DER, wrong password, unsupported type)."""

    code = "key_invalid"


class WeakKeyError(SignatureError):
    """A key is shorter / on a weaker curve than the policy allows (BSI TR-02102)."""

    code = "weak_key"


class ExternalKey:
    """Marks a private key held outside this process (an HSM through PKCS#11): it signs through its
    ``sign`` method only and cannot be exported, so xmlsec never gets it (see :mod:`saml.dsig`)."""


@dataclass(frozen=True)
class KeyPair:
    """A private key with its certificate (and optional chain up to, not including, a trust anchor)."""

    private_key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise KeyLoadError("only RSA and EC private keys are supported")
        mine = self.private_key.public_key().public_numbers()
        theirs = self.certificate.public_key()
        if not isinstance(theirs, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)) or (theirs.public_numbers() != mine):
            raise KeyLoadError("the certificate does not belong to the private key")

    @property
    def is_ec(self) -> bool:
        return isinstance(self.private_key, ec.EllipticCurvePrivateKey)

    @cached_property
    def fingerprint(self) -> bytes:
        """SHA-256 of the certificate's DER encoding."""
        return self.certificate.fingerprint(hashes.SHA256())

    @cached_property
    def xmlsec_key(self) -> xmlsec.Key:
        """The private key as an xmlsec key, built once.

        xmlsec copies the key into every context it is assigned to, so sharing it is safe. The
        certificate is deliberately not attached: copying X509 data costs more than an ECDSA signature,
        and ``ds:KeyInfo`` is written by :mod:`saml.dsig` itself.
        """
        if isinstance(self.private_key, ExternalKey):
            raise KeyLoadError("the private key is held in a token; it signs through saml.dsig only")
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPkcs8Pem)


# --- loading ------------------------------------------------------------------------------------------


def load_certificate(data: bytes | str) -> x509.Certificate:
    """One certificate from PEM, DER, or the bare base64 body found in ``ds:X509Certificate``."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
    stripped = raw.strip()
    try:
        if stripped.startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(stripped)
        if stripped[:1] == b"\x30":
            return x509.load_der_x509_certificate(stripped)
        der = base64.b64decode(b"".join(stripped.split()), validate=True)
        return x509.load_der_x509_certificate(der)
    except (ValueError, binascii.Error) as exc:
        raise KeyLoadError(f"not a certificate: {type(exc).__name__}") from None


def load_certificates(pem_bundle: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order; an empty or certificate-less bundle is an error."""
    try:
        certs = x509.load_pem_x509_certificates(pem_bundle)
    except ValueError:
        raise KeyLoadError("no certificate in PEM bundle") from None
    return list(certs)


def load_key_pair(key_pem: bytes, cert_pem: bytes, password: bytes | None = None) -> KeyPair:
    """A key pair from a PEM private key and a PEM certificate (further certificates become the chain)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=password)
    except (ValueError, TypeError) as exc:
        raise KeyLoadError(f"cannot load private key: {type(exc).__name__}") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise KeyLoadError("only RSA and EC private keys are supported")
    certs = load_certificates(cert_pem)
    return KeyPair(key, certs[0], tuple(certs[1:]))


def key_pair_to_pem(kp: KeyPair) -> tuple[bytes, bytes]:
    """(unencrypted PKCS#8 key PEM, certificate + chain PEM)."""
    key = kp.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    certs = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (kp.certificate, *kp.chain))
    return key, certs


def cert_b64(cert: x509.Certificate) -> str:
    """Base64 of the DER certificate, one line, as written into ``ds:X509Certificate``."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


_CURVES: Final[dict[str, ec.EllipticCurve]] = {
    "ec-p256": ec.SECP256R1(),
    "ec-p384": ec.SECP384R1(),
    "ec-p521": ec.SECP521R1(),
    "ec-bp256": ec.BrainpoolP256R1(),
    "ec-bp384": ec.BrainpoolP384R1(),
}
_RSA_BITS: Final[dict[str, int]] = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}


def certificate_builder(
    subject: str | x509.Name,
    public_key: CertificatePublicKeyTypes,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    issuer: x509.Name | None = None,
) -> x509.CertificateBuilder:
    """A builder with subject (a common name, or a whole name), issuer (the subject itself unless given:
    self-signed), public key, a random serial number and the validity; the caller adds extensions and signs."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]) if isinstance(subject, str) else subject
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def self_signed_builder(common_name: str, public_key: CertificatePublicKeyTypes, days: int) -> x509.CertificateBuilder:
    """:func:`certificate_builder` for a self-signed certificate valid for ``days`` from five minutes ago (a
    little clock skew of whoever checks it at once)."""
    now = datetime.datetime.now(datetime.UTC)
    return certificate_builder(
        common_name,
        public_key,
        not_before=now - datetime.timedelta(minutes=5),
        not_after=now + datetime.timedelta(days=days),
    )


def key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_agreement: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """A KeyUsage extension with only the usages given as True (content commitment, data encipherment and
    encipher/decipher only are never set here)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def generate_key_pair(kind: str = "ec-p256", common_name: str = "eid-gateway", days: int = 365) -> KeyPair:
    """A fresh key with a self-signed certificate (tests, first start, development).

    ``kind``: ``ec-p256``, ``ec-p384``, ``ec-p521``, ``ec-bp256``, ``ec-bp384``, ``rsa-3072``,
    ``rsa-4096`` (``rsa-2048`` exists for legacy-interop tests only).
    """
    key: PrivateKey
    if kind in _CURVES:
        key = ec.generate_private_key(_CURVES[kind])
    elif kind in _RSA_BITS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[kind])
    else:
        raise ValueError(f"unknown key kind {kind!r}")
    hash_alg: hashes.SHA256 | hashes.SHA384 = hashes.SHA384() if kind in ("ec-p384", "ec-bp384") else hashes.SHA256()
    usage = key_usage(
        digital_signature=True,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        key_agreement=isinstance(key, ec.EllipticCurvePrivateKey),
    )
    cert = (
        self_signed_builder(common_name, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hash_alg)
    )
    return KeyPair(key, cert)


# --- strength and trusted-key cache ---------------------------------------------------------------------


def check_key_strength(public_key: object, policy: AlgorithmPolicy = DEFAULT_POLICY) -> None:
    """Raise :class:`WeakKeyError` unless the key is RSA >= ``min_rsa_bits`` or EC on an allowed curve."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < policy.min_rsa_bits:
            raise WeakKeyError(f"RSA key of {public_key.key_size} bits; at least {policy.min_rsa_bits} required")
        return
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = public_key.curve
        if curve.name not in policy.curves or curve.key_size < policy.min_ec_bits:
            raise WeakKeyError(f"EC curve {curve.name} is not allowed")
        return
    raise WeakKeyError(f"key type {type(public_key).__name__} is not allowed")


_CACHE_SIZE: Final = 256
_cache: OrderedDict[x509.Certificate, xmlsec.Key] = OrderedDict()
_cache_lock = threading.Lock()


def xmlsec_public_key(cert: x509.Certificate) -> xmlsec.Key:
    """The xmlsec public key of a trusted certificate, from a small LRU keyed by the certificate.

    Only the public key is loaded (no X509 data): it is all verification needs, and xmlsec copies a key
    with X509 data much more slowly into each context.
    """
    # x509.Certificate hashes and compares by its DER encoding, so equal certificates share an entry.
    with _cache_lock:
        key = _cache.get(cert)
        if key is not None:
            _cache.move_to_end(cert)
            return key
    spki = cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    key = xmlsec.Key.from_memory(spki, xmlsec.constants.KeyDataFormatPem)
    with _cache_lock:
        _cache[cert] = key
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return key
