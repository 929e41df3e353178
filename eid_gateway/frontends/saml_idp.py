"""The SAML 2.0 IdP frontend: city services sign in citizens by sending the gateway an AuthnRequest.

Request handling is split into a pure part (:func:`check_authn_request`: trust, ACS, freshness and the
options of the request, from bytes to an :class:`AcceptedRequest` or a typed refusal) and thin aiohttp
handlers around it. The Store is touched once, to consume the request ID.

Where an error goes depends on whether a trustworthy answer address is known yet:

* before it (unknown Issuer, missing or bad signature, unregistered ACS URL, undecodable message) the
  citizen sees a page (:class:`RequestRejected`) — a Response sent to an unverified URL would hand an
  attacker a signed message, and a redirect there would make the gateway an open redirector;
* after it (stale or replayed request, unsupported options) the service gets a signed SAML error
  Response at its registered ACS URL (:class:`RequestRefused`).

Answers are always HTTP-POST to the ACS (a page that submits itself with a static script, or by its
button without JavaScript); the Assertion is signed, encrypted for the service when its registration says
so, and the Response is signed as well.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from aiohttp import web
from lxml import etree

from eid_gateway import catalog
from eid_gateway.config import GatewayConfig
from eid_gateway.core.port import EidRequest, FailureKind
from eid_gateway.frontends.base import FlowContext, FlowStart, FlowStarter
from eid_gateway.frontends.saml_attributes import released_attributes
from eid_gateway.identity import SAML_NAMES, Attribute, Identity, LevelOfAssurance
from eid_gateway.services import SamlServiceSettings, Service, ServiceRegistry
from eid_gateway.store.base import Store
from eid_gateway.web.forms import FormError, read_form
from eid_gateway.web.i18n import negotiate_language
from eid_gateway.web.query import raw_query_string
from eid_gateway.web.render import render_page
from saml import algorithms as alg
from saml.bindings import FORM_ID, RedirectMessage, decode_redirect, parse_post, post_fields, verify_redirect
from saml.errors import SamlError, SignatureError, ValidationError
from saml.keys import KeyPair
from saml.messages import (
    BINDING_HTTP_POST,
    BINDING_HTTP_REDIRECT,
    NAMEID_PERSISTENT,
    NAMEID_TRANSIENT,
    NAMEID_UNSPECIFIED,
    STATUS_AUTHN_FAILED,
    STATUS_INVALID_NAMEID_POLICY,
    STATUS_NO_AUTHN_CONTEXT,
    STATUS_NO_PASSIVE,
    STATUS_REQUEST_DENIED,
    STATUS_REQUESTER,
    STATUS_RESPONDER,
    STATUS_UNSUPPORTED_BINDING,
    Assertion,
    AuthnRequest,
    AuthnStatement,
    Conditions,
    NameID,
    Response,
    Status,
    Subject,
    SubjectConfirmation,
    build_assertion,
    build_response,
    new_id,
    parse_authn_request,
    sign_message,
    utcnow,
)
from saml.messages import Attribute as SamlAttributeElement
from saml.metadata import (
    USE_SIGNING,
    Endpoint,
    EntityDescriptor,
    IDPSSODescriptor,
    KeyDescriptor,
    build_metadata,
)
from saml.validate import DEFAULT_CLOCK_SKEW, IssuerMismatch, verify_authn_request
from saml.xml import qname, to_bytes
from saml.xmlenc import encrypt_assertion

#: ``[services.saml] key_transport`` -> how the AES key is wrapped for the service's encryption certificate.
#: (key transport URI, OAEP digest URI).
KEY_TRANSPORTS: Final[dict[str, tuple[str, str]]] = {
    "rsa-oaep": (alg.RSA_OAEP, alg.SHA256),
    "rsa-oaep-mgf1p": (alg.RSA_OAEP_MGF1P, alg.SHA1),
}

#: Key transport URI in an SP's ``md:EncryptionMethod`` -> ``key_transport`` name; strongest first.
_KEY_TRANSPORT_PREFERENCE: Final = ((alg.RSA_OAEP, "rsa-oaep"), (alg.RSA_OAEP_MGF1P, "rsa-oaep-mgf1p"))
_RSA_KEY_TRANSPORTS: Final = frozenset({alg.RSA_OAEP, alg.RSA_OAEP_MGF1P, alg.RSA_1_5})


def choose_key_transport(encryption_methods: Sequence[str]) -> str | None:
    """The strongest ``key_transport`` that both the gateway and an SP (by its metadata) support.

    ``None`` when the SP's ``md:EncryptionMethod`` list names no RSA key transport at all (then the
    gateway's default applies); :class:`ValueError` when it names some but none of ours, since the SP
    could not decrypt what we send.
    """
    if not any(uri in _RSA_KEY_TRANSPORTS for uri in encryption_methods):
        return None
    for uri, name in _KEY_TRANSPORT_PREFERENCE:
        if uri in encryption_methods:
            return name
    raise ValueError(
        "its md:EncryptionMethod list names no key transport the gateway offers "
        f"({', '.join(uri for uri, _ in _KEY_TRANSPORT_PREFERENCE)})"
    )


log = logging.getLogger("eid_gateway.frontends.saml")

FRONTEND_NAME: Final = "saml"
SSO_PATH: Final = "/saml/sso"
METADATA_PATH: Final = "/saml/metadata"
METADATA_CONTENT_TYPE: Final = "application/samlmetadata+xml"
#: The toolkit's auto-submit script (saml.bindings.AUTOSUBMIT_SCRIPT) as a static file of the gateway:
#: allowed by ``script-src 'self'``, so the POST page submits itself without inline script; without
#: JavaScript the citizen presses the page's button.
AUTOSUBMIT_SCRIPT_PATH: Final = "/static/saml-post.js"

#: How old an AuthnRequest may be (plus clock skew) and how long its ID stays consumed.
REQUEST_MAX_AGE: Final = timedelta(minutes=5)
#: Lifetime of the bearer confirmation and of the assertion's Conditions.
ASSERTION_LIFETIME: Final = timedelta(minutes=5)
#: Published metadata: valid for a week, re-fetched by services at least hourly, rebuilt by us hourly.
METADATA_VALIDITY: Final = timedelta(days=7)
METADATA_CACHE_DURATION: Final = timedelta(hours=1)

#: The extension element a service may put into ``samlp:Extensions`` to ask for fewer attributes than
#: its registration allows: ``<md:RequestedAttribute Name="urn:eid-gateway:attribute:given_names"/>``
#: (SAML metadata namespace, one per attribute, directly inside Extensions).
REQUESTED_ATTRIBUTE: Final = qname("md", "RequestedAttribute")

_LOA_ORDER: Final = (LevelOfAssurance.LOW, LevelOfAssurance.SUBSTANTIAL, LevelOfAssurance.HIGH)
_ATTRIBUTE_BY_NAME: Final = {name: attribute for attribute, name in SAML_NAMES.items()}


# ------------------------------------------------------------------------------------------- refusals ---


class RequestRejected(Exception):
    """The request cannot be answered to the service: the citizen gets a page. ``reason`` is a key of
    :data:`REJECTION_TEXTS`; ``detail`` goes to the log only (it never contains personal data)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class RequestRefused(Exception):
    """The request is refused with a SAML error Response to the service's registered ACS URL."""

    def __init__(self, status: Status, service: Service, acs_url: str, request_id: str | None, relay_state: str | None):
        super().__init__(f"{status.code} / {status.sub_code or '-'}: {status.message or ''}")
        self.status = status
        self.service = service
        self.acs_url = acs_url
        self.request_id = request_id
        self.relay_state = relay_state


