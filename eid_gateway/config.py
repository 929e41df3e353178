"""The gateway's one configuration file (TOML), validated at start into frozen dataclasses.

Validation collects *every* problem before failing, and each message names the config key and what is
wrong with it (``services[2].saml.acs_urls[0]: must be an absolute https URL``), so an operator fixes a
file in one pass. Relative paths are resolved against the config file's directory. Keys and
certificates are loaded here too: a gateway that starts has usable key material.
"""

# How a new section is added (e.g. ``[branding]``): write its model next to what it configures
# (``eid_gateway/<package>/settings.py``): a :class:`eid_gateway.settings_base.Section` subclass whose
# fields are the TOML keys (types from settings_base: Range, Text, FilePath, MaterialFile; cross-field
# checks in an ``@model_validator(mode="after")`` collecting into ``Problems``), plus a
# ``parse_<name>(document, context) -> <Name>Settings | None`` that calls ``settings_base.validate`` and
# raises ``ConfigError``. Here: one line in ``parse_config`` (``reader.run(lambda: parse_<name>(...))``),
# the key in ``_SECTIONS`` and a field in ``GatewayConfig``. Unknown keys and wrong types are then errors
# with their key path, collected with every other problem of the file.

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from tr03110.cvc import CvcError, CvCertificate, load_cvc_file
from certs.devpki import DEV_MARKER, is_dev_file
from certs.loading import (
    CertLoadError,
    is_pkcs12,
    load_certificate_file,
    load_key_pair_file,
    load_secret_file,
)
from eid_gateway.frontends.oidc.settings import (
    OidcSettings,
    parse_oidc_settings,
    with_oidc_services,
)
from eid_gateway.kiosks.settings import KioskSettings, parse_kiosk_settings
from eid_gateway.settings_base import ConfigError
from eid_gateway.eidserver.settings import EmbeddedPaosSettings
from eid_gateway.backends.registry import BACKENDS, BackendSections, kinds_text
from eid_gateway.identity import Attribute, LevelOfAssurance
from eid_gateway.services import DEFAULT_KEY_TRANSPORT, SamlServiceSettings, Service, ServiceRegistry
from eid_gateway.web.branding import Branding, BrandingConfigError, parse_branding
from saml.errors import SamlError
from saml.keys import KeyPair, check_key_strength

Mode = Literal["development", "production"]
DEFAULT_CONFIG_PATH = Path("instance/gateway.toml")
CONFIG_ENV = "EID_GATEWAY_CONFIG"

_SERVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: TR-03130 CommunityID pattern (PlaceVerificationRequest).
_COMMUNITY_ID = re.compile(r"[0][0-9]{3}([0-9]{2}([0][0-9]([0-9]{2}([0][0-9]{3})?)?)?)?")
_LOA = {loa.name.lower(): loa for loa in LevelOfAssurance}


#: Upper bound of ``[listen] workers`` / ``--workers`` (far above any core count the gateway meets).
MAX_WORKERS = 64


@dataclass(frozen=True)
class ListenConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    #: Processes sharing the port (SO_REUSEPORT) under one supervisor; 1 = one process, no supervisor.
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


def single_process_reasons(eid_server_kind: str, *, kiosks: bool, simulator: SimulatorSection | None,
                           demo: DemoConfig) -> list[str]:
    """What of this configuration lives in one process's memory only, so that several workers would
    each hold a part of it and requests landing on another worker would silently miss it."""
    reasons: list[str] = []
    if kiosks:
        reasons.append("kiosks are configured ([kiosk_monitor], [[kiosks]]): the live kiosk registry and the "
                       "staff dashboard's stream are kept in one process")
    backend_reason = BACKENDS[eid_server_kind].single_process_reason(BackendSections(simulator=simulator))
    if backend_reason is not None:
        reasons.append(backend_reason)
    if demo.enabled and demo.state is None:
        reasons.append("demo.state is not set: the demo service's sent requests and seen assertions would be "
                       'kept in one process (set it to a SQLite file, e.g. "data/demo-service.sqlite3")')
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


T = TypeVar("T")
_MISSING: Any = object()


