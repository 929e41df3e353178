"""Checking SAML messages as the receiving party: Responses at an SP, AuthnRequests at an IdP.

The order matters. A Response is parsed once; every signature is verified before anything inside it is
trusted; exactly one Assertion (plain or encrypted) is selected from the Response's direct children, and
it is read *only* through the element that :func:`saml.dsig.verify_enveloped` /
:func:`saml.xmlenc.decrypt_assertion` returned. Only then come the protocol checks, and the one-time
state (the pending request, the assertion ID) is consumed last, so a forged message cannot burn it.
Each failed check raises its own exception type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from lxml import etree

from saml.algorithms import DEFAULT_POLICY, AlgorithmPolicy
from saml.dsig import MissingSignature, ReferenceMismatch, has_signature, verify_enveloped
from saml.errors import EncryptionError, MessageError, ValidationError
from saml.keys import KeyPair
from saml.messages import (
    CM_BEARER,
    Assertion,
    AuthnRequest,
    NameID,
    Response,
    Status,
    SubjectConfirmation,
    parse_assertion,
    parse_authn_request,
    parse_response,
)
from saml.metadata import EntityDescriptor
from saml.stores import InMemoryReplayCache, InMemoryRequestStore, ReplayCache, RequestStore
from saml.xml import parse_xml, qname
from saml.xmlenc import decrypt_assertion

DEFAULT_CLOCK_SKEW: Final = timedelta(seconds=60)


# ------------------------------------------------------------------------------------------ errors ---


class StatusError(ValidationError):
    """The IdP answered with a non-Success status; ``status`` carries its codes (and message)."""

    code = "status_not_success"

    def __init__(self, status: Status) -> None:
        codes = status.code + (f" / {status.sub_code}" if status.sub_code else "")
        super().__init__(f"the response status is not Success: {codes}")
        self.status = status


class AssertionCountError(ValidationError):
    """A Response must carry exactly one Assertion or EncryptedAssertion."""

    code = "assertion_count"


class Expired(ValidationError):
    """NotOnOrAfter (of the Conditions, the bearer confirmation or the session) has passed."""

    code = "expired"


class NotYetValid(ValidationError):
    """NotBefore (or an IssueInstant) lies in the future beyond the allowed clock skew."""

    code = "not_yet_valid"


class AudienceMismatch(ValidationError):
    """The assertion's AudienceRestriction does not name this service (or there is none)."""

    code = "audience_mismatch"


class DestinationMismatch(ValidationError):
    """The message's Destination is not exactly this endpoint."""

    code = "destination_mismatch"


class RecipientMismatch(ValidationError):
    """The bearer SubjectConfirmationData's Recipient is not exactly this ACS URL."""

    code = "recipient_mismatch"


class IssuerMismatch(ValidationError):
    """The Issuer is not the expected entity."""

    code = "issuer_mismatch"


class InResponseToMismatch(ValidationError):
    """InResponseTo names no pending request (unknown, expired or already answered) or is inconsistent."""

    code = "in_response_to_mismatch"


class UnsolicitedResponse(ValidationError):
    """A response without InResponseTo, while unsolicited (IdP-initiated) responses are not allowed."""

    code = "unsolicited_response"


class ReplayedAssertion(ValidationError):
    """This assertion ID was accepted before."""

    code = "assertion_replayed"


class ReplayedRequest(ValidationError):
    """This AuthnRequest ID was seen before."""

    code = "request_replayed"


class NoBearerConfirmation(ValidationError):
    """The Subject has no bearer SubjectConfirmation (with SubjectConfirmationData) at all."""

    code = "no_bearer_confirmation"


class MissingAuthnStatement(ValidationError):
    """A Web-SSO assertion must contain an AuthnStatement."""

    code = "no_authn_statement"


class AcsUrlMismatch(ValidationError):
    """An AuthnRequest asks for an AssertionConsumerServiceURL the service has not registered."""

    code = "acs_url_mismatch"


class DecryptionNotConfigured(EncryptionError):
    """The assertion is encrypted but no decryption key is configured (or plain where encryption is required)."""

    code = "decryption_not_configured"