#: (title, text) per language for each :class:`RequestRejected` reason (catalog file citizen.toml).
_REJECTIONS: Final = catalog.table("citizen", "rejections")
REJECTION_TEXTS: Final = {
    reason: catalog.title_and_text(_REJECTIONS, reason)
    for reason in ("malformed", "unknown_service", "bad_signature", "unregistered_acs")
}


# ---------------------------------------------------------------------------------- pure request core ---


@dataclass(frozen=True)
class IncomingRequest:
    """An AuthnRequest as it arrived, before any trust decision."""

    binding: str
    #: Redirect: the raw query string exactly as received; POST: the SAMLRequest form value.
    payload: str
    relay_state: str | None


@dataclass(frozen=True)
class AcceptedRequest:
    """A verified AuthnRequest the gateway will answer, with everything the answer needs."""

    service: Service
    request: AuthnRequest
    acs_url: str
    relay_state: str | None
    binding: str
    released: frozenset[Attribute]
    #: NAMEID_PERSISTENT (the per-service pseudonym, the default) or NAMEID_TRANSIENT (asked for).
    name_id_format: str = NAMEID_PERSISTENT

    def frontend_state(self) -> dict[str, str]:
        return {
            "name_id_format": self.name_id_format,
            "request_id": self.request.id,
            "acs_url": self.acs_url,
            "relay_state": self.relay_state if self.relay_state is not None else "",
            "has_relay_state": "1" if self.relay_state is not None else "",
            "binding": self.binding,
            "released": ",".join(sorted(a.value for a in self.released)),
        }

    def eid_request(self) -> EidRequest:
        """What the card step asks for: the registration, narrowed to what the service asked for."""
        service = self.service
        required = service.required_attributes & self.released
        return EidRequest(
            required=required,
            optional=self.released - required,
            minimum_age=service.minimum_age if Attribute.AGE_VERIFICATION in self.released else None,
            community_id=service.community_id if Attribute.PLACE_VERIFICATION in self.released else None,
            level_of_assurance=service.level_of_assurance,
        )


