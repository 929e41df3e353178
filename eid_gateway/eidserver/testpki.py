"""The embedded eID-Server's TEST PKI: CVC chain, certificate description and TLS certificate.

Real authorization certificates come from a DV of the German eID PKI. For development and the tests
with the real AusweisApp (whose simulator card links any DV with CAR ``DETESTeID00005`` to the BSI test
root) this module makes a stand-in: our own CVCA certificate named ``DETESTeID00005``, a DV and a
terminal certificate (CHAT with every right the gateway can ask for, the hash of the certificate
description), the certificate description (subject URL = the gateway's public origin, CommCertificates
= the hashes of the TLS certificates) and an RSA TLS certificate for the PAOS endpoint. Every file is
written with :mod:`tr03110.cvc` — the same code that parses real authorization certificates — and the
TLS certificate carries :data:`certs.devpki.DEV_MARKER`, so production mode refuses this PKI.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certs.cvc_chain import issue_chain
from certs.devpki import DEV_MARKER, host_names, write_private
from eid_gateway.eidserver.eac import TerminalCredentials
from saml.keys import certificate_builder, generate_key_pair, key_pair_to_pem
from tr03110 import crypto
from tr03110.cvc import (
    AccessRight,
    CertificateDescription,
    CvCertificate,
    Role,
    load_cvc_file,
)

#: AusweisApp's simulator card reports this CVCA (and links DVs naming it to the BSI test roots).
TEST_CVCA: Final = "DETESTeID00005"
TEST_DV: Final = "DETESTEGDV00001"
TEST_TERMINAL: Final = "DETESTEIDGW00001"
TLS_DAYS: Final = 365
TERMINAL_DAYS: Final = 90

#: Everything the gateway may ask for: the 14 readable data groups, RI, age and place verification.
TERMINAL_RIGHTS: Final = frozenset(
    {AccessRight.read(n) for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 17, 18, 19)}
    | {AccessRight.RESTRICTED_IDENTIFICATION, AccessRight.AGE_VERIFICATION, AccessRight.COMMUNITY_ID_VERIFICATION}
)

FILES: Final = {
    "cvca": "cvca.cvcert",
    "cvca_key": "cvca.key",
    "dv": "dv.cvcert",
    "dv_key": "dv.key",
    "terminal": "terminal.cvcert",
    "terminal_key": "terminal.key",
    "description": "description.der",
    "tls_key": "paos-tls.key",
    "tls_cert": "paos-tls.crt",
    "signing_key": "eid-interface.key",
    "signing_cert": "eid-interface.crt",
}


class TestPkiError(Exception):
    """The test PKI is missing, incomplete or inconsistent."""

    __test__ = False


@dataclass(frozen=True)
class TestPki:
    __test__ = False  # not a pytest test class

    directory: Path
    cvca: CvCertificate
    dv: CvCertificate
    terminal: CvCertificate
    terminal_key: ec.EllipticCurvePrivateKey
    description: bytes
    tls_cert_path: Path
    tls_key_path: Path

    def credentials(self, sector_secret: bytes) -> TerminalCredentials:
        """What :class:`~eid_gateway.eidserver.eac.EacSession` needs; the RI sector key is derived."""
        return TerminalCredentials(
            dv_certificate=self.dv.encoded,
            terminal_certificate=self.terminal.encoded,
            certificate_description=self.description,
            terminal_key=self.terminal_key,
            chat=self.terminal.chat,
            sector_key=crypto.sector_key(sector_secret, str(self.terminal.holder_reference)),
        )


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def tls_certificate(key: rsa.RSAPrivateKey, hosts: tuple[str, ...], now: datetime.datetime) -> x509.Certificate:
    """A self-signed RSA server certificate for ``hosts`` (DNS names or IP addresses)."""
    return (
        certificate_builder(
            f"eid-gateway eID-Server TLS ({DEV_MARKER})",
            key.public_key(),
            not_before=now - datetime.timedelta(minutes=5),
            not_after=now + datetime.timedelta(days=TLS_DAYS),
        )
        .add_extension(x509.SubjectAlternativeName(host_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


def comm_certificate_hash(cert: x509.Certificate) -> bytes:
    """CommCertificates entry: SHA-256 of the DER certificate."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()


