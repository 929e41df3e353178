"""The gateway's one configuration file (TOML), validated at start into frozen dataclasses.

Every table is read the one way (:mod:`eid_gateway.settings_base`: pydantic models, unknown keys
refused, strict TOML types): the gateway's own tables here, the others by the settings module next to
what they configure (``service_settings``, ``frontends/oidc/settings``, ``kiosks/settings``,
``eidserver/settings``, ``web/branding``). This module composes them: it collects *every* problem of
the file before failing, each named by its key path (``services[2].saml.acs_urls[0]: must be an
absolute https URL``), so an operator fixes a file in one pass, and checks what spans tables. Relative
paths are resolved against the config file's directory. Keys and certificates are loaded here too: a
gateway that starts has usable key material.
"""

# How a new section is added (e.g. ``[branding]``): write its model next to what it configures
# (``eid_gateway/<package>/settings.py``): a :class:`eid_gateway.settings_base.Section` subclass whose
# fields are the TOML keys (types from settings_base: Range, Text, FilePath, MaterialFile, SecretFile,
# CertificateFile, EnvVar; checks across fields in ``check_raw``, which runs even when a field is wrong,
# or in an ``@model_validator(mode="after")``), plus a ``parse_<name>(document, ...) -> <Name>Settings``
# that calls ``settings_base.validate`` and raises ``ConfigError``. Here: a field in ``DocumentTable``
# (so the key is known), one line in ``parse_config`` (``reader.run(lambda: parse_<name>(...))``) and a
# field in ``GatewayConfig``. Unknown keys and wrong types are then errors with their key path,
# collected with every other problem of the file.

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import AfterValidator, BaseModel
from pydantic_core import PydanticCustomError

from certs.loading import (
    CertLoadError,
    load_certificate_file,
)
from eid_gateway.backends.registry import BACKENDS, BackendSections
from eid_gateway.backends.settings import EidServerConfig, parse_eid_server
from eid_gateway.eidserver.settings import EmbeddedPaosSettings
from eid_gateway.frontends.oidc.settings import (
    OidcSettings,
    parse_oidc_settings,
    with_oidc_services,
)
from eid_gateway.kiosks.settings import KioskSettings, parse_kiosk_settings
from eid_gateway.service_settings import parse_services
from eid_gateway.services import ServiceRegistry
from eid_gateway.settings_base import (
    ConfigError,
    EnvVar,
    ExistingMaterial,
    FilePath,
    KeyFileOrUri,
    KeyMaterial,
    Loc,
    MaterialFile,
    Problems,
    Range,
    ReadContext,
    Reader,
    SecretFile,
    Section,
    Text,
    problem,
    resolve_path,
)
from eid_gateway.wallet.settings import WalletSettings, check_service_methods, parse_wallet
from eid_gateway.web.branding import Branding, parse_branding
from saml.errors import SamlError
from saml.keys import KeyPair