def _unverified_issuer(element: etree._Element) -> str:
    """The Issuer text of a not yet verified request: used only to choose whose keys to verify with."""
    if element.tag != qname("samlp", "AuthnRequest"):
        raise RequestRejected("malformed", "not a samlp:AuthnRequest")
    issuers = [c for c in element if c.tag == qname("saml", "Issuer")]
    if len(issuers) != 1 or len(issuers[0]) or not (issuers[0].text or "").strip():
        raise RequestRejected("malformed", "AuthnRequest needs exactly one plain Issuer")
    return (issuers[0].text or "").strip()


def _service_settings(registry: ServiceRegistry, issuer: str) -> tuple[Service, SamlServiceSettings]:
    service = registry.by_entity_id(issuer)
    if service is None or service.saml is None:
        raise RequestRejected("unknown_service", "Issuer is not a registered SAML service")
    return service, service.saml


def resolve_acs(settings: SamlServiceSettings, request: AuthnRequest) -> str:
    """The registered ACS URL the answer goes to: exact match, by index, or the first registered."""
    if request.acs_url is not None:
        if request.acs_url not in settings.acs_urls:
            raise RequestRejected("unregistered_acs", "AssertionConsumerServiceURL is not registered")
        return request.acs_url
    if request.acs_index is not None:
        if request.acs_index >= len(settings.acs_urls):
            raise RequestRejected("unregistered_acs", "AssertionConsumerServiceIndex is not registered")
        return settings.acs_urls[request.acs_index]
    if not settings.acs_urls:
        raise RequestRejected("unregistered_acs", "the service has no registered ACS URL")
    return settings.acs_urls[0]


def requested_attributes(request: AuthnRequest) -> frozenset[Attribute] | None:
    """Attributes named by ``md:RequestedAttribute`` extensions, or None when the request names none.

    Names this gateway does not know are ignored (they cannot be released anyway).
    """
    names = [e.get("Name", "") for e in request.extensions if e.tag == REQUESTED_ATTRIBUTE]
    if not names:
        return None
    return frozenset(_ATTRIBUTE_BY_NAME[n] for n in names if n in _ATTRIBUTE_BY_NAME)


