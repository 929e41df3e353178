"""sign_bytes / verify_bytes: the HTTP-Redirect binding's signature over the raw query string."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from saml import algorithms as A
from saml.dsig import BadSignature, ForbiddenAlgorithm, sign_bytes, verify_bytes
from saml.keys import KeyPair, WeakKeyError, generate_key_pair

QUERY = b"SAMLRequest=fZJNb4MwDIb%2FCsodSGgHrVWQOnWa&RelayState=abc&SigAlg=http%3A%2F%2Fwww.w3.org"


@pytest.mark.parametrize("algorithm", [A.RSA_SHA256, A.RSA_SHA384, A.RSA_SHA512, A.RSA_PSS_SHA256, A.RSA_PSS_SHA512])
def test_rsa_round_trip(rsa3072: KeyPair, rsa3072_attacker: KeyPair, algorithm: str) -> None:
    sig = sign_bytes(rsa3072, QUERY, algorithm)
    assert len(sig) == 384
    trusted = [rsa3072_attacker.certificate, rsa3072.certificate]
    assert verify_bytes(trusted, QUERY, sig, algorithm) == rsa3072.certificate


@pytest.mark.parametrize(
    ("kind", "algorithm", "size"),
    [
        ("ec-p256", A.ECDSA_SHA256, 64),
        ("ec-p384", A.ECDSA_SHA384, 96),
        ("ec-bp256", A.ECDSA_SHA256, 64),
    ],
)
def test_ecdsa_round_trip_raw_r_s(kind: str, algorithm: str, size: int) -> None:
    key = generate_key_pair(kind)
    sig = sign_bytes(key, QUERY, algorithm)
    assert len(sig) == size  # XML-DSig form r||s, not DER
    assert verify_bytes([key.certificate], QUERY, sig, algorithm) == key.certificate


def test_pss_interoperates_with_cryptography(rsa3072: KeyPair) -> None:
    assert isinstance(rsa3072.private_key, rsa.RSAPrivateKey)
    sig = rsa3072.private_key.sign(QUERY, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert verify_bytes([rsa3072.certificate], QUERY, sig, A.RSA_PSS_SHA256) == rsa3072.certificate


def test_query_altered(ec256: KeyPair) -> None:
    sig = sign_bytes(ec256, QUERY, A.ECDSA_SHA256)
    with pytest.raises(BadSignature):
        verify_bytes([ec256.certificate], QUERY.replace(b"abc", b"abd"), sig, A.ECDSA_SHA256)


def test_signed_by_another_key(ec256: KeyPair, ec256_attacker: KeyPair) -> None:
    sig = sign_bytes(ec256_attacker, QUERY, A.ECDSA_SHA256)
    with pytest.raises(BadSignature):
        verify_bytes([ec256.certificate], QUERY, sig, A.ECDSA_SHA256)


def test_der_encoded_ecdsa_refused(ec256: KeyPair) -> None:
    assert isinstance(ec256.private_key, ec.EllipticCurvePrivateKey)
    der = ec256.private_key.sign(QUERY, ec.ECDSA(hashes.SHA256()))
    utils.decode_dss_signature(der)  # a genuine DER signature
    with pytest.raises(BadSignature):
        verify_bytes([ec256.certificate], QUERY, der, A.ECDSA_SHA256)


def test_rsa_sha1_sigalg(rsa3072: KeyPair) -> None:
    with pytest.raises(ForbiddenAlgorithm):
        sign_bytes(rsa3072, QUERY, A.RSA_SHA1)
    assert isinstance(rsa3072.private_key, rsa.RSAPrivateKey)
    sig = rsa3072.private_key.sign(QUERY, padding.PKCS1v15(), hashes.SHA1())
    with pytest.raises(ForbiddenAlgorithm):
        verify_bytes([rsa3072.certificate], QUERY, sig, A.RSA_SHA1)


def test_unknown_sigalg(rsa3072: KeyPair) -> None:
    with pytest.raises(ForbiddenAlgorithm):
        verify_bytes([rsa3072.certificate], QUERY, b"x", "urn:example:none")


def test_rsa2048_key(rsa2048: KeyPair) -> None:
    sig = sign_bytes(rsa2048, QUERY, A.RSA_SHA256, policy=A.LEGACY_POLICY)
    with pytest.raises(WeakKeyError):
        verify_bytes([rsa2048.certificate], QUERY, sig, A.RSA_SHA256)
    assert verify_bytes([rsa2048.certificate], QUERY, sig, A.RSA_SHA256, policy=A.LEGACY_POLICY) == rsa2048.certificate


def test_algorithm_key_type_confusion(rsa3072: KeyPair, ec256: KeyPair) -> None:
    sig = sign_bytes(rsa3072, QUERY, A.RSA_SHA256)
    with pytest.raises(BadSignature):  # an ECDSA SigAlg never reaches the RSA key
        verify_bytes([rsa3072.certificate, ec256.certificate], QUERY, sig, A.ECDSA_SHA256)
