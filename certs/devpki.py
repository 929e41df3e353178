"""Development keys: everything a gateway needs to start with no PKI at hand.

Every file made here is marked as development material, so that a gateway in ``mode = "production"``
can recognise and refuse it wherever a setting points at it (:func:`is_dev_file`, the one rule):
certificates carry :data:`DEV_MARKER` in their common name; private keys and secrets, which have no
name of their own, start with a line of text saying so (RFC 7468 lets text precede a PEM block, and a
secret is taken whole). Files are written with mode 0600 and never overwritten unless asked.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.loading import is_pkcs12
from saml.keys import KeyPair, certificate_builder, generate_key_pair, key_pair_to_pem, key_usage, self_signed_builder

DEV_MARKER = "DEVELOPMENT ONLY"
DEV_DAYS = 730


@dataclass(frozen=True)
class DevKeySpec:
    """One generated key: file stem, key kind (``saml.keys.generate_key_pair``) and purpose."""

    stem: str
    kind: str
    purpose: str


#: The development key set. RSA-3072 where SAML services may only support RSA or where RSA-OAEP key
#: transport needs an RSA key; EC P-256 elsewhere. One key per purpose (BSI TR-02102): the demo service
#: decrypts with one key and signs with another.
DEV_KEYS: tuple[DevKeySpec, ...] = (
    DevKeySpec("saml-signing", "rsa-3072", "SAML IdP signing"),
    DevKeySpec("saml-signing-next", "rsa-3072", "SAML IdP next signing key (rollover)"),
    DevKeySpec("eid-client", "ec-p256", "eID-Interface client (WS-Security, mutual TLS)"),
    DevKeySpec("simulator", "ec-p256", "eID-Server simulator"),
    DevKeySpec("demo-service", "rsa-3072", "demo city service: assertion decryption (SAML SP, RSA-OAEP)"),
    DevKeySpec("demo-service-signing", "ec-p256", "demo city service: AuthnRequest signing (SAML SP)"),
    DevKeySpec("oidc-signing", "ec-p256", "OpenID Connect ID token signing (ES256)"),
    # RS256 is what OpenID Connect Discovery §3 requires a provider to offer; ES256 stays the default
    DevKeySpec("oidc-rsa-signing", "rsa-3072", "OpenID Connect ID token signing (RS256 / PS256)"),
    DevKeySpec("wallet-request", "ec-p256", "EUDI wallet verifier: OpenID4VP request object signing (ES256)"),
)
PSEUDONYM_SECRET_FILE = "pseudonym.secret"


class DevPkiExists(Exception):
    """A file the development PKI would write already exists (and overwriting was not asked for)."""


def is_dev_certificate(cert: x509.Certificate) -> bool:
    """True for certificates made by this module (production refuses them)."""
    for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attr.value if isinstance(attr.value, str) else attr.value.decode("utf-8", "replace")
        if DEV_MARKER in value:
            return True
    return False


def dev_file_header(what: str) -> bytes:
    """The first line of a development key or secret file (``what``: which key)."""
    return (
        f"eid-gateway {what}: {DEV_MARKER} (written by `eid-gateway init`, certs/devpki.py); production refuses it\n"
    ).encode("ascii")


def is_dev_file(path: Path, password: bytes | None = None) -> bool:
    """True when the key, certificate, PKCS#12 bundle or secret file at ``path`` is development material.

    The one rule production applies to every file a key setting names: the file carries
    :data:`DEV_MARKER` (the header of a key or secret file written here, or a DER certificate's
    subject), holds a development certificate (PEM, or PKCS#12 opened with ``password``), or is a PEM
    private key whose certificate (same name, ``.crt``) is a development certificate for the same key:
    the key files ``init`` wrote before they had a header. Unreadable files count as not development
    material; loading them reports the problem.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if DEV_MARKER.encode("ascii") in data:
        return True
    if is_pkcs12(path):
        try:
            _, cert, extra = pkcs12.load_key_and_certificates(data, password)
        except ValueError:
            return False
        return any(is_dev_certificate(c) for c in (cert, *extra) if c is not None)
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            return any(is_dev_certificate(c) for c in x509.load_pem_x509_certificates(data))
        except ValueError:
            return False
    if b"PRIVATE KEY-----" in data:
        return _key_of_dev_certificate(path, data, password)
    return False


def _key_of_dev_certificate(key_path: Path, key_pem: bytes, password: bytes | None) -> bool:
    """A PEM key without the header: development material when the certificate next to it, as ``init``
    writes them (``stem.key`` + ``stem.crt``), is a development certificate for this very key."""
    cert_path = key_path.with_suffix(".crt")
    try:
        certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
        # one password_env serves every key of a config: an unencrypted key is read without it
        key = serialization.load_pem_private_key(key_pem, password if b"ENCRYPTED" in key_pem else None)
    except (OSError, ValueError, TypeError):
        return False
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    own = key.public_key().public_bytes(*spki)
    return any(is_dev_certificate(c) and c.public_key().public_bytes(*spki) == own for c in certs)


def write_private(path: Path, data: bytes) -> None:
    """Write with mode 0600 from the start (no window in which the key is world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def dev_key_paths(directory: Path) -> dict[str, tuple[Path, Path]]:
    """stem -> (key path, certificate path) inside ``directory``."""
    return {s.stem: (directory / f"{s.stem}.key", directory / f"{s.stem}.crt") for s in DEV_KEYS}


def generate_dev_keys(directory: Path, *, overwrite: bool = False) -> dict[str, KeyPair]:
    """Generate the whole development key set plus the pseudonym secret into ``directory``.

    Refuses (:class:`DevPkiExists`) when any target file exists, unless ``overwrite``.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    targets = [p for pair in dev_key_paths(directory).values() for p in pair]
    targets.append(directory / PSEUDONYM_SECRET_FILE)
    if not overwrite:
        existing = [str(p) for p in targets if p.exists()]
        if existing:
            raise DevPkiExists("refusing to overwrite " + ", ".join(existing))
    made: dict[str, KeyPair] = {}
    for spec in DEV_KEYS:
        kp = generate_key_pair(spec.kind, f"eid-gateway {spec.stem} ({DEV_MARKER})", DEV_DAYS)
        key_pem, cert_pem = key_pair_to_pem(kp)
        key_path, cert_path = dev_key_paths(directory)[spec.stem]
        write_private(key_path, dev_file_header(f"{spec.stem} key") + key_pem)
        write_private(cert_path, cert_pem)
        made[spec.stem] = kp
    # the whole file is the secret (header included): 32 random bytes as hex after the header line
    write_private(
        directory / PSEUDONYM_SECRET_FILE,
        dev_file_header("pseudonym secret") + secrets.token_hex(32).encode("ascii") + b"\n",
    )
    return made


# --- a development CA for TLS (mutual TLS to the eID-Server, the simulator's TLS listener) ---------------

DEV_TLS_CA = "eid-tls-ca"
DEV_TLS_SERVER = "simulator-tls"


def host_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    """subjectAltName entries for ``hosts``: an IP address as iPAddress, anything else as dNSName."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def generate_ca(common_name: str, kind: str = "ec-p256", days: int = DEV_DAYS) -> KeyPair:
    """A self-signed CA certificate (keyCertSign) for issuing TLS certificates in tests and development."""
    key = generate_key_pair(kind, common_name, days).private_key
    cert = (
        self_signed_builder(common_name, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, cert)


def issue_certificate(
    ca: KeyPair,
    common_name: str,
    *,
    kind: str = "ec-p256",
    hosts: tuple[str, ...] = (),
    server: bool = True,
    client: bool = False,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> KeyPair:
    """A TLS certificate signed by ``ca``: subjectAltName from ``hosts`` (DNS names or IP addresses),
    extendedKeyUsage serverAuth and/or clientAuth. The returned pair's chain holds the CA certificate."""
    key = generate_key_pair(kind, common_name, 1).private_key
    now = datetime.datetime.now(datetime.UTC)
    start = not_before or now - datetime.timedelta(minutes=5)
    end = not_after or now + datetime.timedelta(days=DEV_DAYS)
    names = host_names(hosts)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    builder = (
        certificate_builder(
            common_name, key.public_key(), not_before=start, not_after=end, issuer=ca.certificate.subject
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return KeyPair(key, builder.sign(ca.private_key, hashes.SHA256()), (ca.certificate,))


def generate_dev_tls(
    directory: Path, *, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), overwrite: bool = False
) -> dict[str, KeyPair]:
    """A development TLS CA and the simulator's TLS server certificate (for ``hosts``), as PEM files
    ``eid-tls-ca.{key,crt}`` and ``simulator-tls.{key,crt}`` (certificate file = leaf + CA)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = {stem: (directory / f"{stem}.key", directory / f"{stem}.crt") for stem in (DEV_TLS_CA, DEV_TLS_SERVER)}
    if not overwrite:
        existing = [str(p) for pair in paths.values() for p in pair if p.exists()]
        if existing:
            raise DevPkiExists("refusing to overwrite " + ", ".join(existing))
    ca = generate_ca(f"eid-gateway TLS CA ({DEV_MARKER})")
    server = issue_certificate(ca, f"eid-gateway simulator TLS ({DEV_MARKER})", hosts=hosts)
    made = {DEV_TLS_CA: ca, DEV_TLS_SERVER: server}
    for stem, kp in made.items():
        key_pem, cert_pem = key_pair_to_pem(kp)
        write_private(paths[stem][0], dev_file_header(f"{stem} key") + key_pem)
        write_private(paths[stem][1], cert_pem)
    return made