# -------------------------------------------------------------------------------------------- result ---


@dataclass(frozen=True)
class ValidatedResponse:
    response_id: str
    in_response_to: str | None
    issuer: str
    assertion: Assertion
    name_id: NameID
    session_index: str | None
    authn_instant: datetime
    authn_context: str | None
    session_not_on_or_after: datetime | None
    attributes: dict[str, list[str]]
    response_signed: bool
    assertion_signed: bool
    encrypted: bool


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


# ----------------------------------------------------------------------------------------- validator ---


class ResponseValidator:
    """Validates Responses for one SP (ACS URL) from one IdP, with trust taken from configuration."""

    def __init__(
        self,
        *,
        sp_entity_id: str,
        acs_url: str,
        idp_entity_id: str,
        idp_certs: Sequence[x509.Certificate],
        decryption_keys: Sequence[KeyPair] = (),
        require_signed_response: bool = False,
        require_signed_assertion: bool = True,
        require_encrypted_assertion: bool = False,
        allow_unsolicited: bool = False,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        policy: AlgorithmPolicy = DEFAULT_POLICY,
        request_store: RequestStore | None = None,
        replay_cache: ReplayCache | None = None,
    ) -> None:
        if not (require_signed_response or require_signed_assertion):
            raise ValueError("at least one of require_signed_response / require_signed_assertion must be set")
        if not idp_certs:
            raise ValueError("no IdP certificate configured")
        if require_encrypted_assertion and not decryption_keys:
            raise ValueError("require_encrypted_assertion needs decryption_keys")
        if clock_skew < timedelta(0) or clock_skew > timedelta(minutes=10):
            raise ValueError("clock_skew must be between 0 and 10 minutes")
        self.sp_entity_id = sp_entity_id
        self.acs_url = acs_url
        self.idp_entity_id = idp_entity_id
        self.idp_certs = tuple(idp_certs)
        self.decryption_keys = tuple(decryption_keys)
        self.require_signed_response = require_signed_response
        self.require_signed_assertion = require_signed_assertion
        self.require_encrypted_assertion = require_encrypted_assertion
        self.allow_unsolicited = allow_unsolicited
        self.clock_skew = clock_skew
        self.policy = policy
        self.request_store: RequestStore = request_store if request_store is not None else InMemoryRequestStore()
        self.replay_cache: ReplayCache = replay_cache if replay_cache is not None else InMemoryReplayCache()

    @classmethod
    def from_metadata(
        cls, idp: EntityDescriptor, *, sp_entity_id: str, acs_url: str, **options: object
    ) -> ResponseValidator:
        """A validator trusting the signing keys (all of them, for rollover) of trusted IdP metadata."""
        if idp.idp is None:
            raise ValueError("the metadata describes no IdP")
        certs = idp.idp.signing_certificates()
        return cls(sp_entity_id=sp_entity_id, acs_url=acs_url, idp_entity_id=idp.entity_id, idp_certs=certs, **options)  # type: ignore[arg-type]

    # -- the pipeline ------------------------------------------------------------------------------

    def validate(self, xml: bytes, *, now: datetime | None = None) -> ValidatedResponse:
        now = _aware(now)
        root = parse_xml(xml)
        if root.tag != qname("samlp", "Response"):
            raise MessageError("not a samlp:Response")

        response_signed = False
        if has_signature(root):
            root = verify_enveloped(root, self.idp_certs, policy=self.policy)
            response_signed = True
        elif self.require_signed_response:
            raise MissingSignature("the Response is not signed")
        response = parse_response(root)

        self._check_envelope(response, response_signed, now)
        if not response.status.is_success:
            # An error answer still answers (and uses up) the request it names.
            self._check_in_response_to(response.in_response_to, None, now)
            raise StatusError(response.status)

        element, encrypted = self._select_assertion(root)
        assertion_signed = False
        if has_signature(element):
            verified = verify_enveloped(element, self.idp_certs, policy=self.policy)
            if verified is not element:
                raise ReferenceMismatch("the assertion signature covers another element")
            element = verified
            assertion_signed = True
        elif self.require_signed_assertion:
            raise MissingSignature("the Assertion is not signed")
        if not (response_signed or assertion_signed):
            raise MissingSignature("neither the Response nor the Assertion is signed")
        assertion = parse_assertion(element)

        if assertion.issuer != self.idp_entity_id:
            raise IssuerMismatch("the Assertion Issuer is not the expected IdP")
        bearer = self._check_subject(assertion, response, now)
        self._check_conditions(assertion, now)
        if not assertion.authn_statements:
            raise MissingAuthnStatement("the Assertion has no AuthnStatement")
        statement = assertion.authn_statements[0]
        if statement.session_not_on_or_after is not None and now >= statement.session_not_on_or_after + self.clock_skew:
            raise Expired("the authentication session has ended (SessionNotOnOrAfter)")

        in_response_to = self._check_in_response_to(response.in_response_to, bearer.in_response_to, now)
        assert bearer.not_on_or_after is not None
        expiry = bearer.not_on_or_after
        if assertion.conditions is not None and assertion.conditions.not_on_or_after is not None:
            expiry = max(expiry, assertion.conditions.not_on_or_after)
        if not self.replay_cache.add_if_new(assertion.id, expires_at=expiry + self.clock_skew, now=now):
            raise ReplayedAssertion("this assertion has been used before")

        return ValidatedResponse(
            response_id=response.id,
            in_response_to=in_response_to,
            issuer=assertion.issuer,
            assertion=assertion,
            name_id=assertion.subject.name_id,
            session_index=statement.session_index,
            authn_instant=statement.authn_instant,
            authn_context=statement.class_ref or statement.decl_ref,
            session_not_on_or_after=statement.session_not_on_or_after,
            attributes=assertion.attribute_map(),
            response_signed=response_signed,
            assertion_signed=assertion_signed,
            encrypted=encrypted,
        )

    # -- steps ---------------------------------------------------------------------------------------

    def _check_envelope(self, response: Response, signed: bool, now: datetime) -> None:
        if response.issuer is not None and response.issuer != self.idp_entity_id:
            raise IssuerMismatch("the Response Issuer is not the expected IdP")
        if response.destination is None:
            if signed:
                # SAML bindings 3.5.5.2: a signed POST message must say where it is meant to go.
                raise DestinationMismatch("the signed Response carries no Destination")
        elif response.destination != self.acs_url:
            raise DestinationMismatch("the Response Destination is not this ACS URL")
        if response.issue_instant > now + self.clock_skew:
            raise NotYetValid("the Response IssueInstant lies in the future")

    def _select_assertion(self, root: etree._Element) -> tuple[etree._Element, bool]:
        found = [c for c in root if c.tag in (qname("saml", "Assertion"), qname("saml", "EncryptedAssertion"))]
        if len(found) != 1:
            raise AssertionCountError(f"the Response carries {len(found)} assertions; exactly one is required")
        element = found[0]
        if element.tag == qname("saml", "Assertion"):
            if self.require_encrypted_assertion:
                raise DecryptionNotConfigured("the Assertion is not encrypted, but encryption is required")
            return element, False
        if not self.decryption_keys:
            raise DecryptionNotConfigured("the Assertion is encrypted but no decryption key is configured")
        return decrypt_assertion(element, self.decryption_keys, policy=self.policy), True

    def _bearer_error(self, sc: SubjectConfirmation, response: Response, now: datetime) -> ValidationError | None:
        if sc.recipient != self.acs_url:
            return RecipientMismatch("the bearer confirmation's Recipient is not this ACS URL")
        if sc.not_on_or_after is None:
            return Expired("the bearer confirmation has no NotOnOrAfter")
        if now >= sc.not_on_or_after + self.clock_skew:
            return Expired("the bearer confirmation has expired")
        if sc.not_before is not None and now + self.clock_skew < sc.not_before:
            return NotYetValid("the bearer confirmation is not yet valid")
        if response.in_response_to is not None and sc.in_response_to not in (None, response.in_response_to):
            return InResponseToMismatch("the Response and its Assertion name different requests")
        return None

    def _check_subject(self, assertion: Assertion, response: Response, now: datetime) -> SubjectConfirmation:
        bearers = [sc for sc in assertion.subject.confirmations if sc.method == CM_BEARER]
        if not bearers:
            raise NoBearerConfirmation("the Subject has no bearer SubjectConfirmation")
        first_error: ValidationError | None = None
        for sc in bearers:
            error = self._bearer_error(sc, response, now)
            if error is None:
                return sc
            first_error = first_error or error
        assert first_error is not None
        raise first_error

    def _check_conditions(self, assertion: Assertion, now: datetime) -> None:
        conditions = assertion.conditions
        if conditions is None or not conditions.audience_restrictions:
            raise AudienceMismatch("the Assertion has no AudienceRestriction")
        if conditions.not_before is not None and now + self.clock_skew < conditions.not_before:
            raise NotYetValid("the Assertion is not yet valid (NotBefore)")
        if conditions.not_on_or_after is not None and now >= conditions.not_on_or_after + self.clock_skew:
            raise Expired("the Assertion has expired (NotOnOrAfter)")
        for audiences in conditions.audience_restrictions:
            if self.sp_entity_id not in audiences:
                raise AudienceMismatch("the Assertion is meant for another audience")
        if assertion.issue_instant > now + self.clock_skew:
            raise NotYetValid("the Assertion IssueInstant lies in the future")

    def _check_in_response_to(self, envelope: str | None, bearer: str | None, now: datetime) -> str | None:
        if envelope is not None and bearer is not None and envelope != bearer:
            raise InResponseToMismatch("the Response and its Assertion name different requests")
        request_id = bearer if bearer is not None else envelope
        if request_id is None:
            if not self.allow_unsolicited:
                raise UnsolicitedResponse("unsolicited responses are not accepted")
            return None
        if not self.request_store.consume(request_id, now=now):
            raise InResponseToMismatch("InResponseTo names no pending request (unknown or already answered)")
        return request_id