def _loa_satisfies(offered: LevelOfAssurance, request: AuthnRequest) -> bool:
    rac = request.requested_authn_context
    if rac is None:
        return True
    known = [loa for loa in _LOA_ORDER if loa.value in rac.class_refs]
    if not known:
        return False
    rank = _LOA_ORDER.index
    if rac.comparison == "exact":
        return offered in known
    if rac.comparison == "minimum":
        return rank(offered) >= min(rank(k) for k in known)
    if rac.comparison == "better":
        return rank(offered) > min(rank(k) for k in known)
    return rank(offered) <= max(rank(k) for k in known)  # maximum


def check_authn_request(
    incoming: IncomingRequest,
    registry: ServiceRegistry,
    *,
    destination: str,
    now: datetime | None = None,
) -> AcceptedRequest:
    """Decode, authenticate and check an AuthnRequest (everything except the one-time ID).

    Raises :class:`RequestRejected` while the answer address is not yet trustworthy and
    :class:`RequestRefused` once it is.
    """
    now = now or datetime.now(UTC)
    # 1. decode (without trusting anything yet) and find the claimed service
    decoded: RedirectMessage | None = None
    try:
        if incoming.binding == BINDING_HTTP_REDIRECT:
            decoded = decode_redirect(incoming.payload)
            element = decoded.element
        else:
            element = parse_post(incoming.payload, incoming.relay_state)
    except SamlError as exc:
        raise RequestRejected("malformed", f"undecodable request ({exc.code})") from None
    service, settings = _service_settings(registry, _unverified_issuer(element))

    # 2. authenticate with this service's registered keys only
    binding_signed = False
    relay_state = incoming.relay_state
    if decoded is not None:
        try:
            message = verify_redirect(
                decoded, trusted=settings.signing_certs, require_signature=settings.require_signed_requests
            )
        except SignatureError as exc:
            raise RequestRejected("bad_signature", f"query signature refused ({exc.code})") from None
        except SamlError as exc:
            code = "bad_signature" if settings.require_signed_requests else "malformed"
            raise RequestRejected(code, f"Redirect binding refused ({exc.code})") from None
        element, binding_signed, relay_state = message.element, message.signed, message.relay_state
    try:
        request = verify_authn_request(
            element,
            trusted=settings.signing_certs,
            destination=destination,
            sp_entity_id=settings.entity_id,
            acs_urls=None,  # checked below, so that the error can be told apart
            require_signature=settings.require_signed_requests,
            binding_signed=binding_signed,
            now=now,
            max_age=REQUEST_MAX_AGE,
        )
        late_error: ValidationError | None = None
    except SignatureError as exc:
        raise RequestRejected("bad_signature", f"signature refused ({exc.code})") from None
    except IssuerMismatch:
        raise RequestRejected("unknown_service", "the verified Issuer is not the service looked up") from None
    except ValidationError as exc:
        # verify_authn_request verifies every signature before any of its ValidationErrors
        # (Destination, IssueInstant), so the element is authenticated here and may be read.
        late_error = exc
        try:
            request = parse_authn_request(element)
        except SamlError as parse_exc:
            raise RequestRejected("malformed", f"unreadable request ({parse_exc.code})") from None
    except SamlError as exc:
        raise RequestRejected("malformed", f"request refused ({exc.code})") from None

    # 3. the answer address: from here on errors go to the service
    acs_url = resolve_acs(settings, request)

    def refuse(code: str, sub_code: str | None, message: str) -> RequestRefused:
        return RequestRefused(Status(code, sub_code, message), service, acs_url, request.id, relay_state)

    if late_error is not None:
        raise refuse(STATUS_REQUESTER, STATUS_REQUEST_DENIED, f"request refused: {late_error.code}")
    if request.protocol_binding not in (None, BINDING_HTTP_POST):
        raise refuse(STATUS_REQUESTER, STATUS_UNSUPPORTED_BINDING, "only HTTP-POST responses are supported")
    if request.is_passive:
        raise refuse(STATUS_RESPONDER, STATUS_NO_PASSIVE, "an eID sign-in always needs the citizen")
    policy = request.name_id_policy
    # Transient only when asked for (mod_auth_mellon asks for it by default); no policy, unspecified or
    # persistent: the per-service pseudonym, as every service got before.
    name_id_format = NAMEID_PERSISTENT
    if policy is not None:
        if policy.format == NAMEID_TRANSIENT:
            name_id_format = NAMEID_TRANSIENT
        elif policy.format not in (None, NAMEID_PERSISTENT, NAMEID_UNSPECIFIED):
            raise refuse(
                STATUS_REQUESTER, STATUS_INVALID_NAMEID_POLICY, "only persistent and transient NameIDs are issued"
            )
        if policy.sp_name_qualifier not in (None, settings.entity_id):
            raise refuse(STATUS_REQUESTER, STATUS_INVALID_NAMEID_POLICY, "SPNameQualifier must be the service")
    if not _loa_satisfies(service.level_of_assurance, request):
        raise refuse(STATUS_REQUESTER, STATUS_NO_AUTHN_CONTEXT, "the requested level of assurance is not offered")
    asked = requested_attributes(request)
    released = service.allowed_attributes if asked is None else service.allowed_attributes & asked
    return AcceptedRequest(
        service=service,
        request=request,
        acs_url=acs_url,
        relay_state=relay_state,
        binding=incoming.binding,
        released=frozenset(released),
        name_id_format=name_id_format,
    )


