"""TLS to and from the eID-Server, per BSI TR-03116-4: mutual TLS, TLS 1.2+, ECDHE with AES-GCM.

The gateway authenticates with its client certificate and trusts the eID-Server only through the
configured CA bundle or pinned certificate (a pinned leaf works as its own anchor: partial chains are
allowed; the system's public CAs only when no trust file is configured). The server name is always
checked. Connection failures
are classified here into one precise error each, because "unreachable" hides what an operator must
fix: an untrusted or expired server certificate, a wrong name, or a client certificate the server
refused.

Limits of Python's ``ssl`` module (documented, not hidden): TLS 1.3 cipher suites and the key exchange
groups cannot be restricted per context; OpenSSL's TLS 1.3 defaults are AEAD-only (AES-GCM first, and
ChaCha20-Poly1305, which TR-03116-4 does not list).
"""

from __future__ import annotations

import asyncio
import enum
import os
import ssl
import tempfile
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from certs.loading import is_pkcs12, load_key_pair_file
from eid_gateway.core.port import EidServerUnavailable
from saml.keys import KeyPair, key_pair_to_pem

#: TLS 1.2 cipher suites of TR-03116-4 with forward secrecy and AES-GCM (OpenSSL names).
TLS12_CIPHERS: Final = ":".join(
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES128-GCM-SHA256",
    )
)


class TlsFailure(enum.Enum):
    """Why a TLS connection to the eID-Server failed."""

    UNTRUSTED = "untrusted server certificate"
    EXPIRED = "expired server certificate"
    NOT_YET_VALID = "server certificate not yet valid"
    NAME_MISMATCH = "server certificate does not name the server"
    CLIENT_REJECTED = "the server refused our client certificate"
    HANDSHAKE = "TLS handshake failed"


class EidNotDelivered(EidServerUnavailable):
    """The request provably never reached the eID-Server (no connection, no TLS session): safe to repeat
    even for calls that are not idempotent on the server, with the same RequestCounter."""


class EidTlsError(EidNotDelivered):
    """The TLS handshake with the eID-Server failed; ``failure`` says why (for operators and tests)."""

    def __init__(self, failure: TlsFailure, detail: str):
        super().__init__(f"TLS to the eID-Server failed: {failure.value} ({detail})")
        self.failure = failure
        self.detail = detail


class TlsConfigError(Exception):
    """Key, certificate or CA files cannot be used for TLS; the message names the file."""


def _base(purpose: ssl.Purpose) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT if purpose is ssl.Purpose.SERVER_AUTH else ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.verify_mode = ssl.CERT_REQUIRED
    # A pinned certificate (not a CA) in the trust file is an anchor of its own.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def _load_chain(ctx: ssl.SSLContext, key_pair: KeyPair) -> None:
    """Load a key pair that may have come from PKCS#12 (``ssl`` only reads files): through a private
    temporary directory that is removed again at once."""
    key_pem, cert_pem = key_pair_to_pem(key_pair)
    with tempfile.TemporaryDirectory(prefix="eidgw-tls-") as tmp:
        os.chmod(tmp, 0o700)
        key_path, cert_path = Path(tmp, "key.pem"), Path(tmp, "cert.pem")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        cert_path.write_bytes(cert_pem)
        ctx.load_cert_chain(str(cert_path), str(key_path))


