"""Loading and checking keys and certificates."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from saml import algorithms as A
from saml.errors import SignatureError
from saml.keys import (
    KeyLoadError,
    KeyPair,
    WeakKeyError,
    cert_b64,
    check_key_strength,
    generate_key_pair,
    key_pair_to_pem,
    load_certificate,
    load_certificates,
    load_key_pair,
    xmlsec_public_key,
)


def test_certificate_forms(ec256: KeyPair) -> None:
    cert = ec256.certificate
    pem = cert.public_bytes(serialization.Encoding.PEM)
    der = cert.public_bytes(serialization.Encoding.DER)
    b64 = cert_b64(cert)
    wrapped = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    for form in (pem, der, b64.encode(), wrapped, "  " + b64 + "\n"):
        assert load_certificate(form) == cert
    assert base64.b64decode(b64) == der


def test_not_a_certificate() -> None:
    for junk in (
        b"",
        b"hello",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"\x30\x03\x02\x01\x00",
    ):
        with pytest.raises(KeyLoadError):
            load_certificate(junk)


def test_pem_round_trip_with_password(rsa3072: KeyPair, ec256: KeyPair) -> None:
    key_pem, cert_pem = key_pair_to_pem(ec256)
    again = load_key_pair(key_pem, cert_pem + ec256.certificate.public_bytes(serialization.Encoding.PEM))
    assert again.certificate == ec256.certificate and again.chain == (ec256.certificate,)
    encrypted = rsa3072.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    _, rsa_cert = key_pair_to_pem(rsa3072)
    assert load_key_pair(encrypted, rsa_cert, b"pw").certificate == rsa3072.certificate
    with pytest.raises(KeyLoadError):
        load_key_pair(encrypted, rsa_cert, b"wrong")


def test_certificate_of_another_key(ec256: KeyPair, ec256_attacker: KeyPair) -> None:
    key_pem, _ = key_pair_to_pem(ec256)
    _, other_cert = key_pair_to_pem(ec256_attacker)
    with pytest.raises(KeyLoadError):
        load_key_pair(key_pem, other_cert)


def test_load_certificates_bundle(ec256: KeyPair, rsa3072: KeyPair) -> None:
    bundle = b"".join(k.certificate.public_bytes(serialization.Encoding.PEM) for k in (ec256, rsa3072))
    assert load_certificates(bundle) == [ec256.certificate, rsa3072.certificate]
    with pytest.raises(KeyLoadError):
        load_certificates(b"nothing here")


def test_generate_kinds() -> None:
    assert generate_key_pair("ec-p384").private_key.key_size == 384
    with pytest.raises(ValueError):
        generate_key_pair("dsa-1024")


def test_key_strength(rsa2048: KeyPair, rsa3072: KeyPair, ec256: KeyPair) -> None:
    check_key_strength(rsa3072.certificate.public_key(), A.DEFAULT_POLICY)
    check_key_strength(ec256.certificate.public_key(), A.DEFAULT_POLICY)
    with pytest.raises(WeakKeyError):
        check_key_strength(rsa2048.certificate.public_key(), A.DEFAULT_POLICY)
    check_key_strength(rsa2048.certificate.public_key(), A.LEGACY_POLICY)
    assert issubclass(WeakKeyError, SignatureError)


def test_weak_curve() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(WeakKeyError):
        check_key_strength(ec.generate_private_key(ec.SECP224R1()).public_key(), A.DEFAULT_POLICY)
    with pytest.raises(WeakKeyError):
        check_key_strength(ec.generate_private_key(ec.SECP256K1()).public_key(), A.DEFAULT_POLICY)


def test_xmlsec_keys_are_cached(ec256: KeyPair) -> None:
    assert ec256.xmlsec_key is ec256.xmlsec_key
    assert xmlsec_public_key(ec256.certificate) is xmlsec_public_key(ec256.certificate)


def test_legacy_policy_keeps_sha1_out() -> None:
    assert A.SHA1 not in A.LEGACY_POLICY.digest and A.RSA_SHA1 not in A.LEGACY_POLICY.signature
    assert A.AES128_CBC in A.LEGACY_POLICY.data_encryption and A.AES128_CBC not in A.DEFAULT_POLICY.data_encryption
    assert A.RSA_1_5 in A.LEGACY_POLICY.key_transport and A.RSA_1_5 not in A.DEFAULT_POLICY.key_transport