__all__ = ["ConfigError", "GatewayConfig", "load_config", "parse_config"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

Mode = Literal["development", "production"]
DEFAULT_CONFIG_PATH = Path("instance/gateway.toml")
CONFIG_ENV = "EID_GATEWAY_CONFIG"


#: Upper bound of ``[listen] workers`` / ``--workers`` (far above any core count the gateway meets).
MAX_WORKERS = 64


@dataclass(frozen=True)
class ListenConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    #: Processes sharing the port (SO_REUSEPORT) under gunicorn's arbiter; 1 = one process, no arbiter.
    workers: int = 1
    #: Slow and surplus connections (eid_gateway.web.connections): a request's head must arrive within
    #: ``header_timeout_seconds`` of its first byte, its body within ``body_timeout_seconds`` of the head;
    #: an idle keep-alive connection is closed after ``keepalive_timeout_seconds`` (above a reverse proxy's
    #: own idle timeout towards the gateway, so that the proxy closes first).
    header_timeout_seconds: float = 20.0
    body_timeout_seconds: float = 30.0
    keepalive_timeout_seconds: float = 75.0
    #: Open connections per process, and per client address (reverse proxies in ``[limits]
    #: trusted_proxies`` are exempt from the latter: every citizen behind them shares their address).
    max_connections: int = 1000
    max_connections_per_address: int = 64


@dataclass(frozen=True)
class KeysConfig:
    """The gateway's own key material. Paths are kept where TLS needs files (mutual TLS client)."""

    saml_signing: KeyPair
    saml_signing_next: KeyPair | None
    eid_client: KeyPair
    eid_client_key_path: Path
    eid_client_cert_path: Path
    pseudonym_secret: bytes
    #: Password of encrypted key files (from ``password_env``); mutual TLS needs it again.
    key_password: bytes | None = None


@dataclass(frozen=True)
class RedisSettings:
    """``[store]`` with ``kind = "redis"``: one Redis (``url``) or the master named by Sentinels."""

    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "eidgw:"
    username: str | None = None
    password: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = "eidgw"
    sentinel_password: str | None = None
    db: int = 0
    tls: bool = False
    tls_ca_file: Path | None = None
    timeout_seconds: float = 2.0
    connect_timeout_seconds: float = 1.0
    retries: int = 3
    max_connections: int = 64


@dataclass(frozen=True)
class StoreConfig:
    kind: Literal["sqlite", "redis"]
    path: Path
    redis: RedisSettings | None = None


@dataclass(frozen=True)
class LimitsConfig:
    """``[limits]``: abuse limits, counted in the shared store so that they hold across nodes.

    Counts are per fixed window of ``window_seconds``; ``pending_per_ip`` counts the sign-ins an address
    began within one flow lifetime. TC Token and refresh requests count only when their reference
    names no flow (TC Token: or was used): a valid reference works exactly once anyway.
    """

    enabled: bool = True
    window_seconds: int = 60
    starts_per_ip: int = 60
    starts_per_service: int = 10000
    pending_per_ip: int = 300
    tctoken_per_ip: int = 30
    refresh_per_ip: int = 30
    max_body_bytes: int = 512 * 1024
    #: Peers whose X-Forwarded-For is believed (the reverse proxies); networks in CIDR notation. The
    #: default, loopback, fits a proxy on the same machine (otherwise every citizen would share its address).
    trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class AuditConfig:
    """``[audit]``: the hash-chained audit trail (in the store; optionally also as JSON lines)."""

    enabled: bool = True
    jsonl_path: Path | None = None
    #: Key of the chain and of the hashed references; default: derived from the pseudonym secret.
    secret: bytes | None = None


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: Prometheus text at ``/metrics`` for scrapers from ``allow`` (CIDR networks)."""

    enabled: bool = True
    allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class FlowConfig:
    ttl_seconds: int = 600
    #: How long the refresh step waits for a result that is not ready yet (noResultYet).
    result_wait_seconds: float = 3.0
    #: A result that came only after waiting is held this long before it is released: time for a
    #: relayed sign-in's other browser to arrive and end the flow (see eid_gateway.web.navigation).
    late_result_grace_seconds: float = 2.0


@dataclass(frozen=True)
class SimulatorSection:
    key: KeyPair
    prefix: str = "/eid-sim"
    #: SQLite file of the simulator's sessions (shared by the server's processes); None: in memory.
    sessions: Path | None = None


@dataclass(frozen=True)
class SamlIdpConfig:
    entity_id: str


@dataclass(frozen=True)
class DemoConfig:
    enabled: bool
    #: Decrypts the assertions encrypted to the demo ([services.saml] encryption_cert): RSA, as the
    #: gateway's key transport is RSA-OAEP.
    key: KeyPair | None
    entity_id: str
    service_id: str | None
    #: SQLite file of the demo's issued request IDs and seen assertion IDs; None: in memory.
    state: Path | None = None
    #: Signs the demo's AuthnRequests (one key per purpose, BSI TR-02102); None: ``key`` signs them too,
    #: as in configurations written before the demo had a signing key of its own.
    signing_key: KeyPair | None = None

    @property
    def request_signing_key(self) -> KeyPair | None:
        """The key that signs the demo's AuthnRequests."""
        return self.signing_key if self.signing_key is not None else self.key


@dataclass(frozen=True)
class GatewayConfig:
    mode: Mode
    public_origin: str
    listen: ListenConfig
    keys: KeysConfig
    store: StoreConfig
    flow: FlowConfig
    eid_server: EidServerConfig
    simulator: SimulatorSection | None
    saml_idp: SamlIdpConfig
    services: ServiceRegistry
    demo: DemoConfig
    source: Path | None = None
    #: The OpenID Connect provider ([oidc] + [services.oidc]); ``None`` = OIDC not offered.
    oidc: OidcSettings | None = None
    limits: LimitsConfig = LimitsConfig()
    audit: AuditConfig = AuditConfig()
    metrics: MetricsConfig = MetricsConfig()
    #: The embedded PAOS eID-Server ([embedded_paos]); set when eid_server.kind = "embedded-paos".
    embedded_paos: EmbeddedPaosSettings | None = None
    #: Bürgerbüro kiosks and the staff dashboard ([kiosk_monitor], [[kiosks]]); None = no kiosks.
    kiosks: KioskSettings | None = None
    #: The operator's name, logo, colour and legal pages on the citizen pages ([branding]).
    branding: Branding = Branding()
    #: The EUDI wallet as a second way in ([wallet], eid_gateway/wallet/settings.py); None = card only.
    wallet: WalletSettings | None = None

    @property
    def production(self) -> bool:
        return self.mode == "production"

    @property
    def secure_origin(self) -> bool:
        """True when the public origin is https (cookies get Secure and the __Host- prefix)."""
        return self.public_origin.startswith("https://")

    def url(self, path: str) -> str:
        """Absolute URL of a gateway path (``path`` starts with ``/``)."""
        return self.public_origin + path


def single_process_reasons(eid_server_kind: str, *, simulator: SimulatorSection | None, demo: DemoConfig) -> list[str]:
    """What of this configuration lives in one process's memory only, so that several workers would
    each hold a part of it and requests landing on another worker would silently miss it."""
    reasons: list[str] = []  # kiosks are none: their state and dashboard stream live in the store
    backend_reason = BACKENDS[eid_server_kind].single_process_reason(BackendSections(simulator=simulator))
    if backend_reason is not None:
        reasons.append(backend_reason)
    if demo.enabled and demo.state is None:
        reasons.append(
            "demo.state is not set: the demo service's sent requests and seen assertions would be "
            'kept in one process (set it to a SQLite file, e.g. "data/demo-service.sqlite3")'
        )
    return reasons


def default_config_path() -> Path:
    """``$EID_GATEWAY_CONFIG`` or ``./instance/gateway.toml``."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG_PATH


def load_config(path: Path) -> GatewayConfig:
    """Read and validate a config file; raises :class:`ConfigError` listing every problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.strerror})"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(data, path.resolve().parent, source=path)


