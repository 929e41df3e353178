"""The demo city service's SAML side, written as any external service would write it: only the public
``saml`` API, the gateway's metadata fetched over HTTP, and the service's own keys.

Trust: the gateway's metadata is accepted only if its signature verifies with a pinned certificate
(a real service receives it out of band when it registers; the demo reads the gateway's current and
next signing certificates from the shared config file). The signing keys listed in that verified
metadata then verify the Responses, so a key rollover announced in the metadata needs no change here.

Keys: the service signs its AuthnRequests with one key and decrypts assertions with another (the gateway
registers them as the service's signing_cert and encryption_cert).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import aiohttp
from cryptography import x509

from saml import (
    BINDING_HTTP_REDIRECT,
    NAMEID_PERSISTENT,
    AuthnRequest,
    EntityDescriptor,
    InMemoryReplayCache,
    InMemoryRequestStore,
    KeyPair,
    MetadataError,
    NameIDPolicy,
    ReplayCache,
    RequestStore,
    ResponseValidator,
    ValidatedResponse,
    build_authn_request,
    parse_metadata,
    redirect_url,
)

#: Re-fetch the gateway's metadata at least this often, even if it says it may be cached longer.
MAX_METADATA_AGE: Final = timedelta(hours=1)
METADATA_MAX_BYTES: Final = 256 * 1024
#: How long a sent AuthnRequest may stay unanswered (the gateway's own flow lasts at most an hour).
PENDING_REQUEST_TTL: Final = timedelta(minutes=30)


class MetadataUnavailable(Exception):
    """The gateway's metadata could not be fetched or is not trustworthy."""


@dataclass(frozen=True)
class DemoSpSettings:
    """Who the demo service is and whom it trusts."""

    entity_id: str
    acs_url: str
    #: Decrypts the assertions (the gateway encrypts to its certificate with RSA-OAEP).
    decryption_key: KeyPair
    #: Signs the AuthnRequests (HTTP-Redirect query signature; ECDSA-SHA256 for an EC key). A key of its
    #: own (one key per purpose, BSI TR-02102), unless the configuration predates [demo] signing_key:
    #: then it is ``decryption_key`` itself.
    signing_key: KeyPair
    idp_metadata_url: str
    idp_entity_id: str
    metadata_signers: tuple[x509.Certificate, ...]


class GatewayMetadata:
    """The gateway's metadata, fetched over HTTP on first use and again when it gets old."""

    def __init__(self, settings: DemoSpSettings, http: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.http = http
        self._entity: EntityDescriptor | None = None
        self._fetched_at = datetime.min.replace(tzinfo=UTC)
        self._lock = asyncio.Lock()

    def _fresh(self, now: datetime) -> bool:
        if self._entity is None:
            return False
        max_age = min(self._entity.cache_duration or MAX_METADATA_AGE, MAX_METADATA_AGE)
        valid_until = self._entity.valid_until
        return now - self._fetched_at < max_age and (valid_until is None or now < valid_until)

    async def get(self) -> EntityDescriptor:
        async with self._lock:
            now = datetime.now(UTC)
            if not self._fresh(now):
                self._entity = await self._fetch()
                self._fetched_at = now
            assert self._entity is not None
            return self._entity

    async def _fetch(self) -> EntityDescriptor:
        url = self.settings.idp_metadata_url
        try:
            async with self.http.get(url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    raise MetadataUnavailable(f"metadata URL answered HTTP {resp.status}")
                body = await resp.content.read(METADATA_MAX_BYTES + 1)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise MetadataUnavailable(f"metadata cannot be fetched: {type(exc).__name__}") from None
        if len(body) > METADATA_MAX_BYTES:
            raise MetadataUnavailable("metadata is too large")
        try:
            entity = parse_metadata(body, trusted=self.settings.metadata_signers, require_signature=True)
        except MetadataError as exc:
            raise MetadataUnavailable(f"metadata refused: {exc.code}") from None
        if entity.entity_id != self.settings.idp_entity_id or entity.idp is None:
            raise MetadataUnavailable("metadata does not describe the expected IdP")
        return entity


class DemoServiceProvider:
    """Sends AuthnRequests (HTTP-Redirect, signed) and validates the Responses at the ACS."""

    def __init__(
        self,
        settings: DemoSpSettings,
        metadata: GatewayMetadata,
        *,
        request_store: RequestStore | None = None,
        replay_cache: ReplayCache | None = None,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        # One-time state survives metadata refreshes: it belongs to the service, not to the IdP's keys.
        # Several processes of the service share it through a file (SqliteRequestStore / SqliteReplayCache).
        self.request_store: RequestStore = request_store if request_store is not None else InMemoryRequestStore()
        self.replay_cache: ReplayCache = replay_cache if replay_cache is not None else InMemoryReplayCache()

    async def sign_in_url(self, relay_state: str | None = None) -> str:
        """The gateway URL to send the browser to, with a fresh signed AuthnRequest."""
        idp = await self.metadata.get()
        assert idp.idp is not None
        sso = idp.idp.sso_location(BINDING_HTTP_REDIRECT)
        if sso is None:
            raise MetadataUnavailable("the gateway offers no HTTP-Redirect SSO endpoint")
        request = AuthnRequest(
            issuer=self.settings.entity_id,
            destination=sso,
            acs_url=self.settings.acs_url,
            name_id_policy=NameIDPolicy(format=NAMEID_PERSISTENT),
        )
        self.request_store.add(request.id, expires_at=request.issue_instant + PENDING_REQUEST_TTL)
        return redirect_url(sso, build_authn_request(request), relay_state=relay_state, key=self.settings.signing_key)

    async def validate(self, saml_response: bytes) -> ValidatedResponse:
        """Validate a Response (raises a :class:`saml.SamlError` subclass on any defect)."""
        idp = await self.metadata.get()
        validator = ResponseValidator.from_metadata(
            idp,
            sp_entity_id=self.settings.entity_id,
            acs_url=self.settings.acs_url,
            decryption_keys=(self.settings.decryption_key,),
            require_signed_assertion=True,
            request_store=self.request_store,
            replay_cache=self.replay_cache,
        )
        return validator.validate(saml_response)


def demo_metadata_signers(certs: Sequence[x509.Certificate | None]) -> tuple[x509.Certificate, ...]:
    return tuple(c for c in certs if c is not None)


__all__ = ["DemoServiceProvider", "DemoSpSettings", "GatewayMetadata", "MetadataUnavailable"]