# ------------------------------------------------------------------------------------- IdP side ---


def verify_authn_request(
    request: etree._Element,
    *,
    trusted: Sequence[x509.Certificate],
    destination: str,
    sp_entity_id: str | None = None,
    acs_urls: Sequence[str] | None = None,
    require_signature: bool = True,
    binding_signed: bool = False,
    now: datetime | None = None,
    max_age: timedelta = timedelta(minutes=5),
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    replay_cache: ReplayCache | None = None,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> AuthnRequest:
    """Check an incoming AuthnRequest at the IdP and return it parsed from the verified element.

    The POST binding carries an enveloped signature, verified here; for the Redirect binding pass
    ``binding_signed=True`` once :func:`saml.bindings.parse_redirect` has verified the query signature.
    """
    now = _aware(now)
    if request.tag != qname("samlp", "AuthnRequest"):
        raise MessageError("not a samlp:AuthnRequest")
    signed = binding_signed
    if has_signature(request):
        request = verify_enveloped(request, trusted, policy=policy)
        signed = True
    if require_signature and not signed:
        raise MissingSignature("the AuthnRequest is not signed")
    parsed = parse_authn_request(request)
    if sp_entity_id is not None and parsed.issuer != sp_entity_id:
        raise IssuerMismatch("the AuthnRequest Issuer is not the expected service")
    if parsed.destination is None:
        if signed:
            raise DestinationMismatch("the signed AuthnRequest carries no Destination")
    elif parsed.destination != destination:
        raise DestinationMismatch("the AuthnRequest Destination is not this endpoint")
    if acs_urls is not None and parsed.acs_url is not None and parsed.acs_url not in acs_urls:
        raise AcsUrlMismatch("the AssertionConsumerServiceURL is not registered for this service")
    if parsed.issue_instant > now + clock_skew:
        raise NotYetValid("the AuthnRequest IssueInstant lies in the future")
    if now >= parsed.issue_instant + max_age + clock_skew:
        raise Expired("the AuthnRequest is too old")
    if replay_cache is not None and not replay_cache.add_if_new(
        f"authnrequest:{parsed.issuer}:{parsed.id}", expires_at=parsed.issue_instant + max_age + clock_skew, now=now
    ):
        raise ReplayedRequest("this AuthnRequest has been seen before")
    return parsed