# --- the gateway's own tables ------------------------------------------------------------------------------


def _origin(value: str) -> str:
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or (parts.path not in ("", "/"))
    ):
        raise problem("must be an origin like https://eid.example.de (scheme, host, optional port)")
    return f"{parts.scheme}://{parts.netloc}"


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise problem(f"not an IP address or network ({value!r})") from None


def _in_existing_directory(value: Path) -> Path:
    if not value.parent.is_dir():
        raise problem(f"directory {value.parent} does not exist")
    return value


def _prefix(value: str) -> str:
    if not re.fullmatch(r"/[a-z0-9-]+", value):
        raise problem("must look like /eid-sim")
    return value


Network = Annotated[str, AfterValidator(_network)]


class DocumentTable(Section):
    """The top level: ``mode``, ``public_origin`` and which tables there may be (each read by its own model)."""

    mode: Literal["development", "production"] = "development"
    public_origin: Annotated[str, AfterValidator(_origin)]
    listen: dict[str, Any] | None = None
    keys: dict[str, Any]
    store: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    flow: dict[str, Any] | None = None
    eid_server: dict[str, Any] | None = None
    simulator: dict[str, Any] | None = None
    saml_idp: dict[str, Any] | None = None
    demo: dict[str, Any] | None = None
    services: Any = None  # read by service_settings (its own message)
    oidc: dict[str, Any] | None = None
    embedded_paos: dict[str, Any] | None = None
    kiosk_monitor: dict[str, Any] | None = None
    kiosks: Any = None  # read by kiosks/settings (its own message)
    branding: dict[str, Any] | None = None
    wallet: dict[str, Any] | None = None

    @classmethod
    def check_raw(cls, raw: Mapping[str, Any], problems: Problems, context: ReadContext) -> None:
        origin = raw.get("public_origin")
        if context.production and isinstance(origin, str) and not origin.startswith("https://"):
            problems.add("public_origin", "must be an https origin in production")