def generate_test_pki(
    directory: Path,
    subject_url: str,
    *,
    subject_name: str = "eid-gateway (Testumgebung / test facility)",
    tls_hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
    extra_comm_certificates: tuple[x509.Certificate, ...] = (),
    today: datetime.date | None = None,
    overwrite: bool = False,
) -> TestPki:
    """Write a complete test PKI into ``directory`` and return it loaded."""
    now = datetime.datetime.now(datetime.UTC)
    today = today or now.date()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not overwrite:
        existing = [str(directory / f) for f in FILES.values() if (directory / f).exists()]
        if existing:
            raise TestPkiError("refusing to overwrite " + ", ".join(existing))
    tls_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    tls = tls_certificate(tls_key, tls_hosts, now)
    description = CertificateDescription(
        issuer_name="eid-gateway test PKI (no real authorization)",
        issuer_url="https://eid-gateway.invalid/test-pki",
        subject_name=subject_name,
        subject_url=subject_url,
        terms_of_usage=(
            "Testumgebung: Es werden keine echten Ausweisdaten verarbeitet.\n"
            "Test facility: no real ID card data are processed."
        ),
        comm_certificates=tuple(comm_certificate_hash(c) for c in (tls, *extra_comm_certificates)),
    ).encode()
    signing = generate_key_pair("ec-p256", f"eid-gateway embedded eID-Server ({DEV_MARKER})", 730)
    chain = issue_chain(
        (TEST_CVCA, TEST_DV, TEST_TERMINAL),
        TERMINAL_RIGHTS,
        issuer_rights=TERMINAL_RIGHTS,
        dv_role=Role.DV_OFFICIAL,
        today=today,
        dv_days=365,
        terminal_days=TERMINAL_DAYS,
        description=description,
    )
    for name, data in (
        ("cvca", chain.cvca),
        ("dv", chain.dv),
        ("terminal", chain.terminal),
        ("description", description),
        ("cvca_key", _pem(chain.cvca_key)),
        ("dv_key", _pem(chain.dv_key)),
        ("terminal_key", _pem(chain.terminal_key)),
        ("tls_key", _pem(tls_key)),
        ("tls_cert", tls.public_bytes(serialization.Encoding.PEM)),
        *zip(("signing_key", "signing_cert"), key_pair_to_pem(signing), strict=True),
    ):
        write_private(directory / FILES[name], data)
    return load_test_pki(directory)


def load_test_pki(directory: Path) -> TestPki:
    """Load and cross-check a test PKI directory; raises :class:`TestPkiError`."""
    missing = [f for f in FILES.values() if not (directory / f).is_file()]
    if missing:
        raise TestPkiError(f"{directory}: missing {', '.join(missing)} (run `eid-gateway dev-pki`)")
    try:
        cvca = load_cvc_file(directory / FILES["cvca"])
        dv = load_cvc_file(directory / FILES["dv"])
        terminal = load_cvc_file(directory / FILES["terminal"])
        key = serialization.load_pem_private_key((directory / FILES["terminal_key"]).read_bytes(), None)
        description = (directory / FILES["description"]).read_bytes()
        dv.verify_signature(cvca, crypto.CURVE)
        terminal.verify_signature(dv, crypto.CURVE)
        terminal.check_description(description)
    except Exception as exc:  # noqa: BLE001 - every cause becomes one precise startup error
        raise TestPkiError(f"{directory}: test PKI is unusable: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.BrainpoolP256R1):
        raise TestPkiError(f"{directory}: the terminal key must be brainpoolP256r1")
    if crypto.point(key.public_key()) != crypto.point(terminal.public_key.to_cryptography(crypto.CURVE)):  # type: ignore[arg-type]
        raise TestPkiError(f"{directory}: terminal key and certificate do not match")
    return TestPki(
        directory, cvca, dv, terminal, key, description, directory / FILES["tls_cert"], directory / FILES["tls_key"]
    )


def is_test_pki(pki: TestPki) -> bool:
    """True for chains made here (the DV hangs below the test CVCA name): production refuses them."""
    return str(pki.dv.authority_reference) == TEST_CVCA or str(pki.dv.authority_reference).startswith("DETEST")