class _Reader:
    """Walks one TOML table, recording errors under dotted key names instead of raising."""

    def __init__(self, errors: list[str], data: Mapping[str, Any], prefix: str, base_dir: Path,
                 material: list[tuple[str, Path]] | None = None):
        self.errors = errors
        self.data = data
        self.prefix = prefix
        self.base_dir = base_dir
        self.known: set[str] = set()
        #: (setting, file) of every key, certificate and secret named so far, shared by the whole
        #: document: production checks them all with one rule (:func:`_refuse_development_material`).
        self.material = material if material is not None else []

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> None:
        self.errors.append(f"{self.key(name)}: {message}")

    def _get(self, name: str, kind: type | tuple[type, ...], kind_name: str, required: bool) -> Any:
        self.known.add(name)
        if name not in self.data:
            if required:
                self.error(name, "is required")
            return _MISSING
        value = self.data[name]
        # bool is an int subclass in Python; TOML keeps them apart, so do we.
        if isinstance(value, bool) and kind is not bool:
            self.error(name, f"must be {kind_name}, not a boolean")
            return _MISSING
        if not isinstance(value, kind):
            self.error(name, f"must be {kind_name}")
            return _MISSING
        return value

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        v = self._get(name, str, "a string", required)
        if v is _MISSING:
            return default
        if not v.strip():
            self.error(name, "must not be empty")
            return default
        return str(v)

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        v = self._get(name, int, "an integer", False)
        if v is _MISSING:
            return default
        if not lo <= v <= hi:
            self.error(name, f"must be between {lo} and {hi}")
            return default
        return int(v)

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        v = self._get(name, (int, float), "a number", False)
        if v is _MISSING:
            return default
        if not lo <= v <= hi:
            self.error(name, f"must be between {lo:g} and {hi:g}")
            return default
        return float(v)

    def boolean(self, name: str, default: bool) -> bool:
        v = self._get(name, bool, "true or false", False)
        return default if v is _MISSING else bool(v)

    def strings(self, name: str, *, required: bool = False) -> list[tuple[str, str]]:
        """A list of strings as (key name with index, value)."""
        v = self._get(name, list, "a list of strings", required)
        if v is _MISSING:
            return []
        out: list[tuple[str, str]] = []
        for i, item in enumerate(v):
            if not isinstance(item, str):
                self.errors.append(f"{self.key(name)}[{i}]: must be a string")
            else:
                out.append((f"{self.key(name)}[{i}]", item))
        return out

    def table(self, name: str, *, required: bool = False) -> _Reader | None:
        v = self._get(name, dict, "a table", required)
        if v is _MISSING:
            return None
        return _Reader(self.errors, v, self.key(name), self.base_dir, self.material)

    def tables(self, name: str) -> list[_Reader]:
        v = self._get(name, list, "an array of tables ([[" + name + "]])", False)
        if v is _MISSING:
            return []
        out: list[_Reader] = []
        for i, item in enumerate(v):
            if not isinstance(item, dict):
                self.errors.append(f"{self.key(name)}[{i}]: must be a table")
            else:
                out.append(_Reader(self.errors, item, f"{self.key(name)}[{i}]", self.base_dir, self.material))
        return out

    def path(self, name: str, *, required: bool = False) -> Path | None:
        v = self.string(name, required=required)
        if v is None:
            return None
        p = Path(v).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def material_path(self, name: str, *, required: bool = False) -> Path | None:
        """A path to a key, certificate or secret file: recorded for the production check."""
        p = self.path(name, required=required)
        if p is not None:
            self.material.append((self.key(name), p))
        return p

    def load(self, name: str, loader: Callable[[], T]) -> T | None:
        """Run a file loader, turning its error into a message under ``name``."""
        try:
            return loader()
        except CertLoadError as exc:
            self.error(name, str(exc))
            return None

    def check_unknown(self) -> None:
        for extra in sorted(set(self.data) - self.known):
            self.error(extra, "unknown key")


def _check_url(r: _Reader, key: str, value: str, production: bool) -> bool:
    """Absolute URL: https always in production; http also allowed in development."""
    parts = urlsplit(value)
    allowed = ("https",) if production else ("https", "http")
    if parts.scheme not in allowed or not parts.netloc or parts.fragment:
        r.errors.append(
            f"{key}: must be an absolute https URL"
            + ("" if production else " (http is allowed in development)")
        )
        return False
    return True


def _load_pair(
    r: _Reader, key_name: str, cert_name: str, *, required: bool, password: bytes | None = None
) -> KeyPair | None:
    key_path = r.material_path(key_name, required=required)
    cert_path = r.material_path(cert_name)
    if key_path is None:
        if cert_path is not None:
            r.error(key_name, f"is required when {r.key(cert_name)} is set")
        return None
    if cert_path is not None and not cert_path.is_file():  # under its own key, not the key file's
        r.error(cert_name, f"file {cert_path} does not exist")
        return None
    return r.load(key_name, lambda: load_key_pair_file(key_path, cert_path, password))