class ListenTable(Section):
    """``[listen]``: see :class:`ListenConfig`."""

    host: Text = "127.0.0.1"
    port: Annotated[int, Range(1, 65535)] = 8080
    workers: Annotated[int, Range(1, MAX_WORKERS)] = 1
    header_timeout_seconds: Annotated[float, Range(0.1, 600)] = 20.0
    body_timeout_seconds: Annotated[float, Range(0.1, 3600)] = 30.0
    keepalive_timeout_seconds: Annotated[float, Range(0.1, 3600)] = 75.0
    max_connections: Annotated[int, Range(1, 1_000_000)] = 1000
    max_connections_per_address: Annotated[int, Range(1, 1_000_000)] = 64


class KeysTable(Section):
    """``[keys]``: the gateway's own key material; a signing key may be a ``pkcs11:`` URI (RFC 7512)."""

    #: Encrypted PEM keys / PKCS#12 files: the password comes from the environment, never the file.
    password_env: EnvVar | None = None
    saml_signing_key: KeyFileOrUri
    saml_signing_cert: MaterialFile | None = None
    saml_signing_next_key: KeyFileOrUri | None = None
    saml_signing_next_cert: MaterialFile | None = None
    eid_client_key: MaterialFile
    eid_client_cert: MaterialFile
    pseudonym_secret: SecretFile
    #: A key in an HSM: the PKCS#11 module (default: SoftHSM2) and the variable holding the PIN.
    pkcs11_module: FilePath | None = None
    pkcs11_pin_env: Text | None = None

    @classmethod
    def check_raw(cls, raw: Mapping[str, Any], problems: Problems, context: ReadContext) -> None:
        tokens = [
            name
            for name in ("saml_signing_key", "saml_signing_next_key")
            if str(raw.get(name, "")).startswith("pkcs11:")
        ]
        for name in tokens:
            cert = name.removesuffix("_key") + "_cert"
            if cert not in raw:
                problems.add(cert, f"is required when {name} is a pkcs11: URI")
        if tokens and "pkcs11_pin_env" not in raw:
            problems.add("pkcs11_pin_env", "is required for a key in a PKCS#11 token")
        if "saml_signing_next_cert" in raw and "saml_signing_next_key" not in raw:
            problems.add("saml_signing_next_key", "is required when saml_signing_next_cert is set")


