"""The simulator's SAML interface (TEST FACILITY): the eID-Server SAML profile of
:mod:`eid_gateway.backends.saml_interface`, over the same simulator core as its TR-03130 interface.

- ``GET {prefix}/saml?SAMLRequest=...&SigAlg=...&Signature=...``: the tcTokenURL. Verifies the
  AuthnRequest (query signature with the one configured SP certificate, destination, issuer, ACS URL,
  age, replay), decrypts the request extension, opens a session and answers with the TC Token.
- ``GET {prefix}/saml/refresh?s=...``: the TC Token's RefreshAddress. Answers once per session with a
  303 to the ACS URL carrying the SAML Response (HTTP-Redirect binding, query signed): on success a
  signed assertion encrypted to the SP, otherwise an error status naming the ResultMinor.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import xmlsec
from aiohttp import web
from cryptography import x509
from lxml import etree

from eid_gateway.backends.saml_interface import (
    AUTHN_CONTEXT,
    SamlInterfaceError,
    error_status,
    parse_request_extension,
    result_attributes,
)
from eid_gateway.eid.messages import EID_NS
from eid_gateway.eid.results import INVALID_SESSION
from eid_gateway.eid.tctoken import CONTENT_TYPE as TC_TOKEN_CONTENT_TYPE
from eid_gateway.eid.tctoken import TcToken, build_tc_token
from eid_gateway.simulator.server import Simulator
from eid_gateway.web.query import raw_query_string
from saml import algorithms as alg
from saml.bindings import parse_redirect, redirect_url
from saml.errors import SamlError
from saml.keys import KeyPair
from saml.messages import (
    NAMEID_TRANSIENT,
    Assertion,
    Attribute,
    AuthnStatement,
    Conditions,
    NameID,
    Response,
    Status,
    Subject,
    SubjectConfirmation,
    build_assertion,
    build_response,
    sign_message,
)
from saml.stores import InMemoryReplayCache
from saml.validate import verify_authn_request
from saml.xml import NS
from saml.xmlenc import encrypt_assertion

ASSERTION_LIFETIME: Final = timedelta(minutes=5)
_ENCRYPTED_EXTENSION: Final = f"{{{EID_NS}}}EncryptedAuthnRequestExtension"
_ENCRYPTED_DATA: Final = f"{{{NS['xenc']}}}EncryptedData"
_ENCRYPTION_METHOD: Final = f"{{{NS['xenc']}}}EncryptionMethod"
_GCM: Final = frozenset({alg.AES128_GCM, alg.AES192_GCM, alg.AES256_GCM})


@dataclass(frozen=True)
class SamlInterfaceConfig:
    """The simulator as SAML IdP of one SP (the gateway)."""

    entity_id: str
    signing_key: KeyPair
    encryption_key: KeyPair  # RSA: the request extension is encrypted to its certificate
    sp_entity_id: str
    sp_cert: x509.Certificate  # verifies the AuthnRequests; assertions are encrypted to it (RSA)
    acs_url: str
    #: Where the gateway reaches this interface (e.g. the mutual-TLS listener); default: the simulator's.
    origin: str | None = None


@dataclass
class _Pending:
    session_id: str
    request_id: str
    expires: datetime


def decrypt_extension(wrapper: etree._Element, key: KeyPair) -> etree._Element:
    """The ``eid:AuthnRequestExtension`` inside ``eid:EncryptedAuthnRequestExtension`` (AES-GCM only)."""
    datas = [c for c in wrapper if c.tag == _ENCRYPTED_DATA]
    if len(datas) != 1:
        raise SamlInterfaceError("EncryptedAuthnRequestExtension needs exactly one EncryptedData")
    methods = [c for c in datas[0] if c.tag == _ENCRYPTION_METHOD]
    if len(methods) != 1 or methods[0].get("Algorithm") not in _GCM:
        raise SamlInterfaceError("the request extension must be encrypted with AES-GCM")
    manager = xmlsec.KeysManager()
    manager.add_key(key.xmlsec_key)
    try:
        result = xmlsec.EncryptionContext(manager).decrypt(datas[0])
    except xmlsec.Error:
        raise SamlInterfaceError("the request extension does not decrypt") from None
    if not isinstance(result, etree._Element):
        raise SamlInterfaceError("the request extension is not an element")
    return result


class SimulatorSamlInterface:
    """Routes of the SAML interface, sharing the simulator core (sessions, card step)."""

    def __init__(self, simulator: Simulator, config: SamlInterfaceConfig):
        self.simulator = simulator
        self.config = config
        self.prefix = simulator.prefix
        origin = (config.origin or simulator.config.public_origin).rstrip("/")
        self.sso_url = f"{origin}{self.prefix}/saml"
        self.refresh_base = f"{origin}{self.prefix}/saml/refresh"
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._replay = InMemoryReplayCache()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(self.prefix + "/saml", self.sso, allow_head=False),
            web.get(self.prefix + "/saml/refresh", self.refresh, allow_head=False),
        ]

    async def sso(self, request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        try:
            message = parse_redirect(raw_query_string(request), trusted=[self.config.sp_cert], require_signature=True)
            if message.param != "SAMLRequest":
                raise SamlInterfaceError("expected a SAMLRequest")
            authn = verify_authn_request(
                message.element,
                trusted=[self.config.sp_cert],
                destination=self.sso_url,
                sp_entity_id=self.config.sp_entity_id,
                acs_urls=[self.config.acs_url],
                binding_signed=True,
                now=now,
                replay_cache=self._replay,
            )
            wrappers = [e for e in authn.extensions if e.tag == _ENCRYPTED_EXTENSION]
            if len(wrappers) != 1:
                raise SamlInterfaceError("exactly one EncryptedAuthnRequestExtension is required")
            use_id = parse_request_extension(decrypt_extension(wrappers[0], self.config.encryption_key))
        except (SamlError, SamlInterfaceError) as exc:
            reason = getattr(exc, "code", None) or str(exc)
            return web.Response(status=400, text=f"AuthnRequest refused: {reason}")
        opened = self.simulator.core.open_session(use_id, now)
        if not opened.result.ok or opened.session_id is None or opened.psk is None:
            return web.Response(status=400, text=f"AuthnRequest refused: {opened.result.minor}")
        ref = secrets.token_urlsafe(32)
        with self._lock:
            for stale in [k for k, p in self._pending.items() if p.expires <= now]:
                del self._pending[stale]
            self._pending[ref] = _Pending(opened.session_id, authn.id, now + self.simulator.config.session_ttl)
        token = build_tc_token(
            TcToken(
                server_address=self.simulator.core.ecard_server_address,
                session_identifier=opened.psk.id,
                refresh_address=f"{self.refresh_base}?s={ref}",
                psk=opened.psk.key,
            )
        )
        return web.Response(body=token, headers={"Content-Type": TC_TOKEN_CONTENT_TYPE, "Cache-Control": "no-store"})

    async def refresh(self, request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        with self._lock:
            pending = self._pending.pop(request.query.get("s", ""), None)
        if pending is None or pending.expires <= now:
            return web.Response(status=404, text="unknown or used session")
        outcome = self.simulator.core.take_result(pending.session_id, now)
        if outcome.result.ok:
            response = self._success(result_attributes(outcome), pending.request_id, now)
        else:
            status = error_status(outcome.result.minor or INVALID_SESSION)
            response = build_response(
                Response(
                    issuer=self.config.entity_id,
                    status=status,
                    destination=self.config.acs_url,
                    in_response_to=pending.request_id,
                    issue_instant=now,
                )
            )
        location = redirect_url(self.config.acs_url, response, param="SAMLResponse", key=self.config.signing_key)
        # A plain header: aiohttp's redirect exceptions would re-normalise the signed query's escapes.
        return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})

    def _success(self, attributes: tuple[Attribute, ...], request_id: str, now: datetime) -> etree._Element:
        assertion = Assertion(
            issuer=self.config.entity_id,
            subject=Subject(
                NameID(secrets.token_hex(16), NAMEID_TRANSIENT),
                (
                    SubjectConfirmation(
                        recipient=self.config.acs_url,
                        not_on_or_after=now + ASSERTION_LIFETIME,
                        in_response_to=request_id,
                    ),
                ),
            ),
            issue_instant=now,
            conditions=Conditions(
                not_before=now - timedelta(seconds=5),
                not_on_or_after=now + ASSERTION_LIFETIME,
                audience_restrictions=((self.config.sp_entity_id,),),
                one_time_use=True,
            ),
            authn_statements=(AuthnStatement(authn_instant=now, decl_ref=AUTHN_CONTEXT),),
            attributes=attributes,
        )
        element = build_assertion(assertion)
        sign_message(element, self.config.signing_key)  # in place
        encrypted = encrypt_assertion(element, self.config.sp_cert)
        return build_response(
            Response(
                issuer=self.config.entity_id,
                status=Status(),
                destination=self.config.acs_url,
                in_response_to=request_id,
                issue_instant=now,
            ),
            [encrypted],
        )