# ---------------------------------------------------------------------------------- pure answer core ---

#: FailureKind -> second-level status (top level is always Responder: the IdP could not authenticate).
FAILURE_STATUS: Final[dict[FailureKind, str | None]] = {
    FailureKind.CANCELLED: STATUS_REQUEST_DENIED,
    FailureKind.WRONG_PIN: STATUS_AUTHN_FAILED,
    FailureKind.CARD_BLOCKED: STATUS_AUTHN_FAILED,
    FailureKind.DOCUMENT_INVALID: STATUS_AUTHN_FAILED,
    FailureKind.TIMEOUT: STATUS_AUTHN_FAILED,
    FailureKind.COMMUNICATION: STATUS_AUTHN_FAILED,
    FailureKind.SERVER_ERROR: None,
    FailureKind.OTHER_BROWSER: STATUS_AUTHN_FAILED,
    FailureKind.WALLET_CANCELLED: STATUS_REQUEST_DENIED,
    FailureKind.CREDENTIAL_REJECTED: STATUS_AUTHN_FAILED,
    FailureKind.CREDENTIAL_EXPIRED: STATUS_AUTHN_FAILED,
    FailureKind.CREDENTIAL_REVOKED: STATUS_AUTHN_FAILED,
    FailureKind.CREDENTIAL_STATUS_UNKNOWN: STATUS_AUTHN_FAILED,
}


def failure_status(kind: FailureKind) -> Status:
    """The Status a service gets for a failed card step; the message is the stable failure name."""
    return Status(STATUS_RESPONDER, FAILURE_STATUS[kind], kind.value)


def build_error_response(
    *,
    idp_entity_id: str,
    key: KeyPair,
    acs_url: str,
    request_id: str | None,
    status: Status,
) -> etree._Element:
    """A signed Response without an assertion."""
    response = build_response(
        Response(
            issuer=idp_entity_id,
            status=status,
            destination=acs_url,
            in_response_to=request_id,
        )
    )
    sign_message(response, key)
    return response