class StoreTable(Section):
    """``[store]``: ``kind = "sqlite"`` (path) or ``kind = "redis"`` (url or sentinels, prefix, TLS)."""

    kind: Literal["sqlite", "redis"] = "sqlite"
    path: FilePath | None = None
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "eidgw:"
    username: Text | None = None
    password_env: EnvVar | None = None
    sentinels: list[str] = []
    sentinel_master: Text = "eidgw"
    sentinel_password_env: EnvVar | None = None
    db: Annotated[int, Range(0, 1023)] = 0
    tls: bool | None = None
    tls_ca_file: ExistingMaterial | None = None
    timeout_seconds: Annotated[float, Range(0.05, 60)] = 2.0
    connect_timeout_seconds: Annotated[float, Range(0.05, 60)] = 1.0
    retries: Annotated[int, Range(0, 20)] = 3
    max_connections: Annotated[int, Range(1, 10000)] = 64

    @classmethod
    def check_raw(cls, raw: Mapping[str, Any], problems: Problems, context: ReadContext) -> None:
        if raw.get("kind", "sqlite") != "redis":
            for name in cls.model_fields:
                if name not in ("kind", "path") and name in raw:
                    problems.add(name, 'only applies to kind = "redis"')
            return
        url = raw.get("url", "redis://127.0.0.1:6379/0")
        if isinstance(url, str) and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            problems.add("url", "must be a redis://, rediss:// or unix:// URL")
        prefix = raw.get("key_prefix")
        if isinstance(prefix, str) and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", prefix):
            problems.add("key_prefix", "must be 1-64 characters A-Z, a-z, 0-9, '_', '.', ':' or '-'")
        hosts = [urlsplit(url).hostname or ""] if isinstance(url, str) else []
        sentinels = raw.get("sentinels")
        for i, value in enumerate(sentinels if isinstance(sentinels, list) else []):
            if isinstance(value, str):
                host, _, port = value.rpartition(":")
                if not host or not port.isdigit() or not 0 < int(port) < 65536:
                    problems.add(("sentinels", i), "must be host:port")
                hosts.append(host.strip("[]"))
        tls = raw.get("tls", isinstance(url, str) and url.startswith("rediss://"))
        if context.production and tls is False and isinstance(url, str) and not url.startswith("unix://"):
            if not all(h in ("127.0.0.1", "::1", "localhost") for h in hosts):
                problems.add("tls", "must be true in production when Redis is reached over the network")

    def settings(self, base_dir: Path) -> StoreConfig:
        if self.kind == "sqlite":
            return StoreConfig("sqlite", self.path or base_dir / "data" / "gateway.sqlite3")
        sentinels = tuple((v.rpartition(":")[0].strip("[]"), int(v.rpartition(":")[2])) for v in self.sentinels)
        return StoreConfig(
            "redis",
            self.path or base_dir / "data" / "gateway.sqlite3",
            RedisSettings(
                url=self.url,
                key_prefix=self.key_prefix,
                username=self.username,
                password=os.environ[self.password_env] if self.password_env else None,
                sentinels=sentinels,
                sentinel_master=self.sentinel_master,
                sentinel_password=os.environ[self.sentinel_password_env] if self.sentinel_password_env else None,
                db=self.db,
                tls=self.url.startswith("rediss://") if self.tls is None else self.tls,
                tls_ca_file=self.tls_ca_file,
                timeout_seconds=self.timeout_seconds,
                connect_timeout_seconds=self.connect_timeout_seconds,
                retries=self.retries,
                max_connections=self.max_connections,
            ),
        )


class LimitsTable(Section):
    """``[limits]``: see :class:`LimitsConfig`."""

    enabled: bool = True
    window_seconds: Annotated[int, Range(1, 3600)] = 60
    starts_per_ip: Annotated[int, Range(1, 10**6)] = 60
    starts_per_service: Annotated[int, Range(1, 10**7)] = 10000
    pending_per_ip: Annotated[int, Range(1, 10**6)] = 300
    tctoken_per_ip: Annotated[int, Range(1, 10**6)] = 30
    refresh_per_ip: Annotated[int, Range(1, 10**6)] = 30
    max_body_bytes: Annotated[int, Range(16 * 1024, 16 * 1024 * 1024)] = 512 * 1024
    trusted_proxies: list[Network] = ["127.0.0.0/8", "::1/128"]


class AuditTable(Section):
    """``[audit]``: see :class:`AuditConfig` (the secret is loaded by :func:`parse_config`)."""

    enabled: bool = True
    jsonl_path: Annotated[FilePath, AfterValidator(_in_existing_directory)] | None = None
    #: Key of the chain and of the hashed references; default: derived from the pseudonym secret.
    secret: SecretFile | None = None