def _load_signing_pair(
    r: _Reader, key_name: str, cert_name: str, *, required: bool, password: bytes | None = None
) -> KeyPair | None:
    """A PEM / PKCS#12 key pair, or a key held in an HSM: ``key_name = "pkcs11:token=..;object=.."``
    (RFC 7512) with the certificate as a file, ``pkcs11_module`` (default: SoftHSM2) and the PIN from
    the environment variable named by ``pkcs11_pin_env``."""
    r.known.update({"pkcs11_module", "pkcs11_pin_env"})
    value = r.data.get(key_name)
    if not (isinstance(value, str) and value.startswith("pkcs11:")):
        return _load_pair(r, key_name, cert_name, required=required, password=password)
    from certs.pkcs11 import SOFTHSM2_MODULE, Pkcs11Error, load_pkcs11_key_pair

    r.known.add(key_name)
    cert_path = r.material_path(cert_name, required=True)
    pin_env = r.string("pkcs11_pin_env", required=True)
    module = r.path("pkcs11_module") or SOFTHSM2_MODULE
    pin = os.environ.get(pin_env) if pin_env else None
    if pin_env is not None and pin is None:
        r.error("pkcs11_pin_env", f"environment variable {pin_env} is not set")
    if cert_path is None or pin is None:
        return None
    try:
        return load_pkcs11_key_pair(value, load_certificate_file(cert_path), module=module, pin=pin)
    except (CertLoadError, Pkcs11Error, SamlError) as exc:
        r.error(key_name, str(exc))
        return None


def _strength(r: _Reader, name: str, kp: KeyPair | None) -> None:
    if kp is None:
        return
    try:
        check_key_strength(kp.private_key.public_key())
    except SamlError as exc:
        r.error(name, str(exc))


def _refuse_development_material(material: list[tuple[str, Path]], password: bytes | None) -> list[str]:
    """Production's one rule for key material: no setting may name a file of the development PKI
    (everything ``eid-gateway init`` and ``certs/devpki.py`` write; see :func:`certs.devpki.is_dev_file`)."""
    return [
        f"{setting}: {path} is development key material (marked {DEV_MARKER}, written by `eid-gateway init`); "
        "production refuses it"
        for setting, path in dict.fromkeys(material) if is_dev_file(path, password)
    ]


def _origin(r: _Reader) -> str:
    v = r.string("public_origin", required=True)
    if v is None:
        return "http://invalid"
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment or (
        parts.path not in ("", "/")
    ):
        r.error("public_origin", "must be an origin like https://eid.example.de (scheme, host, optional port)")
        return "http://invalid"
    return f"{parts.scheme}://{parts.netloc}"


def _attributes(
    r: _Reader, name: str, known: set[Attribute] | None = None, *, required: bool = False
) -> frozenset[Attribute]:
    out: set[Attribute] = set()
    if required and isinstance(r.data.get(name), list) and not r.data[name]:
        r.error(name, "must list at least one attribute")
    for key, value in r.strings(name, required=required):
        try:
            attr = Attribute(value)
        except ValueError:
            names = ", ".join(a.value for a in Attribute)
            r.errors.append(f"{key}: unknown attribute {value!r} (known: {names})")
            continue
        if known is not None and attr not in known:
            r.errors.append(f"{key}: {value!r} must also be listed in {r.key('attributes')}")
            continue
        out.add(attr)
    return frozenset(out)