def build_success_response(
    *,
    idp_entity_id: str,
    key: KeyPair,
    settings: SamlServiceSettings,
    acs_url: str,
    request_id: str,
    identity: Identity,
    pseudonym: str,
    released: frozenset[Attribute],
    now: datetime | None = None,
    name_id_format: str = NAMEID_PERSISTENT,
) -> etree._Element:
    """The signed Response carrying the signed (and, if registered, encrypted) Assertion.

    The NameID is the pseudonym (persistent) or, for ``NAMEID_TRANSIENT``, a fresh random value that
    means nothing beyond this one Response (SAML core 8.3.8); the pseudonym then reaches the service only
    as the ``pseudonym`` attribute, if that is released.
    """
    now = now or utcnow()
    if name_id_format == NAMEID_PERSISTENT:
        name_id_value = pseudonym
    elif name_id_format == NAMEID_TRANSIENT:
        name_id_value = new_id()  # 160 random bits, never stored
    else:
        raise ValueError(f"unsupported NameID format {name_id_format}")
    expires = now + ASSERTION_LIFETIME
    attributes = tuple(
        SamlAttributeElement(name=a.name, values=a.values, friendly_name=a.friendly_name)
        for a in released_attributes(identity, released, pseudonym)
    )
    assertion = Assertion(
        issuer=idp_entity_id,
        subject=Subject(
            name_id=NameID(
                name_id_value, name_id_format, name_qualifier=idp_entity_id, sp_name_qualifier=settings.entity_id
            ),
            confirmations=(SubjectConfirmation(recipient=acs_url, not_on_or_after=expires, in_response_to=request_id),),
        ),
        issue_instant=now,
        conditions=Conditions(
            not_before=now - DEFAULT_CLOCK_SKEW,
            not_on_or_after=expires,
            audience_restrictions=((settings.entity_id,),),
        ),
        authn_statements=(
            AuthnStatement(
                authn_instant=identity.authenticated_at or now,
                session_index=new_id(),
                class_ref=identity.level_of_assurance.value,
            ),
        ),
        attributes=attributes,
    )
    element = build_assertion(assertion)
    sign_message(element, key)
    if settings.encrypt_assertions:
        if settings.encryption_cert is None:
            raise ValueError("encrypt_assertions is set but no encryption certificate is registered")
        key_transport, oaep_digest = KEY_TRANSPORTS[settings.key_transport]
        element = encrypt_assertion(
            element, settings.encryption_cert, key_transport=key_transport, oaep_digest=oaep_digest
        )
    response = build_response(
        Response(issuer=idp_entity_id, destination=acs_url, in_response_to=request_id, issue_instant=now),
        [element],
    )
    sign_message(response, key)
    return response


def build_idp_metadata(
    *,
    entity_id: str,
    sso_url: str,
    key: KeyPair,
    next_key: KeyPair | None,
    now: datetime | None = None,
) -> bytes:
    """Signed IdP metadata listing the current and (during a rollover) the next signing certificate."""
    now = now or utcnow()
    keys = [KeyDescriptor(key.certificate, USE_SIGNING)]
    if next_key is not None:
        keys.append(KeyDescriptor(next_key.certificate, USE_SIGNING))
    entity = EntityDescriptor(
        entity_id=entity_id,
        idp=IDPSSODescriptor(
            sso_services=(Endpoint(BINDING_HTTP_REDIRECT, sso_url), Endpoint(BINDING_HTTP_POST, sso_url)),
            keys=tuple(keys),
            name_id_formats=(NAMEID_PERSISTENT, NAMEID_TRANSIENT),
            want_authn_requests_signed=True,
        ),
        valid_until=now + METADATA_VALIDITY,
        cache_duration=METADATA_CACHE_DURATION,
    )
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + to_bytes(build_metadata(entity, sign_key=key))


def idp_metadata(config: GatewayConfig, now: datetime | None = None) -> bytes:
    """The gateway's signed IdP metadata for ``config`` (``eid-gateway metadata`` prints it)."""
    return build_idp_metadata(
        entity_id=config.saml_idp.entity_id,
        sso_url=config.url(SSO_PATH),
        key=config.keys.saml_signing,
        next_key=config.keys.saml_signing_next,
        now=now,
    )


# -------------------------------------------------------------------------------------- aiohttp adapter ---