class MetricsTable(Section):
    """``[metrics]``: see :class:`MetricsConfig`."""

    enabled: bool = True
    allow: list[Network] = ["127.0.0.0/8", "::1/128"]


class FlowTable(Section):
    """``[flow]``: see :class:`FlowConfig`."""

    ttl_seconds: Annotated[int, Range(60, 3600)] = 600
    result_wait_seconds: Annotated[float, Range(0, 30)] = 3.0
    late_result_grace_seconds: Annotated[float, Range(0, 30)] = 2.0


class SimulatorTable(Section):
    """``[simulator]``: see :class:`SimulatorSection`."""

    key: MaterialFile | None = None
    cert: MaterialFile | None = None
    prefix: Annotated[str, AfterValidator(_prefix)] = "/eid-sim"
    sessions: FilePath | None = None


class SamlIdpTable(Section):
    """``[saml_idp]``: the gateway's own SAML IdP."""

    entity_id: Text | None = None


class DemoTable(Section):
    """``[demo]``: see :class:`DemoConfig`."""

    enabled: bool = False
    key: MaterialFile | None = None
    cert: MaterialFile | None = None
    signing_key: MaterialFile | None = None
    signing_cert: MaterialFile | None = None
    entity_id: Text | None = None
    service_id: Text = "demo"
    state: FilePath | None = None

    @classmethod
    def check_raw(cls, raw: Mapping[str, Any], problems: Problems, context: ReadContext) -> None:
        enabled = raw.get("enabled") is True
        if enabled and context.production:
            problems.add("enabled", "the demo service is for development; production refuses it")
        if enabled and "key" not in raw:
            problems.add("key", "is required")
        for key, cert in (("key", "cert"), ("signing_key", "signing_cert")):
            if cert in raw and key not in raw:
                problems.add(key, f"is required when demo.{cert} is set")


# --- loading key material ------------------------------------------------------------------------------------


def _signing_pair(
    material: KeyMaterial, table: KeysTable, name: str, value: str | None, cert: Path | None
) -> KeyPair | None:
    """A PEM / PKCS#12 key pair, or a key held in an HSM: ``pkcs11:token=..;object=..`` (RFC 7512) with
    the certificate as a file, ``pkcs11_module`` (default: SoftHSM2) and the PIN from ``pkcs11_pin_env``."""
    at: Loc = ("keys", name)
    if value is None:
        return None
    if cert is not None and not cert.is_file():  # under its own key, not the key file's
        material.reader.problem(("keys", name.removesuffix("_key") + "_cert"), f"file {cert} does not exist")
        return None
    if not value.startswith("pkcs11:"):
        return material.pair(at, resolve_path(value, material.reader.context.base_dir), cert)
    from certs.pkcs11 import SOFTHSM2_MODULE, Pkcs11Error, load_pkcs11_key_pair

    pin = os.environ.get(table.pkcs11_pin_env) if table.pkcs11_pin_env else None
    if table.pkcs11_pin_env is not None and pin is None:
        material.reader.problem(("keys", "pkcs11_pin_env"), f"environment variable {table.pkcs11_pin_env} is not set")
    if cert is None or pin is None:
        return None
    try:
        kp = load_pkcs11_key_pair(
            value, load_certificate_file(cert), module=table.pkcs11_module or SOFTHSM2_MODULE, pin=pin
        )
    except (CertLoadError, Pkcs11Error, SamlError) as exc:
        material.reader.problem(at, str(exc))
        return None
    material.strength(at, kp)
    return kp


def _table(reader: Reader, model: type[M], data: Mapping[str, Any], name: str) -> M | None:
    """A top-level table (absent: its defaults; not a table: the document's own check reports it)."""
    raw = data.get(name)
    return reader.table(model, {} if raw is None or not isinstance(raw, Mapping) else raw, name)


