"""The :class:`~eid_gateway.core.port.EidServer` port over the eID-Server's SAML interface.

How a SAML-interface session fits the gateway's one flow (TC Token, refresh, citizen pages) without a
second code path: the signed AuthnRequest URL at the eID-Server *is* a tcTokenURL. The gateway fetches
it itself (server to server, over mutual TLS) when AusweisApp asks the gateway for the TC Token, and
passes the eID-Server's ServerAddress, SessionIdentifier and PSK on in its own TC Token, whose
RefreshAddress is the gateway's. After the card step the gateway calls the eID-Server's RefreshAddress
itself; the eID-Server answers with a redirect to our ACS URL carrying the SAML Response (HTTP-Redirect
binding), which is never followed but verified (query signature), decrypted, checked (issuer,
destination, InResponseTo, audience, time, one-time use) and mapped to the same Identity as TR-03130.

The session reference (SessionIdentifier, RefreshAddress, AuthnRequest ID) is kept in the gateway's
store as the session ID, so any node can finish a flow another node began. The refresh is consumed on
the eID-Server's side: it is never repeated.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import aiohttp
from cryptography import x509
from yarl import URL

from eid_gateway.backends.saml_interface import (
    SamlInterfaceError,
    SessionRef,
    build_request_extension,
    result_from_attributes,
    result_minor_of,
    wrap_encrypted,
)
from eid_gateway.backends.tr03130 import http_errors
from eid_gateway.core.port import (
    EidProtocolError,
    EidRequest,
    EidResultError,
    EidServerUnavailable,
    EidSession,
    ServerInfo,
)
from eid_gateway.eid.errors import TcTokenError
from eid_gateway.eid.mapping import identity_from_result, use_id_request
from eid_gateway.eid.results import REFRESH_OK, failure_kind
from eid_gateway.eid.tctoken import MAX_TC_TOKEN_BYTES, ErrorTcToken, parse_tc_token, refresh_url
from eid_gateway.identity import Identity
from saml.algorithms import DEFAULT_POLICY, LEGACY_POLICY, AlgorithmPolicy
from saml.bindings import parse_redirect, redirect_url
from saml.errors import SamlError
from saml.keys import KeyPair
from saml.messages import BINDING_HTTP_REDIRECT, AuthnRequest, build_authn_request
from saml.stores import InMemoryReplayCache, InMemoryRequestStore
from saml.validate import ResponseValidator, StatusError
from saml.xml import to_bytes
from saml.xmlenc import encrypt_element

if TYPE_CHECKING:  # annotations only: the config looks backend kinds up in backends/registry.py
    from eid_gateway.config import GatewayConfig

log = logging.getLogger(__name__)

ACS_PATH: Final = "/eid/saml/acs"
REQUEST_LIFETIME: Final = timedelta(minutes=30)
MAX_HEADER_BYTES: Final = 128 * 1024
_REDIRECTS: Final = frozenset({302, 303, 307})


@dataclass(eq=False, kw_only=True)
class SamlEidServer:
    """One eID-Server reached over its SAML interface; see the module text for the shape of a session."""

    sso_url: str
    server_entity_id: str
    server_cert: x509.Certificate
    encryption_cert: x509.Certificate
    sp_entity_id: str
    acs_url: str
    sp_key: KeyPair
    timeout: float = 15.0
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    policy: AlgorithmPolicy = DEFAULT_POLICY
    #: The TC Token's addresses must be https (TR-03124); off only in development.
    require_https: bool = True
    _replay: InMemoryReplayCache = field(init=False, default_factory=InMemoryReplayCache)
    _http: aiohttp.ClientSession | None = field(init=False, default=None)

    @property
    def _ssl(self) -> ssl.SSLContext | bool:
        return self.ssl_context if self.ssl_context is not None else True

    @classmethod
    def from_config(cls, config: GatewayConfig, ssl_context: ssl.SSLContext | None) -> SamlEidServer:
        es = config.eid_server
        assert es.saml is not None and es.url is not None and es.server_cert is not None
        return cls(
            sso_url=es.url,
            server_entity_id=es.saml.server_entity_id,
            server_cert=es.server_cert,
            encryption_cert=es.saml.encryption_cert,
            sp_entity_id=es.saml.sp_entity_id,
            acs_url=config.url(ACS_PATH),
            sp_key=es.saml.sp_key,
            timeout=es.timeout_seconds,
            ssl_context=ssl_context,
            server_hostname=es.tls_server_name,
            policy=LEGACY_POLICY if es.saml.legacy_algorithms else DEFAULT_POLICY,
            require_https=config.production,
        )

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # The SAML Response arrives in a Location header: far beyond aiohttp's default 8 KB limit.
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, connect=min(5.0, self.timeout)),
                max_line_size=MAX_HEADER_BYTES,
                max_field_size=MAX_HEADER_BYTES,
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _get(self, url: str, what: str) -> tuple[int, str, str | None, bytes]:
        """GET without following redirects: (status, content type, Location, body up to the TC Token cap)."""
        # encoded=True: send the query octets exactly as signed (yarl would re-normalise escapes)
        async with (
            http_errors(what, url, self._ssl, self.server_hostname),
            self._session().get(
                URL(url, encoded=True), allow_redirects=False, ssl=self._ssl, server_hostname=self.server_hostname
            ) as resp,
        ):
            body = await resp.content.read(MAX_TC_TOKEN_BYTES + 1)
            if len(body) > MAX_TC_TOKEN_BYTES:
                raise EidProtocolError(f"eID-Server answer to {what} is too large")
            return resp.status, resp.content_type, resp.headers.get("Location"), body

    # --- the port -----------------------------------------------------------------------------------------

    async def start_session(self, request: EidRequest) -> EidSession:
        extension = build_request_extension(use_id_request(request))
        try:
            encrypted = encrypt_element(extension, self.encryption_cert, policy=self.policy)
        except SamlError as exc:
            raise EidProtocolError(f"cannot encrypt the request extension: {exc}") from None
        authn = AuthnRequest(
            issuer=self.sp_entity_id,
            destination=self.sso_url,
            acs_url=self.acs_url,
            protocol_binding=BINDING_HTTP_REDIRECT,
            extensions=(wrap_encrypted(encrypted),),
        )
        url = redirect_url(self.sso_url, build_authn_request(authn), key=self.sp_key)
        status, content_type, _, body = await self._get(url, "the AuthnRequest")
        if status == 400:
            log.warning("eID-Server refused the AuthnRequest: %s", body[:200].decode("utf-8", "replace"))
        if status in (502, 503, 504):
            raise EidServerUnavailable(f"eID-Server answered the AuthnRequest with HTTP {status}")
        if status != 200 or content_type != "text/xml":
            raise EidProtocolError(
                f"eID-Server answered the AuthnRequest with HTTP {status}, {content_type or 'no type'}"
            )
        try:
            token = parse_tc_token(body, require_https=self.require_https)
        except TcTokenError as exc:
            raise EidProtocolError(f"eID-Server sent an invalid TC Token: {exc.code}") from None
        if isinstance(token, ErrorTcToken):
            log.info("eID-Server refused the AuthnRequest (error TC Token)")
            raise EidResultError(failure_kind(None), None, "the eID-Server refused the AuthnRequest")
        ref = SessionRef(token.session_identifier, token.refresh_address, authn.id)
        return EidSession(ref.encode(), token.server_address, token.session_identifier, token.psk)

    def _validator(self, request_id: str, now: datetime) -> ResponseValidator:
        requests = InMemoryRequestStore()
        requests.add(request_id, expires_at=now + REQUEST_LIFETIME)  # the one request this answer may name
        return ResponseValidator(
            sp_entity_id=self.sp_entity_id,
            acs_url=self.acs_url,
            idp_entity_id=self.server_entity_id,
            idp_certs=[self.server_cert],
            decryption_keys=[self.sp_key],
            require_signed_assertion=True,
            require_encrypted_assertion=True,
            policy=self.policy,
            request_store=requests,
            replay_cache=self._replay,
        )

    async def fetch_result(self, session: EidSession, request_counter: int) -> Identity:
        try:
            ref = SessionRef.decode(session.session_id)
        except SamlInterfaceError as exc:
            raise EidProtocolError(str(exc)) from None
        status, _, location, _ = await self._get(refresh_url(ref.refresh_address, REFRESH_OK), "the refresh")
        if status in (502, 503, 504):
            raise EidServerUnavailable(f"eID-Server answered the refresh with HTTP {status}")
        if status not in _REDIRECTS or location is None:
            raise EidProtocolError(f"eID-Server answered the refresh with HTTP {status}, not a redirect")
        target, _, query = location.partition("?")
        if target != self.acs_url or not query:
            raise EidProtocolError("eID-Server redirected the refresh somewhere other than our ACS URL")
        now = datetime.now(UTC)
        try:
            message = parse_redirect(query, trusted=[self.server_cert], require_signature=True, policy=self.policy)
            if message.param != "SAMLResponse":
                raise EidProtocolError("eID-Server redirected with a SAMLRequest, not a SAMLResponse")
            validated = self._validator(ref.request_id, now).validate(to_bytes(message.element), now=now)
        except StatusError as exc:
            minor = result_minor_of(exc.status)
            log.info("eID-Server SAML error: %s", minor or exc.status.code)
            raise EidResultError(failure_kind(minor), minor, None) from None
        except SamlError as exc:
            log.warning("eID-Server SAML answer refused: %s", exc.code)
            raise EidProtocolError(f"eID-Server SAML answer refused: {exc.code}") from None
        try:
            result = result_from_attributes(validated.attributes)
        except SamlInterfaceError as exc:
            raise EidProtocolError(f"eID-Server SAML attributes unusable: {exc}") from None
        return identity_from_result(result, authenticated_at=validated.authn_instant)

    async def server_info(self) -> ServerInfo:
        """The SAML interface has no getServerInfo: reachability of the SSO endpoint (over mutual TLS)
        stands in. Any HTTP answer below 500 counts as up."""
        status, _, _, _ = await self._get(self.sso_url, "the health probe")
        if status >= 500:
            raise EidServerUnavailable(f"eID-Server SAML endpoint answered HTTP {status}")
        return ServerInfo(f"SAML interface at {urlsplit(self.sso_url).netloc}", {})
