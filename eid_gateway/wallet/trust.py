"""The trust list: the PID-provider certificates (anchors) a credential's ``x5c`` chain must lead to.

Path validation is cryptography's RFC 5280 verifier (``x509.verification``): signatures, validity at
``now``, basicConstraints / keyUsage of the CA certificates (Web PKI CA profile). The end-entity profile
is left open (a PID provider's signing certificate carries no TLS key usages), and the chain is looked
at only through the leaf's public key, which then has to verify the credential's signature.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

from eid_gateway.wallet.errors import PresentationRejected, RejectReason

#: Longer x5c headers are refused before any parsing (a PID chain is leaf + one or two CAs).
MAX_CHAIN = 5
#: Validated chains remembered (issuers are few; the memory is dropped whole when full).
MAX_VALIDATED = 256


class TrustListError(ValueError):
    """The trust list file holds no usable certificate."""


def parse_x5c(x5c: object) -> list[x509.Certificate]:
    """The certificates of a JOSE ``x5c`` header (RFC 7515 §4.1.6: standard base64 DER, leaf first)."""
    if not isinstance(x5c, list) or not x5c or len(x5c) > MAX_CHAIN:
        raise PresentationRejected(RejectReason.MALFORMED, "x5c must be a list of 1..5 certificates")
    certs = []
    for entry in x5c:
        if not isinstance(entry, str):
            raise PresentationRejected(RejectReason.MALFORMED, "x5c entry is not a string")
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode(entry, validate=True)))
        except (ValueError, binascii.Error):
            raise PresentationRejected(RejectReason.MALFORMED, "x5c entry is not a DER certificate") from None
    return certs


def x5c_of(chain: Sequence[x509.Certificate]) -> list[str]:
    """The ``x5c`` header value for ``chain`` (leaf first)."""
    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in chain]


class TrustList:
    """The anchors credentials (and status lists) are checked against."""

    def __init__(self, anchors: Sequence[x509.Certificate]) -> None:
        if not anchors:
            raise TrustListError("the trust list holds no certificate")
        self.anchors: tuple[x509.Certificate, ...] = tuple(anchors)
        self._store = Store(list(self.anchors))
        # x5c -> (leaf, the validity window common to the whole chain): a chain validated once stays
        # valid inside that window (nothing else of path validation depends on time)
        self._validated: dict[tuple[str, ...], tuple[x509.Certificate, int, int]] = {}

    @classmethod
    def from_pem(cls, data: bytes) -> TrustList:
        """From concatenated PEM certificates."""
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise TrustListError(f"not PEM certificates: {exc}") from None
        return cls(certs)

    @classmethod
    def from_file(cls, path: Path | str) -> TrustList:
        """From a PEM file (the ``[wallet] trust_list`` setting)."""
        return cls.from_pem(Path(path).read_bytes())

    def verify_x5c(self, x5c: object, now: int) -> x509.Certificate:
        """The leaf certificate of ``x5c`` once its chain leads to an anchor, valid at ``now`` (Unix s).

        Raises :class:`PresentationRejected` (MALFORMED for an unreadable header, UNTRUSTED_ISSUER for
        a chain that does not validate).
        """
        if isinstance(x5c, list) and all(isinstance(c, str) for c in x5c):
            known = self._validated.get(tuple(x5c))
            if known is not None and known[1] <= now <= known[2]:
                return known[0]
        certs = parse_x5c(x5c)
        leaf, intermediates = certs[0], certs[1:]
        when = datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(when)
            .max_chain_depth(MAX_CHAIN)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            raise PresentationRejected(RejectReason.UNTRUSTED_ISSUER, f"x5c chain: {exc}") from None
        chain = verified.chain
        window = (
            max(int(c.not_valid_before_utc.timestamp()) for c in chain),
            min(int(c.not_valid_after_utc.timestamp()) for c in chain),
        )
        if len(self._validated) >= MAX_VALIDATED:
            self._validated.clear()
        self._validated[tuple(x5c)] = (leaf, *window)  # type: ignore[arg-type]
        return leaf
