"""``[eid_server]``: which backend (a line of :data:`eid_gateway.backends.registry.BACKENDS`) and how to
reach it, read the one way every table is read (:mod:`eid_gateway.settings_base`).

A kind's further section (``[simulator]``, ``[embedded_paos]``) is read by the config and by the parser
its registry line names; here only what ``[eid_server]`` itself says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

from cryptography import x509
from pydantic import AfterValidator

from certs.loading import is_pkcs12
from eid_gateway.backends.registry import BACKENDS, kinds_text
from eid_gateway.settings_base import (
    CertificateFile,
    ExistingMaterial,
    FilePath,
    KeyMaterial,
    MaterialFile,
    Problems,
    Range,
    ReadContext,
    Reader,
    Section,
    Text,
    Url,
    problem,
)
from saml.keys import KeyPair
from tr03110.cvc import CvcError, CvCertificate, load_cvc_file


@dataclass(frozen=True)
class EidSamlConfig:
    """``[eid_server] kind = "saml"``: the gateway as SAML SP of the eID-Server's SAML interface."""

    sp_entity_id: str
    #: Signs the AuthnRequests and decrypts the eID-Server's assertions (RSA >= 3072 for RSA-OAEP).
    sp_key: KeyPair
    #: The eID-Server's encryption certificate (the request extension is encrypted to it).
    encryption_cert: x509.Certificate
    #: Accept AES-CBC / RSA PKCS#1 v1.5 from this server (BSI samples still show them); off by default.
    legacy_algorithms: bool = False
    #: The eID-Server's SAML entity ID (the Issuer of its Responses).
    server_entity_id: str = ""


@dataclass(frozen=True)
class EidServerConfig:
    #: A line of :data:`eid_gateway.backends.registry.BACKENDS`.
    kind: str
    url: str | None
    server_cert: x509.Certificate | None
    timeout_seconds: float
    tls_ca_file: Path | None
    #: The authorization certificate (TR-03110 CV certificate) the eID-Server uses for this gateway.
    authorization_certificate: CvCertificate | None = None
    #: getResult / getServerInfo are repeated this often when the server is unavailable (useID never).
    retries: int = 2
    #: Consecutive failures that open the circuit breaker, and how long it stays open.
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0
    #: The name the eID-Server's TLS certificate must carry, when it differs from the URL's host.
    tls_server_name: str | None = None
    saml: EidSamlConfig | None = None


def _eid_kind(value: str) -> str:
    if value not in BACKENDS:
        raise problem(f"must be {kinds_text()}")
    return value


_EID_SAML_KEYS: Final = (
    "sp_key",
    "sp_cert",
    "encryption_cert",
    "sp_entity_id",
    "legacy_algorithms",
    "server_entity_id",
)


class EidServerTable(Section):
    """``[eid_server]``: which backend (:data:`eid_gateway.backends.registry.BACKENDS`) and how to reach it."""

    kind: Annotated[str, AfterValidator(_eid_kind)] = "simulator"
    url: Url | None = None
    server_cert: CertificateFile | None = None
    timeout_seconds: Annotated[float, Range(0.5, 120)] = 10.0
    tls_ca_file: ExistingMaterial | None = None
    tls_server_name: Text | None = None
    retries: Annotated[int, Range(0, 5)] = 2
    circuit_breaker_failures: Annotated[int, Range(1, 1000)] = 5
    circuit_breaker_reset_seconds: Annotated[float, Range(1, 3600)] = 30.0
    authorization_certificate: FilePath | None = None
    # kind = "saml" only
    sp_key: MaterialFile | None = None
    sp_cert: MaterialFile | None = None
    encryption_cert: CertificateFile | None = None
    sp_entity_id: Text | None = None
    legacy_algorithms: bool = False
    server_entity_id: Text | None = None

    @classmethod
    def check_raw(cls, raw: Mapping[str, Any], problems: Problems, context: ReadContext) -> None:
        kind = raw.get("kind", "simulator")
        backend = BACKENDS.get(kind) if isinstance(kind, str) else None
        if backend is None:
            return
        if context.production and backend.test_facility:
            real = {name: k for name, k in BACKENDS.items() if k.remote}
            problems.add("kind", f"the {kind} is a test facility; production needs kind = {kinds_text(real)}")
        if backend.remote:
            for name in ("url", "server_cert"):
                if name not in raw:
                    problems.add(name, "is required")
        if kind == "saml":
            for name in ("sp_key", "server_entity_id"):
                if name not in raw:
                    problems.add(name, "is required")
        else:
            for name in _EID_SAML_KEYS:
                if name in raw:
                    problems.add(name, 'only applies to kind = "saml"')


def parse_eid_server(raw: object, material: KeyMaterial, *, eid_client_key: Path | None) -> EidServerConfig:
    """``[eid_server]`` with its certificates and (``kind = "saml"``) its SP key loaded; raises
    ``ConfigError``. ``eid_client_key`` is ``[keys] eid_client_key`` (mutual TLS needs it as PEM)."""
    reader = Reader(material.reader.context)
    material = KeyMaterial(reader, material.password)
    origin = reader.context.origin
    et = reader.table(EidServerTable, {} if raw is None else raw, "eid_server")
    reader.check()
    assert et is not None
    authz_cert: CvCertificate | None = None
    eid_saml: EidSamlConfig | None = None
    if (
        et.kind == "tr03130"
        and et.url is not None
        and et.url.startswith("https://")
        and eid_client_key is not None
        and is_pkcs12(eid_client_key)
    ):
        reader.problem(
            ("keys", "eid_client_key"), "mutual TLS to the eID-Server needs a PEM key and certificate, not PKCS#12"
        )
    if et.authorization_certificate is not None:
        try:
            authz_cert = load_cvc_file(et.authorization_certificate)
        except CvcError as exc:
            reader.problem(("eid_server", "authorization_certificate"), str(exc))
    if et.kind == "saml":
        sp_key = material.pair(("eid_server", "sp_key"), et.sp_key, et.sp_cert)
        if sp_key is not None and sp_key.is_ec:
            reader.problem(
                ("eid_server", "sp_key"), "must be an RSA key (the eID-Server encrypts assertions with RSA-OAEP)"
            )
        enc_cert = et.encryption_cert or et.server_cert
        if sp_key is not None and enc_cert is not None and et.server_entity_id is not None:
            eid_saml = EidSamlConfig(
                et.sp_entity_id or f"{origin}/eid/saml/metadata",
                sp_key,
                enc_cert,
                et.legacy_algorithms,
                et.server_entity_id,
            )
    reader.check()
    return EidServerConfig(
        kind=et.kind,
        url=et.url,
        server_cert=et.server_cert,
        timeout_seconds=et.timeout_seconds,
        tls_ca_file=et.tls_ca_file,
        authorization_certificate=authz_cert,
        retries=et.retries,
        breaker_failures=et.circuit_breaker_failures,
        breaker_reset_seconds=et.circuit_breaker_reset_seconds,
        tls_server_name=et.tls_server_name,
        saml=eid_saml,
    )