def _service(r: _Reader, production: bool) -> Service | None:
    sid = r.string("id", required=True)
    if sid is not None and not _SERVICE_ID.fullmatch(sid):
        r.error("id", "must be 1-64 characters a-z, 0-9, '-' or '_', starting with a letter or digit")
    name_de = r.string("name_de", required=True)
    name_en = r.string("name_en") or name_de
    attributes = _attributes(r, "attributes", required=True)
    required = _attributes(r, "required", set(attributes))
    minimum_age: int | None = None
    if "minimum_age" in r.data:
        minimum_age = r.integer("minimum_age", 0, 1, 150) or None
        if minimum_age is not None and Attribute.AGE_VERIFICATION not in attributes:
            r.error("minimum_age", "needs 'age_verification' in attributes")
    community_id = r.string("community_id")
    if community_id is not None:
        if not _COMMUNITY_ID.fullmatch(community_id):
            r.error("community_id", "must be a TR-03130 community ID (e.g. '0276' or '02760503150000')")
        if Attribute.PLACE_VERIFICATION not in attributes:
            r.error("community_id", "needs 'place_verification' in attributes")
    loa_name = r.string("level_of_assurance", "high") or "high"
    loa = _LOA.get(loa_name)
    if loa is None:
        r.error("level_of_assurance", f"must be one of {', '.join(_LOA)}")
    saml = _saml_settings(r, production)
    if "oidc" in r.data:
        r.known.add("oidc")  # [services.oidc] is read by the OIDC provider's settings (frontends/oidc/settings.py)
    r.check_unknown()
    if sid is None or name_de is None or loa is None:
        return None
    return Service(
        id=sid,
        name_de=name_de,
        name_en=name_en or name_de,
        allowed_attributes=attributes,
        required_attributes=required,
        minimum_age=minimum_age,
        community_id=community_id,
        level_of_assurance=loa,
        saml=saml,
    )


def _saml_settings(r: _Reader, production: bool) -> SamlServiceSettings | None:
    s = r.table("saml")
    if s is None:
        return None
    entity_id = s.string("entity_id", required=True)
    acs: list[str] = []
    for key, url in s.strings("acs_urls", required=True):
        if _check_url(s, key, url, production):
            acs.append(url)
    if "acs_urls" in s.data and not s.data["acs_urls"]:
        s.error("acs_urls", "must list at least one URL")
    certs: list[x509.Certificate] = []
    for name in ("signing_cert", "signing_certs"):
        if name == "signing_cert":
            paths = [(s.key(name), s.material_path(name))] if name in s.data else []
        else:
            listed = [
                (key, Path(v) if Path(v).is_absolute() else s.base_dir / v) for key, v in s.strings(name)
            ]
            s.material.extend(listed)
            paths = list(listed)
        for key, p in paths:
            if p is None:
                continue
            try:
                certs.append(load_certificate_file(p))
            except CertLoadError as exc:
                s.errors.append(f"{key}: {exc}")
    require_signed = s.boolean("require_signed_requests", True)
    if require_signed and not certs and "signing_cert" not in s.data and "signing_certs" not in s.data:
        s.error("signing_cert", "is required while require_signed_requests = true")
    if production and not require_signed:
        s.error("require_signed_requests", "must be true in production")
    enc_path = s.material_path("encryption_cert")
    enc = s.load("encryption_cert", lambda: load_certificate_file(enc_path)) if enc_path else None
    encrypt = s.boolean("encrypt_assertions", False)
    if encrypt and enc is None and "encryption_cert" not in s.data:
        s.error("encryption_cert", "is required when encrypt_assertions = true")
    key_transport = s.string("key_transport", DEFAULT_KEY_TRANSPORT) or DEFAULT_KEY_TRANSPORT
    if key_transport not in ("rsa-oaep", "rsa-oaep-mgf1p"):
        s.error("key_transport", 'must be "rsa-oaep" or "rsa-oaep-mgf1p"')
    s.check_unknown()
    if entity_id is None:
        return None
    return SamlServiceSettings(
        entity_id=entity_id,
        acs_urls=tuple(acs),
        signing_certs=tuple(certs),
        encryption_cert=enc,
        require_signed_requests=require_signed,
        encrypt_assertions=encrypt,
        key_transport=key_transport,
    )


def _secret_from_env(r: _Reader, name: str) -> str | None:
    env = r.string(name)
    if env is None:
        return None
    value = os.environ.get(env)
    if value is None:
        r.error(name, f"environment variable {env} is not set")
    return value


