"""The trust list: x5c chains must lead to a configured PID-provider CA (eid_gateway/wallet/trust.py)."""

from __future__ import annotations

import base64
import datetime
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from certs.devpki import issue_certificate
from eid_gateway.wallet.errors import PresentationRejected, RejectReason
from eid_gateway.wallet.trust import TrustList, TrustListError, x5c_of
from saml.keys import KeyPair

from .conftest import Pki


def test_a_chain_to_the_anchor_gives_the_leaf(pki: Pki) -> None:
    now = int(time.time())
    assert pki.trust.verify_x5c(x5c_of([pki.issuer.certificate]), now) == pki.issuer.certificate
    assert pki.trust.verify_x5c(x5c_of([pki.issuer.certificate, pki.ca.certificate]), now) == pki.issuer.certificate


def test_a_chain_to_another_ca_of_the_same_name_is_untrusted(pki: Pki) -> None:
    chain = x5c_of([pki.foreign_issuer.certificate, pki.foreign_ca.certificate])
    with pytest.raises(PresentationRejected) as caught:
        pki.trust.verify_x5c(chain, int(time.time()))
    assert caught.value.reason is RejectReason.UNTRUSTED_ISSUER


def test_an_expired_or_not_yet_valid_issuer_certificate_is_untrusted(pki: Pki) -> None:
    now = int(time.time())
    for when in (now + 3 * 365 * 86400, now - 86400):
        with pytest.raises(PresentationRejected) as caught:
            pki.trust.verify_x5c(x5c_of([pki.issuer.certificate]), when)
        assert caught.value.reason is RejectReason.UNTRUSTED_ISSUER


def test_a_leaf_cannot_act_as_a_ca(pki: Pki) -> None:
    """A certificate issued by the issuer's (non-CA) key does not chain, even with the issuer in x5c."""
    fake_ca = type(pki.issuer)(pki.issuer.private_key, pki.issuer.certificate)
    sub = issue_certificate(fake_ca, "Sub issuer", server=False)
    with pytest.raises(PresentationRejected) as caught:
        pki.trust.verify_x5c(x5c_of([sub.certificate, pki.issuer.certificate]), int(time.time()))
    assert caught.value.reason is RejectReason.UNTRUSTED_ISSUER


@pytest.mark.parametrize("x5c", [None, [], "abc", [1], ["!!"], [base64.b64encode(b"junk").decode()], ["x"] * 6])
def test_a_malformed_x5c_is_malformed(x5c: object) -> None:
    from certs.devpki import generate_ca

    trust = TrustList([generate_ca("any").certificate])
    with pytest.raises(PresentationRejected) as caught:
        trust.verify_x5c(x5c, int(time.time()))
    assert caught.value.reason is RejectReason.MALFORMED


def test_the_trust_list_file_is_pem(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "trust.pem"
    path.write_bytes(
        pki.ca.certificate.public_bytes(Encoding.PEM) + pki.foreign_ca.certificate.public_bytes(Encoding.PEM)
    )
    assert len(TrustList.from_file(path).anchors) == 2
    path.write_bytes(b"not pem")
    with pytest.raises(TrustListError):
        TrustList.from_file(path)
    with pytest.raises(TrustListError):
        TrustList([])


def test_a_remembered_chain_is_still_refused_outside_its_validity(pki: Pki) -> None:
    """The trust list remembers validated chains; time still decides (the same TrustList object)."""
    trust = pki.trust
    x5c = x5c_of([pki.issuer.certificate, pki.ca.certificate])
    now = int(time.time())
    assert trust.verify_x5c(x5c, now) == pki.issuer.certificate
    assert trust.verify_x5c(x5c, now + 60) == pki.issuer.certificate  # from memory
    for when in (now + 3 * 365 * 86400, now - 86400):
        with pytest.raises(PresentationRejected) as caught:
            trust.verify_x5c(x5c, when)
        assert caught.value.reason is RejectReason.UNTRUSTED_ISSUER
    # another chain is not taken for the remembered one
    with pytest.raises(PresentationRejected):
        trust.verify_x5c(x5c_of([pki.foreign_issuer.certificate, pki.ca.certificate]), now)


def _ca(name: str, issuer: KeyPair | None = None, path_length: int | None = None) -> KeyPair:
    """A CA certificate: self-signed root (``issuer`` None) or an intermediate under ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer = issuer.private_key if issuer is not None else key
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    return KeyPair(key, builder.sign(signer, hashes.SHA256()))  # type: ignore[arg-type]


def test_a_chain_through_an_intermediate_ca() -> None:
    """Root anchor <- intermediate <- issuer: the intermediate must travel in x5c; the root need not."""
    root = _ca("Test PID root")
    intermediate = _ca("Test PID intermediate", root, path_length=0)
    signer = issue_certificate(intermediate, "Test PID signer", server=False)
    trust = TrustList([root.certificate])
    now = int(time.time())
    assert trust.verify_x5c(x5c_of([signer.certificate, intermediate.certificate]), now) == signer.certificate
    assert trust.verify_x5c(x5c_of([signer.certificate, intermediate.certificate, root.certificate]), now)
    with pytest.raises(PresentationRejected) as caught:  # the intermediate missing: no path
        trust.verify_x5c(x5c_of([signer.certificate]), now)
    assert caught.value.reason is RejectReason.UNTRUSTED_ISSUER
    # the intermediate's path length 0: a CA under it cannot sign
    sub_ca = _ca("Test PID sub-CA", intermediate)
    deeper = issue_certificate(sub_ca, "Test PID deeper signer", server=False)
    with pytest.raises(PresentationRejected) as caught:
        trust.verify_x5c(x5c_of([deeper.certificate, sub_ca.certificate, intermediate.certificate]), now)
    assert caught.value.reason is RejectReason.UNTRUSTED_ISSUER