def parse_config(data: Mapping[str, Any], base_dir: Path, source: Path | None = None) -> GatewayConfig:
    """Validate parsed TOML; raises :class:`ConfigError` with every problem found.

    Each table is validated by its own model (a mistake in one does not hide another's); what spans
    tables (a backend's further sections, the demo's service, ``[listen] workers``) is checked here.
    """
    production = data.get("mode") == "production"
    keys_raw = data.get("keys")
    password_env = keys_raw.get("password_env") if isinstance(keys_raw, Mapping) else None
    password_value = os.environ.get(password_env) if isinstance(password_env, str) else None
    password = password_value.encode("utf-8") if password_value is not None else None
    raw_origin = data.get("public_origin")
    origin = "http://invalid"
    if isinstance(raw_origin, str):
        try:
            origin = _origin(raw_origin)
        except PydanticCustomError:
            pass
    context = ReadContext(base_dir=base_dir, production=production, password=password, origin=origin, document=data)
    reader = Reader(context)
    material = KeyMaterial(reader, password)
    document = reader.table(DocumentTable, data, ())

    listen_table = _table(reader, ListenTable, data, "listen")
    listen = ListenConfig(**listen_table.model_dump()) if listen_table else ListenConfig()

    kt = reader.table(KeysTable, keys_raw, "keys") if keys_raw is not None else None
    signing = signing_next = eid_client = None
    secret: bytes | None = None
    if kt is not None:
        signing = _signing_pair(material, kt, "saml_signing_key", kt.saml_signing_key, kt.saml_signing_cert)
        signing_next = _signing_pair(
            material, kt, "saml_signing_next_key", kt.saml_signing_next_key, kt.saml_signing_next_cert
        )
        eid_client = material.pair(("keys", "eid_client_key"), kt.eid_client_key, kt.eid_client_cert)
        secret = kt.pseudonym_secret.value

    store_table = _table(reader, StoreTable, data, "store")
    store = store_table.settings(base_dir) if store_table else None
    limits_table = _table(reader, LimitsTable, data, "limits")
    limits = (
        LimitsConfig(**{**limits_table.model_dump(), "trusted_proxies": tuple(limits_table.trusted_proxies)})
        if limits_table
        else LimitsConfig()
    )
    audit = AuditConfig()
    audit_table = _table(reader, AuditTable, data, "audit")
    if audit_table is not None:
        audit = AuditConfig(
            audit_table.enabled, audit_table.jsonl_path, audit_table.secret.value if audit_table.secret else None
        )
    metrics_table = _table(reader, MetricsTable, data, "metrics")
    metrics = MetricsConfig(metrics_table.enabled, tuple(metrics_table.allow)) if metrics_table else MetricsConfig()
    flow_table = _table(reader, FlowTable, data, "flow")
    flow = FlowConfig(**flow_table.model_dump()) if flow_table else FlowConfig()

    # --- the eID-Server: its kind is a line of the backend registry ----------------------------------------
    eid_raw = data.get("eid_server")
    raw_kind = eid_raw.get("kind", "simulator") if isinstance(eid_raw, Mapping) else "simulator"
    ekind = raw_kind if isinstance(raw_kind, str) and raw_kind in BACKENDS else "simulator"
    backend = BACKENDS[ekind]
    eid_server = reader.run(
        lambda: parse_eid_server(
            eid_raw if isinstance(eid_raw, Mapping) else None,
            material,
            eid_client_key=kt.eid_client_key if kt else None,
        )
    )

    simulator: SimulatorSection | None = None
    if "simulator" in data:
        st = _table(reader, SimulatorTable, data, "simulator")
        if st is not None:
            if st.key is None and "simulator" in backend.needs:
                reader.problem(("simulator", "key"), "is required")
            sim_key = material.pair(("simulator", "key"), st.key, st.cert, password=False, strength=False)
            if sim_key is not None:
                simulator = SimulatorSection(sim_key, st.prefix, st.sessions)
        if production:
            reader.problem("simulator", "the simulator must not be configured in production")
    elif "simulator" in backend.needs:
        reader.problem("simulator", f'is required when eid_server.kind = "{ekind}" (key and cert)')

    idp_table = _table(reader, SamlIdpTable, data, "saml_idp")
    idp = SamlIdpConfig((idp_table.entity_id if idp_table else None) or f"{origin}/saml/metadata")

    demo = DemoConfig(False, None, f"{origin}/demo/metadata", None)
    dt = _table(reader, DemoTable, data, "demo")
    if dt is not None:
        demo_key = material.pair(("demo", "key"), dt.key, dt.cert, password=False, strength=False)
        demo_signing = material.pair(("demo", "signing_key"), dt.signing_key, dt.signing_cert, password=False)
        if (
            demo_signing is not None
            and demo_key is not None
            and not isinstance(demo_key.private_key, rsa.RSAPrivateKey)
        ):
            reader.problem(
                ("demo", "key"),
                "must be an RSA key: with signing_key set it only decrypts assertions, "
                "and the gateway encrypts them with RSA-OAEP",
            )
        demo = DemoConfig(
            dt.enabled,
            demo_key,
            dt.entity_id or f"{origin}/demo/metadata",
            dt.service_id if dt.enabled else None,
            dt.state,
            demo_signing,
        )

    services = reader.run(lambda: parse_services(data.get("services"), context)) or ()
    if demo.enabled and demo.service_id is not None:
        raw_services = data.get("services")
        entries = raw_services if isinstance(raw_services, list) else []
        ids = {s.get("id") for s in entries if isinstance(s, Mapping) and isinstance(s.get("id"), str)}
        if demo.service_id not in ids:
            reader.problem(("demo", "service_id"), f"no [[services]] entry with id = {demo.service_id!r}")

    # --- the tables of other packages, each read by its own parser --------------------------------------------
    oidc = reader.run(lambda: parse_oidc_settings(data, base_dir, production=production, password=password))
    embedded_paos: EmbeddedPaosSettings | None = None
    parse_backend = backend.parse_settings
    if parse_backend is not None:  # the section the backend needs ([embedded_paos])
        embedded_paos = reader.run(lambda: parse_backend(data, base_dir, production=production, origin=origin))
    kiosks = reader.run(lambda: parse_kiosk_settings(data, context))
    branding = reader.run(lambda: parse_branding(data, base_dir, production=production)) or Branding()
    wallet = reader.run(lambda: parse_wallet(data, context))
    if "wallet" not in data or wallet is not None:  # a broken [wallet] is reported once, by parse_wallet
        check_service_methods(services, wallet, data.get("services"), reader)

    if listen.workers > 1:
        for reason in single_process_reasons(ekind, simulator=simulator, demo=demo):
            reader.problem(("listen", "workers"), f"must be 1 because {reason}")

    reader.check()
    assert document is not None and eid_server is not None and store is not None
    assert signing is not None and eid_client is not None and secret is not None and kt is not None
    keys = KeysConfig(signing, signing_next, eid_client, kt.eid_client_key, kt.eid_client_cert, secret, password)
    if not backend.remote:  # the gateway pins the certificate of the eID-Server it mounts itself
        eid_server = replace(
            eid_server,
            server_cert=embedded_paos.signing.certificate
            if embedded_paos
            else (simulator.key.certificate if simulator else None),
        )
    registry = ServiceRegistry(services)
    if oidc is not None:
        registry = with_oidc_services(registry, oidc)
    return GatewayConfig(
        mode=document.mode,
        public_origin=origin,
        listen=listen,
        keys=keys,
        store=store,
        flow=flow,
        eid_server=eid_server,
        simulator=simulator,
        saml_idp=idp,
        services=registry,
        demo=demo,
        source=source,
        oidc=oidc,
        limits=limits,
        audit=audit,
        metrics=metrics,
        embedded_paos=embedded_paos,
        kiosks=kiosks,
        branding=branding,
        wallet=wallet,
    )