class SamlIdpFrontend:
    """The :class:`~eid_gateway.frontends.base.Frontend` for SAML 2.0 (Web Browser SSO profile)."""

    name = FRONTEND_NAME

    def __init__(
        self,
        config: GatewayConfig,
        flows: FlowStarter,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.flows = flows
        self.store = store
        self.clock = clock
        self.entity_id = config.saml_idp.entity_id
        self.sso_url = config.url(SSO_PATH)
        self._metadata: tuple[datetime, bytes] | None = None

    @property
    def signing_key(self) -> KeyPair:
        return self.config.keys.saml_signing

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.get(METADATA_PATH, self.metadata, allow_head=True),
            web.get(SSO_PATH, self.sso_redirect, allow_head=False),
            web.post(SSO_PATH, self.sso_post),
        ]

    # --- metadata -----------------------------------------------------------------------------------------

    def metadata_xml(self) -> bytes:
        """The signed metadata, rebuilt when older than its cacheDuration."""
        now = self.clock()
        if self._metadata is None or now - self._metadata[0] >= METADATA_CACHE_DURATION:
            xml = idp_metadata(self.config, now)
            self._metadata = (now, xml)
        return self._metadata[1]

    async def metadata(self, request: web.Request) -> web.StreamResponse:
        response = web.Response(body=self.metadata_xml())
        response.headers["Content-Type"] = METADATA_CONTENT_TYPE
        response.headers["Cache-Control"] = f"public, max-age={int(METADATA_CACHE_DURATION.total_seconds())}"
        return response

    # --- SSO ---------------------------------------------------------------------------------------------

    async def sso_redirect(self, request: web.Request) -> web.StreamResponse:
        # the octets as sent: the query signature covers them, not yarl's re-encoding (saml-bindings 3.4.4.1)
        return await self._sso(request, IncomingRequest(BINDING_HTTP_REDIRECT, raw_query_string(request), None))

    async def sso_post(self, request: web.Request) -> web.StreamResponse:
        try:
            form = await read_form(request)
        except FormError as exc:  # the service cannot be known yet: the citizen gets the page (400)
            return self._rejected_page(request, RequestRejected("malformed", f"POST body: {exc.reason}"))
        value = form.get("SAMLRequest")
        relay = form.get("RelayState")
        if value is None:
            return self._rejected_page(request, RequestRejected("malformed", "POST without SAMLRequest"))
        return await self._sso(request, IncomingRequest(BINDING_HTTP_POST, value, relay))

    async def _sso(self, request: web.Request, incoming: IncomingRequest) -> web.StreamResponse:
        try:
            accepted = check_authn_request(incoming, self.config.services, destination=self.sso_url, now=self.clock())
            ttl = (REQUEST_MAX_AGE + 2 * DEFAULT_CLOCK_SKEW).total_seconds()
            key = f"{accepted.service.id}\n{accepted.request.id}"
            if not await self.store.consume_once("saml_authn_request", key, ttl):
                raise RequestRefused(
                    Status(STATUS_REQUESTER, STATUS_REQUEST_DENIED, "request replayed: this ID was used before"),
                    accepted.service,
                    accepted.acs_url,
                    accepted.request.id,
                    accepted.relay_state,
                )
        except RequestRejected as exc:
            return self._rejected_page(request, exc)
        except RequestRefused as exc:
            log.warning(
                "AuthnRequest refused service=%s status=%s reason=%s",
                exc.service.id,
                exc.status.sub_code or exc.status.code,
                exc.status.message,
            )
            return self._post_response(
                request,
                negotiate_language(request),
                exc.acs_url,
                build_error_response(
                    idp_entity_id=self.entity_id,
                    key=self.signing_key,
                    acs_url=exc.acs_url,
                    request_id=exc.request_id,
                    status=exc.status,
                ),
                exc.relay_state,
            )
        log.info(
            "AuthnRequest accepted service=%s binding=%s attributes=%d",
            accepted.service.id,
            "redirect" if incoming.binding == BINDING_HTTP_REDIRECT else "post",
            len(accepted.released),
        )
        return await self.flows.begin(
            request, FlowStart(accepted.service, FRONTEND_NAME, accepted.frontend_state(), accepted.eid_request())
        )

    def _rejected_page(self, request: web.Request, exc: RequestRejected) -> web.Response:
        log.warning("AuthnRequest rejected reason=%s detail=%s", exc.reason, exc.detail)
        lang = negotiate_language(request)
        title, text = REJECTION_TEXTS[exc.reason][lang]
        # One language (the SSO URL's ``lang``, the cookie or the browser's); no switch after a POST:
        # its link would repeat the request as a GET without the SAMLRequest
        return render_page(
            request,
            "failure.html",
            status=400,
            lang=lang,
            failure_title=title,
            failure_text=text,
            return_url=None,
            csrf_token="",
            language_switch=request.method == "GET",
        )

    def _post_response(
        self, request: web.Request, lang: str, acs_url: str, response: etree._Element, relay_state: str | None
    ) -> web.Response:
        """The POST binding page in the gateway's layout and the citizen's language; it submits itself
        (static script) and has a button for browsers without JavaScript. No language switch: its link
        would repeat this request."""
        fields = post_fields(acs_url, response, param="SAMLResponse", relay_state=relay_state)
        return render_page(
            request,
            "saml_post.html",
            lang=lang,
            language_switch=False,
            action=acs_url,
            fields=fields,
            form_id=FORM_ID,
            script_src=AUTOSUBMIT_SCRIPT_PATH,
        )

    # --- answers (called by the flow) -------------------------------------------------------------------

    def _target(self, flow: FlowContext) -> tuple[SamlServiceSettings, str, str, str | None]:
        settings = flow.service.saml
        state = flow.frontend_state
        acs_url = state.get("acs_url", "")
        if settings is None or acs_url not in settings.acs_urls:
            # The registration changed while the flow ran: the stored address is no longer trusted.
            raise RuntimeError("the ACS URL of this flow is no longer registered")
        relay_state = state.get("relay_state") if state.get("has_relay_state") else None
        return settings, acs_url, state["request_id"], relay_state

    async def finish(
        self, request: web.Request, flow: FlowContext, identity: Identity, pseudonym: str
    ) -> web.StreamResponse:
        settings, acs_url, request_id, relay_state = self._target(flow)
        asked = {Attribute(v) for v in flow.frontend_state.get("released", "").split(",") if v}
        released = flow.service.allowed_attributes & frozenset(asked)
        # flows begun before transient NameIDs existed carry no format: persistent, as they were asked
        transient = flow.frontend_state.get("name_id_format") == NAMEID_TRANSIENT
        name_id_format = NAMEID_TRANSIENT if transient else NAMEID_PERSISTENT
        response = build_success_response(
            idp_entity_id=self.entity_id,
            key=self.signing_key,
            settings=settings,
            acs_url=acs_url,
            request_id=request_id,
            identity=identity,
            pseudonym=pseudonym,
            released=released,
            now=self.clock(),
            name_id_format=name_id_format,
        )
        log.info(
            "SAML Response issued service=%s encrypted=%s name_id=%s",
            flow.service.id,
            settings.encrypt_assertions,
            "transient" if transient else "persistent",
        )
        return self._post_response(request, flow.language, acs_url, response, relay_state)

    async def fail(self, request: web.Request, flow: FlowContext, failure: FailureKind) -> web.StreamResponse:
        _, acs_url, request_id, relay_state = self._target(flow)
        status = failure_status(failure)
        log.info("SAML error Response service=%s failure=%s", flow.service.id, failure.value)
        return self._post_response(
            request,
            flow.language,
            acs_url,
            build_error_response(
                idp_entity_id=self.entity_id,
                key=self.signing_key,
                acs_url=acs_url,
                request_id=request_id,
                status=status,
            ),
            relay_state,
        )


def create_saml_frontend(config: GatewayConfig, flows: FlowStarter, store: Store) -> SamlIdpFrontend:
    """The SAML IdP frontend of the gateway, ready to be registered with the flow manager."""
    return SamlIdpFrontend(config, flows, store)


__all__ = [
    "FRONTEND_NAME",
    "METADATA_PATH",
    "SSO_PATH",
    "AcceptedRequest",
    "IncomingRequest",
    "RequestRefused",
    "RequestRejected",
    "SamlIdpFrontend",
    "build_error_response",
    "build_idp_metadata",
    "build_success_response",
    "check_authn_request",
    "create_saml_frontend",
    "failure_status",
    "idp_metadata",
    "requested_attributes",
    "resolve_acs",
]
