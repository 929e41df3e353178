"""A complete CV certificate chain (CVCA -> DV -> authorization certificate) for development and tests.

Production chains come from the BSI's CVCA and a commercial DV; this builds the same structure with
fresh brainpoolP256r1 keys, so that the project's own eID-Server, the simulator and the tests can use
real certificates without any PKI at hand. The holder references say TEST, never a real CVCA's.
"""

from __future__ import annotations

import datetime
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec

from tr03110.cvc import AccessRight, CertificateDescription, Chat, Role, build_cvc

#: Given names (DG4), family names (DG5), date of birth (DG8), address (DG17), pseudonym, age check.
DEFAULT_RIGHTS: Final = frozenset(
    {
        AccessRight.READ_DG4,
        AccessRight.READ_DG5,
        AccessRight.READ_DG8,
        AccessRight.READ_DG17,
        AccessRight.RESTRICTED_IDENTIFICATION,
        AccessRight.AGE_VERIFICATION,
    }
)


@dataclass(frozen=True)
class CvcChain:
    """Encoded certificates, their private keys and the terminal's encoded certificate description."""

    cvca: bytes
    dv: bytes
    terminal: bytes
    description: bytes
    cvca_key: ec.EllipticCurvePrivateKey = field(repr=False)
    dv_key: ec.EllipticCurvePrivateKey = field(repr=False)
    terminal_key: ec.EllipticCurvePrivateKey = field(repr=False)
    rights: frozenset[AccessRight] = frozenset()


def make_chain(
    rights: Set[AccessRight] = DEFAULT_RIGHTS,
    *,
    today: datetime.date | None = None,
    terminal_days: int = 60,
    description: CertificateDescription | None = None,
    subject_url: str = "https://eid.musterstadt.example",
    country: str = "DE",
) -> CvcChain:
    """A chain whose terminal (authorization) certificate grants exactly ``rights`` (for gateway
    attributes: :func:`eid_gateway.eid.chat.rights_for`).

    References: ``<country>TESTCVCA00001`` -> ``<country>TESTDV00001`` -> ``<country>MUSTERST00001``.
    """
    day = today or datetime.date.today()
    curve = ec.BrainpoolP256R1()
    cvca_key, dv_key, term_key = (ec.generate_private_key(curve) for _ in range(3))
    cvca_ref, dv_ref, term_ref = f"{country}TESTCVCA00001", f"{country}TESTDV00001", f"{country}MUSTERST00001"
    desc = description or CertificateDescription(
        issuer_name="eid-gateway test DV",
        subject_name="Stadt Musterstadt (TEST)",
        terms_of_usage="Name, Anschrift und E-Mail-Adresse des Diensteanbieters:\nStadt Musterstadt (TEST)",
        issuer_url="https://dv.example",
        subject_url=subject_url,
    )
    desc_bytes = desc.encode()
    everything = frozenset(AccessRight) - {AccessRight.PIN_MANAGEMENT}
    cvca = build_cvc(
        authority_reference=cvca_ref,
        holder_reference=cvca_ref,
        public_key=cvca_key.public_key(),
        chat=Chat.authentication_terminal(everything, Role.CVCA),
        effective_date=day,
        expiration_date=day + datetime.timedelta(days=3 * 365),
        signing_key=cvca_key,
    )
    dv = build_cvc(
        authority_reference=cvca_ref,
        holder_reference=dv_ref,
        public_key=dv_key.public_key(),
        chat=Chat.authentication_terminal(everything, Role.DV_NON_OFFICIAL),
        effective_date=day,
        expiration_date=day + datetime.timedelta(days=90 + terminal_days),
        signing_key=cvca_key,
    )
    terminal = build_cvc(
        authority_reference=dv_ref,
        holder_reference=term_ref,
        public_key=term_key.public_key(),
        chat=Chat.authentication_terminal(frozenset(rights)),
        effective_date=day,
        expiration_date=day + datetime.timedelta(days=terminal_days),
        signing_key=dv_key,
        description=desc_bytes,
    )
    return CvcChain(cvca, dv, terminal, desc_bytes, cvca_key, dv_key, term_key, frozenset(rights))
