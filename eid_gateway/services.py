"""Registered city services (relying parties): who may ask, where answers go, what they may receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from cryptography import x509

from eid_gateway.identity import Attribute, LevelOfAssurance

#: The key transport for a service whose metadata names none: RSA-OAEP of XML Encryption 1.0 (SHA-1 as
#: OAEP hash and in MGF1). The only one that lasso/mod_auth_mellon and pysaml2 on xmlsec1 1.2 decrypt and
#: that python3-saml's schemas accept; why that is within TR-02102: docs/saml.md#key-transport.
DEFAULT_KEY_TRANSPORT: Final = "rsa-oaep-mgf1p"


@dataclass(frozen=True)
class SamlServiceSettings:
    """A service that speaks SAML 2.0 to the gateway (the gateway is its IdP)."""

    entity_id: str
    acs_urls: tuple[str, ...]
    signing_certs: tuple[x509.Certificate, ...]
    encryption_cert: x509.Certificate | None = None
    require_signed_requests: bool = True
    encrypt_assertions: bool = False
    #: "rsa-oaep-mgf1p" (XML Enc 1.0, the default: every SP stack measured decrypts it) or "rsa-oaep"
    #: (XML Enc 1.1, MGF1-SHA256; chosen when the SP's metadata lists it); the data is AES-GCM either way.
    key_transport: str = DEFAULT_KEY_TRANSPORT


@dataclass(frozen=True)
class OidcServiceSettings:
    """A service that speaks OpenID Connect to the gateway (served by eid_gateway.frontends.oidc)."""

    client_id: str
    redirect_uris: tuple[str, ...]
    client_secret_hash: str | None = None
    jwks_uri: str | None = None
    public_client: bool = False


@dataclass(frozen=True)
class Service:
    """One registered service. ``id`` is the config key; ``name_*`` is shown to citizens."""

    id: str
    name_de: str
    name_en: str
    allowed_attributes: frozenset[Attribute]
    required_attributes: frozenset[Attribute] = frozenset()
    minimum_age: int | None = None
    community_id: str | None = None
    level_of_assurance: LevelOfAssurance = LevelOfAssurance.HIGH
    saml: SamlServiceSettings | None = None
    #: How citizens may sign in, in the start page's order: "card" (the eID card via an eID-Server),
    #: "wallet" (the EUDI wallet's PID, eid_gateway.wallet; needs a [wallet] section).
    methods: tuple[str, ...] = ("card",)
    oidc: OidcServiceSettings | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceRegistry:
    """Lookup of services by SAML entity ID / OIDC client ID; exact matches only."""

    services: tuple[Service, ...]

    def by_entity_id(self, entity_id: str) -> Service | None:
        for s in self.services:
            if s.saml is not None and s.saml.entity_id == entity_id:
                return s
        return None

    def by_client_id(self, client_id: str) -> Service | None:
        for s in self.services:
            if s.oidc is not None and s.oidc.client_id == client_id:
                return s
        return None

    def by_id(self, service_id: str) -> Service | None:
        for s in self.services:
            if s.id == service_id:
                return s
        return None
