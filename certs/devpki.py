"""Development keys: everything a gateway needs to start with no PKI at hand.

Every certificate made here carries :data:`DEV_MARKER` in its common name, so that a gateway in
``mode = "production"`` can recognise and refuse it. Files are written with mode 0600 and never
overwritten unless asked.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from saml.keys import KeyPair, generate_key_pair, key_pair_to_pem

DEV_MARKER = "DEVELOPMENT ONLY"
DEV_DAYS = 730


@dataclass(frozen=True)
class DevKeySpec:
    """One generated key: file stem, key kind (``saml.keys.generate_key_pair``) and purpose."""

    stem: str
    kind: str
    purpose: str


#: The development key set. RSA-3072 where SAML services may only support RSA; EC P-256 elsewhere.
DEV_KEYS: tuple[DevKeySpec, ...] = (
    DevKeySpec("saml-signing", "rsa-3072", "SAML IdP signing"),
    DevKeySpec("saml-signing-next", "rsa-3072", "SAML IdP next signing key (rollover)"),
    DevKeySpec("eid-client", "ec-p256", "eID-Interface client (WS-Security, mutual TLS)"),
    DevKeySpec("simulator", "ec-p256", "eID-Server simulator"),
    DevKeySpec("demo-service", "rsa-3072", "demo city service (SAML SP)"),
    DevKeySpec("oidc-signing", "ec-p256", "OpenID Connect ID token signing (ES256)"),
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


def _write_private(path: Path, data: bytes) -> None:
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
        _write_private(key_path, key_pem)
        _write_private(cert_path, cert_pem)
        made[spec.stem] = kp
    _write_private(directory / PSEUDONYM_SECRET_FILE, secrets.token_bytes(32))
    return made
