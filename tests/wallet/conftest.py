"""Fixtures of the wallet verifier tests: a PID-provider PKI (CA + issuer certificate), a second,
untrusted CA, the verifier's request-signing certificate, all made per test session with certs.devpki."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from certs.devpki import generate_ca, issue_certificate
from eid_gateway.wallet.trust import TrustList
from saml.keys import KeyPair


@dataclass(frozen=True)
class Pki:
    """A PID provider's CA and issuer key, a foreign CA with an issuer of the same name, the verifier key."""

    ca: KeyPair
    issuer: KeyPair
    foreign_ca: KeyPair
    foreign_issuer: KeyPair
    verifier: KeyPair

    @property
    def trust(self) -> TrustList:
        return TrustList([self.ca.certificate])


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca = generate_ca("Test PID Provider CA")
    foreign = generate_ca("Test PID Provider CA")  # same name, other key: not trusted
    return Pki(
        ca=ca,
        issuer=issue_certificate(ca, "Test PID Provider", server=False),
        foreign_ca=foreign,
        foreign_issuer=issue_certificate(foreign, "Test PID Provider", server=False),
        verifier=issue_certificate(ca, "Test verifier (request signing)", server=False),
    )