def _trust(ctx: ssl.SSLContext, trust_file: Path, what: str) -> None:
    try:
        ctx.load_verify_locations(cafile=str(trust_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"{what} {trust_file} cannot be used: {getattr(exc, 'strerror', None) or exc}") from None


def client_context(key_pair: KeyPair, trust_file: Path | None) -> ssl.SSLContext:
    """Mutual TLS client context: our key pair, the eID-Server trusted via ``trust_file`` (CA bundle,
    or the server's own certificate as a pin); ``None`` falls back to the system's public CAs, which a
    production deployment should not rely on. The host name is always checked."""
    ctx = _base(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = True
    if trust_file is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        _trust(ctx, trust_file, "eID-Server trust file")
    _load_chain(ctx, key_pair)
    return ctx


def client_context_from_files(
    key_file: Path, cert_file: Path | None, trust_file: Path | None, password: bytes | None = None
) -> ssl.SSLContext:
    """:func:`client_context` from a PEM key + certificate or a PKCS#12 file."""
    pair = load_key_pair_file(key_file, None if is_pkcs12(key_file) else cert_file, password)
    return client_context(pair, trust_file)


def server_context(key_pair: KeyPair, client_trust_file: Path) -> ssl.SSLContext:
    """A TLS server that requires a client certificate trusted via ``client_trust_file`` (a CA bundle
    or the pinned client certificates): what an eID-Server's eID-Interface does; used by the simulator."""
    ctx = _base(ssl.Purpose.CLIENT_AUTH)
    _trust(ctx, client_trust_file, "client trust file")
    _load_chain(ctx, key_pair)
    return ctx


# --- classifying connection failures -----------------------------------------------------------------------

_VERIFY_CODES: Final[dict[int, TlsFailure]] = {
    10: TlsFailure.EXPIRED,  # X509_V_ERR_CERT_HAS_EXPIRED
    9: TlsFailure.NOT_YET_VALID,  # X509_V_ERR_CERT_NOT_YET_VALID
    62: TlsFailure.NAME_MISMATCH,  # X509_V_ERR_HOSTNAME_MISMATCH
    64: TlsFailure.NAME_MISMATCH,  # X509_V_ERR_IP_ADDRESS_MISMATCH
}
_CLIENT_ALERTS: Final = (
    "alert certificate required",
    "alert bad certificate",
    "alert unknown ca",
    "alert certificate unknown",
    "alert handshake failure",
    "alert access denied",
    "alert certificate expired",
    "alert decrypt error",
)


def _find_ssl_error(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # aiohttp's connector errors subclass ssl.SSLError without its attributes: take the wrapped one.
        for wrapped in (getattr(current, "certificate_error", None), getattr(current, "os_error", None)):
            if isinstance(wrapped, ssl.SSLError):
                return wrapped
        if isinstance(current, ssl.SSLError) and not isinstance(current, aiohttp.ClientError):
            return current
        current = current.__cause__ or current.__context__
    return None


def classify_connection_error(exc: BaseException) -> EidServerUnavailable:
    """The port's error for an aiohttp / OS error raised while talking to the eID-Server.

    Certificate and handshake failures become :class:`EidTlsError`; failures before the request was
    sent (refused, DNS, connect timeout) :class:`EidNotDelivered`; everything else (reset or timeout
    after sending) plain :class:`EidServerUnavailable`, since the server may have acted on it.
    """
    ssl_error = _find_ssl_error(exc)
    if isinstance(ssl_error, ssl.SSLCertVerificationError):
        failure = _VERIFY_CODES.get(ssl_error.verify_code, TlsFailure.UNTRUSTED)
        return EidTlsError(failure, ssl_error.verify_message or "certificate verify failed")
    if ssl_error is not None:
        reason = (ssl_error.reason or str(ssl_error)).lower().replace("_", " ")
        if any(alert in reason for alert in _CLIENT_ALERTS):
            return EidTlsError(TlsFailure.CLIENT_REJECTED, reason)
        return EidTlsError(TlsFailure.HANDSHAKE, reason)
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return EidNotDelivered(f"eID-Server unreachable: {type(exc).__name__}")
    return EidServerUnavailable(f"eID-Server connection failed: {type(exc).__name__}")


async def diagnose_reset(
    url: str, ctx: ssl.SSLContext, *, server_hostname: str | None = None, wait: float = 1.0
) -> EidTlsError | None:
    """After a connection reset: was it the server refusing our client certificate?

    With TLS 1.3 the client finishes its handshake before the server has checked the client
    certificate, so a refusal arrives after the request was sent and often only as a reset. A fresh
    handshake that sends nothing and waits briefly receives the server's alert undisturbed, or sees
    the server close at once (some servers close without an alert; an HTTP server that accepted us
    would wait for a request instead). Silence for ``wait`` means TLS is fine and the reset had
    another cause (``None``).
    """
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.hostname is None:
        return None
    try:
        async with asyncio.timeout(wait):
            reader, writer = await asyncio.open_connection(
                parts.hostname, parts.port or 443, ssl=ctx, server_hostname=server_hostname or parts.hostname
            )
            try:
                data = await reader.read(1)
            finally:
                writer.close()
    except TimeoutError:
        return None
    except ConnectionResetError:
        return EidTlsError(TlsFailure.CLIENT_REJECTED, "the server reset the connection after the handshake")
    except ConnectionError:
        return None
    except ssl.SSLError as exc:
        error = classify_connection_error(exc)
        return error if isinstance(error, EidTlsError) else None
    except OSError:
        return None
    if not data:
        return EidTlsError(TlsFailure.CLIENT_REJECTED, "the server closed the connection after the handshake")
    return None
