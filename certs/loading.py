"""Load the gateway's keys, certificates and secrets from the paths a config names.

Every failure becomes one :class:`CertLoadError` whose message names the file and what is wrong with it
(missing, unreadable, not PEM, wrong password, key and certificate do not match), so that the config
validator can report it next to the config key. Parsing itself is left to ``saml.keys`` and
``cryptography``; this module only adds file handling and PKCS#12.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from saml.errors import SamlError
from saml.keys import KeyPair, load_certificate, load_key_pair

PKCS12_SUFFIXES = (".p12", ".pfx")
MIN_SECRET_BYTES = 32


class CertLoadError(Exception):
    """A key, certificate or secret file could not be used; the message names the file, never its content."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertLoadError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise CertLoadError(f"{what} file {path} is a directory") from None
    except PermissionError:
        raise CertLoadError(f"{what} file {path} is not readable (permission denied)") from None
    except OSError as exc:
        raise CertLoadError(f"{what} file {path} cannot be read: {exc.strerror}") from None


def is_pkcs12(path: Path) -> bool:
    """PKCS#12 files are recognised by their suffix (.p12 / .pfx)."""
    return path.suffix.lower() in PKCS12_SUFFIXES


def load_key_pair_file(key_path: Path, cert_path: Path | None, password: bytes | None = None) -> KeyPair:
    """A :class:`KeyPair` from a PEM key + PEM certificate (chain), or from one PKCS#12 file.

    For PKCS#12 ``cert_path`` may be ``None`` (the certificate is inside the bundle).
    """
    if is_pkcs12(key_path):
        return _load_pkcs12(key_path, password)
    if cert_path is None:
        raise CertLoadError(f"key file {key_path} is PEM, so a certificate file is needed too")
    key_pem = _read(key_path, "key")
    cert_pem = _read(cert_path, "certificate")
    if b"-----BEGIN" not in key_pem or b"PRIVATE KEY" not in key_pem:
        raise CertLoadError(f"key file {key_path} holds no PEM private key")
    if b"-----BEGIN CERTIFICATE" not in cert_pem:
        raise CertLoadError(f"certificate file {cert_path} holds no PEM certificate")
    try:
        return load_key_pair(key_pem, cert_pem, password)
    except SamlError as exc:
        raise CertLoadError(f"key {key_path} / certificate {cert_path}: {exc}") from None


def _load_pkcs12(path: Path, password: bytes | None) -> KeyPair:
    data = _read(path, "PKCS#12")
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        raise CertLoadError(f"PKCS#12 file {path} cannot be opened (corrupt or wrong password)") from None
    if key is None or cert is None:
        raise CertLoadError(f"PKCS#12 file {path} must hold a private key and its certificate")
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CertLoadError(f"PKCS#12 file {path}: only RSA and EC keys are supported")
    try:
        return KeyPair(key, cert, tuple(extra))
    except SamlError as exc:
        raise CertLoadError(f"PKCS#12 file {path}: {exc}") from None


def load_certificate_file(path: Path) -> x509.Certificate:
    """One certificate (PEM or DER); a PEM bundle contributes its first certificate."""
    data = _read(path, "certificate")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificates(data)[0]
        return load_certificate(data)
    except (ValueError, SamlError):
        raise CertLoadError(f"certificate file {path} holds no readable certificate") from None


def load_secret_file(path: Path, min_bytes: int = MIN_SECRET_BYTES) -> bytes:
    """A raw secret (e.g. the pseudonym key); refuses short ones. Never echoes the content."""
    data = _read(path, "secret")
    if len(data) < min_bytes:
        raise CertLoadError(f"secret file {path} holds {len(data)} bytes; at least {min_bytes} are required")
    return data
