"""The trust list: x5c chains must lead to a configured PID-provider CA (eid_gateway/wallet/trust.py)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certs.devpki import issue_certificate
from eid_gateway.wallet.errors import PresentationRejected, RejectReason
from eid_gateway.wallet.trust import TrustList, TrustListError, x5c_of

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
