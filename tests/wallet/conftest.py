"""Fixtures of the wallet verifier tests: a PID-provider PKI (CA + issuer certificate whose
subjectAltName is the provider's ``iss``: the test PID provider's keys), a second, untrusted provider of
the same names, and the verifier's request-signing certificate, all made once per test session."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from certs.devpki import issue_certificate
from eid_gateway.wallet.trust import TrustList
from eid_gateway.wallet_sim.pid_provider import ProviderKeys
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
    provider = ProviderKeys.generate()
    foreign = ProviderKeys.generate()  # same names, other keys: not trusted
    return Pki(
        ca=provider.ca,
        issuer=provider.issuer,
        foreign_ca=foreign.ca,
        foreign_issuer=foreign.issuer,
        verifier=issue_certificate(provider.ca, "Test verifier (request signing)", server=False),
    )