def _networks(r: _Reader, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if name not in r.data:
        r.known.add(name)
        return default
    out: list[str] = []
    for key, value in r.strings(name):
        try:
            out.append(str(ipaddress.ip_network(value, strict=False)))
        except ValueError:
            r.errors.append(f"{key}: not an IP address or network ({value!r})")
    return tuple(out)


def _store_section(top: _Reader, base_dir: Path) -> StoreConfig:
    """``[store]``: ``kind = "sqlite"`` (path) or ``kind = "redis"`` (url or sentinels, prefix, TLS)."""
    st = top.table("store") or _Reader(top.errors, {}, "store", base_dir)
    kind = st.string("kind", "sqlite") or "sqlite"
    if kind not in ("sqlite", "redis"):
        st.error("kind", "must be \"sqlite\" or \"redis\"")
        kind = "sqlite"
    store_path = st.path("path") or base_dir / "data" / "gateway.sqlite3"
    redis: RedisSettings | None = None
    redis_keys = ("url", "key_prefix", "username", "password_env", "sentinels", "sentinel_master",
                  "sentinel_password_env", "db", "tls", "tls_ca_file", "timeout_seconds",
                  "connect_timeout_seconds", "retries", "max_connections")
    if kind == "redis":
        url = st.string("url", "redis://127.0.0.1:6379/0") or "redis://127.0.0.1:6379/0"
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            st.error("url", "must be a redis://, rediss:// or unix:// URL")
        prefix = st.string("key_prefix", "eidgw:") or "eidgw:"
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", prefix):
            st.error("key_prefix", "must be 1-64 characters A-Z, a-z, 0-9, '_', '.', ':' or '-'")
        sentinels: list[tuple[str, int]] = []
        for key, value in st.strings("sentinels"):
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                st.errors.append(f"{key}: must be host:port")
            else:
                sentinels.append((host.strip("[]"), int(port)))
        ca = st.material_path("tls_ca_file")
        if ca is not None and not ca.is_file():
            st.error("tls_ca_file", f"file {ca} does not exist")
        tls = st.boolean("tls", url.startswith("rediss://"))
        redis = RedisSettings(
            url=url,
            key_prefix=prefix,
            username=st.string("username"),
            password=_secret_from_env(st, "password_env"),
            sentinels=tuple(sentinels),
            sentinel_master=st.string("sentinel_master", "eidgw") or "eidgw",
            sentinel_password=_secret_from_env(st, "sentinel_password_env"),
            db=st.integer("db", 0, 0, 1023),
            tls=tls,
            tls_ca_file=ca,
            timeout_seconds=st.number("timeout_seconds", 2.0, 0.05, 60),
            connect_timeout_seconds=st.number("connect_timeout_seconds", 1.0, 0.05, 60),
            retries=st.integer("retries", 3, 0, 20),
            max_connections=st.integer("max_connections", 64, 1, 10000),
        )
        if top.data.get("mode") == "production" and not tls and not url.startswith("unix://"):
            if not all(h in ("127.0.0.1", "::1", "localhost") for h in
                       [urlsplit(url).hostname or "", *(h for h, _ in sentinels)]):
                st.error("tls", "must be true in production when Redis is reached over the network")
    else:
        for name in redis_keys:
            if name in st.data:
                st.known.add(name)
                st.error(name, "only applies to kind = \"redis\"")
    st.check_unknown()
    return StoreConfig("redis" if kind == "redis" else "sqlite", store_path, redis)


def _limits_section(top: _Reader) -> LimitsConfig:
    lt = top.table("limits")
    if lt is None:
        return LimitsConfig()
    d = LimitsConfig()
    limits = LimitsConfig(
        enabled=lt.boolean("enabled", d.enabled),
        window_seconds=lt.integer("window_seconds", d.window_seconds, 1, 3600),
        starts_per_ip=lt.integer("starts_per_ip", d.starts_per_ip, 1, 10**6),
        starts_per_service=lt.integer("starts_per_service", d.starts_per_service, 1, 10**7),
        pending_per_ip=lt.integer("pending_per_ip", d.pending_per_ip, 1, 10**6),
        tctoken_per_ip=lt.integer("tctoken_per_ip", d.tctoken_per_ip, 1, 10**6),
        refresh_per_ip=lt.integer("refresh_per_ip", d.refresh_per_ip, 1, 10**6),
        max_body_bytes=lt.integer("max_body_bytes", d.max_body_bytes, 16 * 1024, 16 * 1024 * 1024),
        trusted_proxies=_networks(lt, "trusted_proxies", d.trusted_proxies),
    )
    lt.check_unknown()
    return limits


def _audit_section(top: _Reader) -> AuditConfig:
    at = top.table("audit")
    if at is None:
        return AuditConfig()
    enabled = at.boolean("enabled", True)
    jsonl = at.path("jsonl_path")
    if jsonl is not None and not jsonl.parent.is_dir():
        at.error("jsonl_path", f"directory {jsonl.parent} does not exist")
    secret_path = at.material_path("secret")
    secret = at.load("secret", lambda: load_secret_file(secret_path)) if secret_path else None
    at.check_unknown()
    return AuditConfig(enabled, jsonl, secret)


def _metrics_section(top: _Reader) -> MetricsConfig:
    mt = top.table("metrics")
    if mt is None:
        return MetricsConfig()
    d = MetricsConfig()
    metrics = MetricsConfig(mt.boolean("enabled", True), _networks(mt, "allow", d.allow))
    mt.check_unknown()
    return metrics


def parse_config(data: Mapping[str, Any], base_dir: Path, source: Path | None = None) -> GatewayConfig:
    """Validate parsed TOML; raises :class:`ConfigError` with every problem found."""
    errors: list[str] = []
    top = _Reader(errors, data, "", base_dir)

    mode_value = top.string("mode", "development") or "development"
    if mode_value not in ("development", "production"):
        top.error("mode", "must be \"development\" or \"production\"")
        mode_value = "development"
    mode: Mode = "production" if mode_value == "production" else "development"
    production = mode == "production"

    origin = _origin(top)
    if production and not origin.startswith("https://"):
        top.error("public_origin", "must be an https origin in production")

    listen = ListenConfig()
    lt = top.table("listen")
    if lt is not None:
        ld = ListenConfig()
        listen = ListenConfig(lt.string("host", "127.0.0.1") or "127.0.0.1", lt.integer("port", 8080, 1, 65535),
                              lt.integer("workers", 1, 1, MAX_WORKERS),
                              lt.number("header_timeout_seconds", ld.header_timeout_seconds, 0.1, 600),
                              lt.number("body_timeout_seconds", ld.body_timeout_seconds, 0.1, 3600),
                              lt.number("keepalive_timeout_seconds", ld.keepalive_timeout_seconds, 0.1, 3600),
                              lt.integer("max_connections", ld.max_connections, 1, 1_000_000),
                              lt.integer("max_connections_per_address", ld.max_connections_per_address, 1, 1_000_000))
        lt.check_unknown()

    # --- keys --------------------------------------------------------------------------------------
    kt = top.table("keys", required=True) or _Reader(errors, {}, "keys", base_dir)
    # Encrypted PEM keys / PKCS#12 files: the password comes from the environment, never the file.
    password: bytes | None = None
    password_env = kt.string("password_env")
    if password_env is not None:
        value = os.environ.get(password_env)
        if value is None:
            kt.error("password_env", f"environment variable {password_env} is not set")
        else:
            password = value.encode("utf-8")
    signing = _load_signing_pair(kt, "saml_signing_key", "saml_signing_cert", required=True, password=password)
    _strength(kt, "saml_signing_key", signing)
    signing_next = _load_signing_pair(
        kt, "saml_signing_next_key", "saml_signing_next_cert", required=False, password=password
    )
    _strength(kt, "saml_signing_next_key", signing_next)
    eid_key_path = kt.material_path("eid_client_key", required=True)
    eid_cert_path = kt.material_path("eid_client_cert", required=True)
    eid_client = None
    if eid_key_path is not None and eid_cert_path is not None:
        eid_client = kt.load(
            "eid_client_key", lambda: load_key_pair_file(eid_key_path, eid_cert_path, password)
        )
    _strength(kt, "eid_client_key", eid_client)
    secret_path = kt.material_path("pseudonym_secret", required=True)
    secret = kt.load("pseudonym_secret", lambda: load_secret_file(secret_path)) if secret_path else None
    kt.check_unknown()

    # --- store, flow ---------------------------------------------------------------------------------
    store = _store_section(top, base_dir)
    limits = _limits_section(top)
    audit = _audit_section(top)
    metrics = _metrics_section(top)

    ft = top.table("flow") or _Reader(errors, {}, "flow", base_dir)
    flow = FlowConfig(
        ft.integer("ttl_seconds", 600, 60, 3600),
        ft.number("result_wait_seconds", 3.0, 0, 30),
        ft.number("late_result_grace_seconds", 2.0, 0, 30),
    )
    ft.check_unknown()

    # --- eID-Server ----------------------------------------------------------------------------------
    et = top.table("eid_server") or _Reader(errors, {}, "eid_server", base_dir)
    ekind = et.string("kind", "simulator") or "simulator"
    if ekind not in BACKENDS:
        et.error("kind", f"must be {kinds_text()}")
        ekind = "simulator"
    backend = BACKENDS[ekind]
    if production and backend.test_facility:
        real = {name: kind for name, kind in BACKENDS.items() if kind.remote}
        et.error("kind", f"the {ekind} is a test facility; production needs kind = {kinds_text(real)}")
    remote = backend.remote
    eurl = et.string("url", required=remote)
    if eurl is not None and not _check_url(et, et.key("url"), eurl, production):
        eurl = None
    server_cert_path = et.material_path("server_cert", required=remote)
    server_cert = (
        et.load("server_cert", lambda: load_certificate_file(server_cert_path)) if server_cert_path else None
    )
    if ekind == "tr03130" and eurl is not None and eurl.startswith("https://") and eid_key_path is not None \
            and is_pkcs12(eid_key_path):
        kt.error("eid_client_key", "mutual TLS to the eID-Server needs a PEM key and certificate, not PKCS#12")
    timeout = et.number("timeout_seconds", 10.0, 0.5, 120)
    tls_ca = et.material_path("tls_ca_file")
    if tls_ca is not None and not tls_ca.is_file():
        et.error("tls_ca_file", f"file {tls_ca} does not exist")
    tls_server_name = et.string("tls_server_name")
    retries = et.integer("retries", 2, 0, 5)
    breaker_failures = et.integer("circuit_breaker_failures", 5, 1, 1000)
    breaker_reset = et.number("circuit_breaker_reset_seconds", 30.0, 1, 3600)
    authz_cert: CvCertificate | None = None
    authz_path = et.path("authorization_certificate")
    if authz_path is not None:
        try:
            authz_cert = load_cvc_file(authz_path)
        except CvcError as exc:
            et.error("authorization_certificate", str(exc))
    eid_saml: EidSamlConfig | None = None
    if ekind == "saml":
        sp_key = _load_pair(et, "sp_key", "sp_cert", required=True, password=password)
        _strength(et, "sp_key", sp_key)
        if sp_key is not None and sp_key.is_ec:
            et.error("sp_key", "must be an RSA key (the eID-Server encrypts assertions with RSA-OAEP)")
        enc_path = et.material_path("encryption_cert")
        enc_cert = et.load("encryption_cert", lambda: load_certificate_file(enc_path)) if enc_path else server_cert
        sp_entity_id = et.string("sp_entity_id", f"{origin}/eid/saml/metadata") or f"{origin}/eid/saml/metadata"
        legacy = et.boolean("legacy_algorithms", False)
        server_entity_id = et.string("server_entity_id", required=True)
        if sp_key is not None and enc_cert is not None and server_entity_id is not None:
            eid_saml = EidSamlConfig(sp_entity_id, sp_key, enc_cert, legacy, server_entity_id)
    et.check_unknown()

    simulator: SimulatorSection | None = None
    smt = top.table("simulator")
    if smt is not None:
        sim_key = _load_pair(smt, "key", "cert", required="simulator" in backend.needs)
        prefix = smt.string("prefix", "/eid-sim") or "/eid-sim"
        if not re.fullmatch(r"/[a-z0-9-]+", prefix):
            smt.error("prefix", "must look like /eid-sim")
        sim_sessions = smt.path("sessions")
        smt.check_unknown()
        if sim_key is not None:
            simulator = SimulatorSection(sim_key, prefix, sim_sessions)
    elif "simulator" in backend.needs:
        top.error("simulator", f"is required when eid_server.kind = \"{ekind}\" (key and cert)")
    if simulator is not None and production:
        top.error("simulator", "the simulator must not be configured in production")

    # --- SAML IdP --------------------------------------------------------------------------------------
    it = top.table("saml_idp") or _Reader(errors, {}, "saml_idp", base_dir)
    idp = SamlIdpConfig(it.string("entity_id", f"{origin}/saml/metadata") or f"{origin}/saml/metadata")
    it.check_unknown()

    # --- demo --------------------------------------------------------------------------------------------
    dt = top.table("demo") or _Reader(errors, {}, "demo", base_dir)
    demo_enabled = dt.boolean("enabled", False)
    demo_key = _load_pair(dt, "key", "cert", required=demo_enabled)
    demo_signing = _load_pair(dt, "signing_key", "signing_cert", required=False)
    _strength(dt, "signing_key", demo_signing)
    if demo_signing is not None and demo_key is not None and not isinstance(demo_key.private_key, rsa.RSAPrivateKey):
        dt.error("key", "must be an RSA key: with signing_key set it only decrypts assertions, and the "
                        "gateway encrypts them with RSA-OAEP")
    demo = DemoConfig(
        enabled=demo_enabled,
        key=demo_key,
        entity_id=dt.string("entity_id", f"{origin}/demo/metadata") or f"{origin}/demo/metadata",
        service_id=dt.string("service_id", "demo") if demo_enabled else None,
        state=dt.path("state"),
        signing_key=demo_signing,
    )
    if production and demo_enabled:
        dt.error("enabled", "the demo service is for development; production refuses it")
    dt.check_unknown()

    # --- services ------------------------------------------------------------------------------------------
    services: list[Service] = []
    for sr in top.tables("services"):
        svc = _service(sr, production)
        if svc is not None:
            services.append(svc)
    seen_ids: set[str] = set()
    seen_entities: set[str] = set()
    for i, svc in enumerate(services):
        if svc.id in seen_ids:
            errors.append(f"services[{i}].id: duplicate service id {svc.id!r}")
        seen_ids.add(svc.id)
        if svc.saml is not None:
            if svc.saml.entity_id in seen_entities:
                errors.append(f"services[{i}].saml.entity_id: duplicate entity ID {svc.saml.entity_id!r}")
            seen_entities.add(svc.saml.entity_id)
    if demo.enabled and demo.service_id is not None and demo.service_id not in seen_ids:
        dt.error("service_id", f"no [[services]] entry with id = {demo.service_id!r}")
    # OIDC ([oidc] and each [services.oidc]) has its own parser; its messages name their keys too.
    top.known.add("oidc")
    oidc: OidcSettings | None = None
    try:
        oidc = parse_oidc_settings(data, base_dir, production=production)
    except ConfigError as exc:
        errors.extend(exc.errors)
    raw_oidc = data.get("oidc")
    if isinstance(raw_oidc, Mapping):  # its key files, also when another [oidc] value is wrong
        quiet = _Reader([], raw_oidc, "oidc", base_dir, top.material)  # the OIDC parser reports errors
        for name in ("signing_key", "next_signing_key", "rsa_signing_key"):
            key_table = quiet.table(name)
            if key_table is not None:
                key_table.material_path("path")
    # The embedded PAOS eID-Server ([embedded_paos]) has its own parser too (eid_gateway/eidserver).
    top.known.add("embedded_paos")
    embedded_paos: EmbeddedPaosSettings | None = None
    if backend.parse_settings is not None:
        try:
            embedded_paos = backend.parse_settings(data, base_dir, production=production, origin=origin)
        except ConfigError as exc:
            errors.extend(exc.errors)
        if embedded_paos is not None:
            top.material.append(("embedded_paos.pki_dir", embedded_paos.pki.tls_cert_path))
    # Bürgerbüro kiosks ([kiosk_monitor], [[kiosks]]) have their own parser (eid_gateway/kiosks).
    top.known.update(("kiosk_monitor", "kiosks"))
    kiosks: KioskSettings | None = None
    try:
        kiosks = parse_kiosk_settings(data)
    except ConfigError as exc:
        errors.extend(exc.errors)
    # The operator's look and legal pages ([branding]) have their own parser (eid_gateway/web/branding.py).
    top.known.add("branding")
    branding = Branding()
    try:
        branding = parse_branding(data, base_dir, production=production)
    except BrandingConfigError as exc:
        errors.extend(exc.errors)
    top.check_unknown()
    if production:
        errors.extend(_refuse_development_material(top.material, password))
    if listen.workers > 1:
        errors.extend(f"listen.workers: must be 1 because {reason}" for reason in
                      single_process_reasons(ekind, kiosks="kiosk_monitor" in data or "kiosks" in data,
                                             simulator=simulator, demo=demo))

    if errors:
        raise ConfigError(errors)
    assert signing is not None and eid_client is not None and secret is not None
    assert eid_key_path is not None and eid_cert_path is not None
    keys = KeysConfig(signing, signing_next, eid_client, eid_key_path, eid_cert_path, secret, password)
    eid_server = EidServerConfig(
        kind=ekind,
        url=eurl,
        server_cert=server_cert if remote else (
            embedded_paos.signing.certificate if embedded_paos else (simulator.key.certificate if simulator else None)),
        timeout_seconds=timeout,
        tls_ca_file=tls_ca,
        authorization_certificate=authz_cert,
        retries=retries,
        breaker_failures=breaker_failures,
        breaker_reset_seconds=breaker_reset,
        tls_server_name=tls_server_name,
        saml=eid_saml,
    )
    registry = ServiceRegistry(tuple(services))
    if oidc is not None:
        registry = with_oidc_services(registry, oidc)
    return GatewayConfig(
        mode=mode,
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
    )
