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
    desc = description or CertificateDescription(
        issuer_name="eid-gateway test DV",
        subject_name="Stadt Musterstadt (TEST)",
        terms_of_usage="Name, Anschrift und E-Mail-Adresse des Diensteanbieters:\nStadt Musterstadt (TEST)",
        issuer_url="https://dv.example",
        subject_url=subject_url,
    )
    return issue_chain(
        (f"{country}TESTCVCA00001", f"{country}TESTDV00001", f"{country}MUSTERST00001"),
        rights,
        issuer_rights=frozenset(AccessRight) - {AccessRight.PIN_MANAGEMENT},
        dv_role=Role.DV_NON_OFFICIAL,
        today=day,
        dv_days=90 + terminal_days,
        terminal_days=terminal_days,
        description=desc.encode(),
    )


def issue_chain(
    references: tuple[str, str, str],
    rights: Set[AccessRight],
    *,
    issuer_rights: frozenset[AccessRight],
    dv_role: Role,
    today: datetime.date,
    dv_days: int,
    terminal_days: int,
    description: bytes,
) -> CvcChain:
    """Fresh brainpoolP256r1 keys and the chain of the holder ``references`` (CVCA, DV, terminal), each
    certificate effective ``today``: the self-signed CVCA (three years) and the DV (``dv_role``, ``dv_days``)
    with ``issuer_rights``, the terminal (``terminal_days``) with ``rights`` and the hash of ``description``.
    """
    cvca_ref, dv_ref, term_ref = references
    cvca_key, dv_key, term_key = (ec.generate_private_key(ec.BrainpoolP256R1()) for _ in range(3))

    def issue(
        issuer: str,
        holder: str,
        key: ec.EllipticCurvePrivateKey,
        chat: Chat,
        days: int,
        signer: ec.EllipticCurvePrivateKey,
        holder_description: bytes | None = None,
    ) -> bytes:
        return build_cvc(
            authority_reference=issuer,
            holder_reference=holder,
            public_key=key.public_key(),
            chat=chat,
            effective_date=today,
            expiration_date=today + datetime.timedelta(days=days),
            signing_key=signer,
            description=holder_description,
        )

    cvca = issue(
        cvca_ref, cvca_ref, cvca_key, Chat.authentication_terminal(issuer_rights, Role.CVCA), 3 * 365, cvca_key
    )
    dv = issue(cvca_ref, dv_ref, dv_key, Chat.authentication_terminal(issuer_rights, dv_role), dv_days, cvca_key)
    terminal_chat = Chat.authentication_terminal(frozenset(rights))
    terminal = issue(dv_ref, term_ref, term_key, terminal_chat, terminal_days, dv_key, description)
    return CvcChain(cvca, dv, terminal, description, cvca_key, dv_key, term_key, frozenset(rights))
