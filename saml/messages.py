"""SAML 2.0 protocol messages as dataclasses, with builders (dataclass -> lxml element) and strict parsers.

Parsers read exactly what the schema allows: required elements and attributes must be present, elements
the schema allows once must not appear twice, identifiers are an element's *whole* text and an element
carrying child nodes where text belongs is refused. Parsers never verify signatures: callers hand them
only the element returned by :func:`saml.dsig.verify_enveloped` or :func:`saml.xmlenc.decrypt_assertion`.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, TypedDict

from lxml import etree

from saml.dsig import sign_enveloped
from saml.errors import MessageError
from saml.keys import KeyPair
from saml.xml import NS, qname

SAMLP_NS: Final = NS["samlp"]
SAML_NS: Final = NS["saml"]

# Status codes (SAML core 3.2.2.2).
STATUS_SUCCESS: Final = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_REQUESTER: Final = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER: Final = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_VERSION_MISMATCH: Final = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch"
STATUS_AUTHN_FAILED: Final = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
STATUS_INVALID_ATTR_NAME_OR_VALUE: Final = "urn:oasis:names:tc:SAML:2.0:status:InvalidAttrNameOrValue"
STATUS_INVALID_NAMEID_POLICY: Final = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"
STATUS_NO_AUTHN_CONTEXT: Final = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"
STATUS_NO_PASSIVE: Final = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
STATUS_PARTIAL_LOGOUT: Final = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
STATUS_REQUEST_DENIED: Final = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
STATUS_REQUEST_UNSUPPORTED: Final = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported"
STATUS_UNKNOWN_PRINCIPAL: Final = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"
STATUS_UNSUPPORTED_BINDING: Final = "urn:oasis:names:tc:SAML:2.0:status:UnsupportedBinding"

BINDING_HTTP_POST: Final = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_HTTP_REDIRECT: Final = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"

NAMEID_TRANSIENT: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_PERSISTENT: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_ENTITY: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
NAMEID_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_EMAIL: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"

ATTRNAME_FORMAT_URI: Final = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
ATTRNAME_FORMAT_BASIC: Final = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
ATTRNAME_FORMAT_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"

CM_BEARER: Final = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

AC_SMARTCARD_PKI: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"
AC_PASSWORD_PROTECTED: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
AC_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"

LOGOUT_REASON_USER: Final = "urn:oasis:names:tc:SAML:2.0:logout:user"
LOGOUT_REASON_ADMIN: Final = "urn:oasis:names:tc:SAML:2.0:logout:admin"

_XSI_TYPE: Final = qname("xsi", "type")
_ID_BYTES: Final = 20  # 160 bits, above the 128 bits SAML core 1.3.4 asks for


def new_id() -> str:
    """A fresh message/assertion ID: an xs:ID (so it starts with "_") carrying 160 random bits."""
    return "_" + secrets.token_hex(_ID_BYTES)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC, without microseconds (SAML instants are second-precise)."""
    return datetime.now(UTC).replace(microsecond=0)


# --------------------------------------------------------------------------------------------- time ---

_DATETIME_RE: Final = re.compile(
    r"(?P<date>-?\d{4,}-\d{2}-\d{2})T(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<frac>\d+))?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})"
)


def format_datetime(value: datetime) -> str:
    """xs:dateTime in UTC with a "Z" designator, as SAML core 1.3.3 requires."""
    if value.tzinfo is None:
        raise ValueError("SAML instants must be timezone-aware")
    utc = value.astimezone(UTC)
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_datetime(text: str, what: str = "instant") -> datetime:
    """Parse xs:dateTime into an aware UTC datetime; a value without a time zone is refused.

    SAML core 1.3.3 requires UTC; accepting zone-less times would make their meaning depend on the
    machine that reads them.
    """
    m = _DATETIME_RE.fullmatch(text)
    if m is None:
        raise MessageError(f"{what} is not an xs:dateTime with time zone")
    frac = (m["frac"] or "")[:6].ljust(6, "0")
    tz = m["tz"]
    try:
        base = datetime.fromisoformat(f"{m['date']}T{m['h']}:{m['m']}:{m['s']}")
        if tz == "Z":
            offset = timedelta(0)
        else:
            sign = 1 if tz[0] == "+" else -1
            offset = sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        aware = base.replace(microsecond=int(frac), tzinfo=timezone(offset))
        return aware.astimezone(UTC)
    except ValueError:
        raise MessageError(f"{what} is not a valid xs:dateTime") from None
    except OverflowError:  # 0001-01-01T00:00:00+01:00 lies before datetime.min in UTC
        raise MessageError(f"{what} is out of range") from None


# ------------------------------------------------------------------------------------ read helpers ---


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(parent: etree._Element, tag: str) -> list[etree._Element]:
    return [c for c in parent if isinstance(c.tag, str) and c.tag == tag]


def _optional(parent: etree._Element, tag: str) -> etree._Element | None:
    found = _children(parent, tag)
    if len(found) > 1:
        raise MessageError(f"{_local(parent.tag)} has {len(found)} {_local(tag)} elements; at most one is allowed")
    return found[0] if found else None


def _one(parent: etree._Element, tag: str) -> etree._Element:
    found = _children(parent, tag)
    if len(found) != 1:
        raise MessageError(f"{_local(parent.tag)} must have exactly one {_local(tag)}, found {len(found)}")
    return found[0]


def element_text(element: etree._Element, *, allow_empty: bool = False) -> str:
    """The whole text of an element that must hold only text.

    Any child node (element, comment, processing instruction) is refused rather than skipped: reading
    only the text before it is how NameID truncation attacks worked.
    """
    if len(element):
        raise MessageError(f"{_local(element.tag)} must contain only text, not child nodes")
    text = element.text or ""
    if not text and not allow_empty:
        raise MessageError(f"{_local(element.tag)} is empty")
    return text


def _attr(element: etree._Element, name: str) -> str:
    value = element.get(name)
    if value is None:
        raise MessageError(f"{_local(element.tag)} lacks the required attribute {name}")
    if not value:
        raise MessageError(f"{_local(element.tag)} has an empty {name} attribute")
    return value


def _opt_attr(element: etree._Element, name: str) -> str | None:
    value = element.get(name)
    if value is not None and not value:
        raise MessageError(f"{_local(element.tag)} has an empty {name} attribute")
    return value


_UNSIGNED_SHORT_RE: Final = re.compile(r"[0-9]{1,5}")


def parse_unsigned_short(text: str, what: str) -> int:
    """xs:unsignedShort (an endpoint index). ASCII digits only: ``str.isdigit`` also accepts "²", which
    ``int`` then refuses with a bare ValueError."""
    if _UNSIGNED_SHORT_RE.fullmatch(text) is None or int(text) > 0xFFFF:
        raise MessageError(f"{what} is not an unsigned short")
    return int(text)


def _opt_time(element: etree._Element, name: str) -> datetime | None:
    value = element.get(name)
    return None if value is None else parse_datetime(value, f"{_local(element.tag)}/@{name}")


def _bool_attr(element: etree._Element, name: str) -> bool | None:
    value = element.get(name)
    if value is None:
        return None
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise MessageError(f"{_local(element.tag)}/@{name} is not an xs:boolean")


def _expect(element: etree._Element, tag: str) -> None:
    if element.tag != tag:
        raise MessageError(f"expected {_local(tag)}, got {_local(str(element.tag))}")


def _version(element: etree._Element) -> None:
    if element.get("Version") != "2.0":
        raise MessageError(f"{_local(element.tag)} is not SAML Version 2.0")


def _issuer(parent: etree._Element, *, required: bool) -> str | None:
    el = _optional(parent, qname("saml", "Issuer"))
    if el is None:
        if required:
            raise MessageError(f"{_local(parent.tag)} lacks an Issuer")
        return None
    fmt = el.get("Format")
    if fmt is not None and fmt != NAMEID_ENTITY:
        raise MessageError("Issuer Format must be the entity format")
    return element_text(el)


# ----------------------------------------------------------------------------------- write helpers ---


def _el(
    parent: etree._Element | None, prefix: str, local: str, text: str | None = None, **attrs: str | None
) -> etree._Element:
    tag = qname(prefix, local)
    el = etree.Element(tag, nsmap={prefix: NS[prefix]}) if parent is None else etree.SubElement(parent, tag)
    for key, value in attrs.items():
        if value is not None:
            el.set(key, value)
    if text is not None:
        el.text = text
    return el


def _root(prefix: str, local: str, **attrs: str | None) -> etree._Element:
    el = etree.Element(qname(prefix, local), nsmap={"samlp": SAMLP_NS, "saml": SAML_NS})
    for key, value in attrs.items():
        if value is not None:
            el.set(key, value)
    return el


def _bool(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def _add_issuer(parent: etree._Element, issuer: str | None) -> None:
    if issuer is not None:
        _el(parent, "saml", "Issuer", issuer, Format=NAMEID_ENTITY)


# -------------------------------------------------------------------------------------------- status ---


@dataclass(frozen=True)
class Status:
    """samlp:Status: a top-level code, an optional second-level code and an optional message."""

    code: str = STATUS_SUCCESS
    sub_code: str | None = None
    message: str | None = None

    @property
    def is_success(self) -> bool:
        return self.code == STATUS_SUCCESS


def build_status(parent: etree._Element, status: Status) -> etree._Element:
    el = _el(parent, "samlp", "Status")
    top = _el(el, "samlp", "StatusCode", Value=status.code)
    if status.sub_code is not None:
        _el(top, "samlp", "StatusCode", Value=status.sub_code)
    if status.message is not None:
        _el(el, "samlp", "StatusMessage", status.message)
    return el


def parse_status(parent: etree._Element) -> Status:
    el = _one(parent, qname("samlp", "Status"))
    top = _one(el, qname("samlp", "StatusCode"))
    sub = _optional(top, qname("samlp", "StatusCode"))
    msg = _optional(el, qname("samlp", "StatusMessage"))
    return Status(
        code=_attr(top, "Value"),
        sub_code=None if sub is None else _attr(sub, "Value"),
        message=None if msg is None else element_text(msg, allow_empty=True),
    )


# ------------------------------------------------------------------------------------- AuthnRequest ---


@dataclass(frozen=True)
class NameIDPolicy:
    format: str | None = None
    sp_name_qualifier: str | None = None
    allow_create: bool | None = None


@dataclass(frozen=True)
class RequestedAuthnContext:
    class_refs: tuple[str, ...]
    comparison: str = "exact"


@dataclass(frozen=True)
class AuthnRequest:
    issuer: str
    id: str = field(default_factory=new_id)
    issue_instant: datetime = field(default_factory=utcnow)
    destination: str | None = None
    acs_url: str | None = None
    protocol_binding: str | None = None
    acs_index: int | None = None
    force_authn: bool | None = None
    is_passive: bool | None = None
    provider_name: str | None = None
    name_id_policy: NameIDPolicy | None = None
    requested_authn_context: RequestedAuthnContext | None = None
    extensions: tuple[etree._Element, ...] = ()


def _add_extensions(parent: etree._Element, extensions: Sequence[etree._Element]) -> None:
    if extensions:
        ext = _el(parent, "samlp", "Extensions")
        for item in extensions:
            ext.append(copy.deepcopy(item))


def _parse_extensions(parent: etree._Element) -> tuple[etree._Element, ...]:
    ext = _optional(parent, qname("samlp", "Extensions"))
    if ext is None:
        return ()
    items = tuple(c for c in ext if isinstance(c.tag, str))
    for item in items:
        if etree.QName(item).namespace in (SAMLP_NS, SAML_NS, None):
            raise MessageError("Extensions children must be in a foreign namespace")
    return items


def build_authn_request(request: AuthnRequest) -> etree._Element:
    if request.acs_index is not None and (request.acs_url or request.protocol_binding):
        raise ValueError("AssertionConsumerServiceIndex excludes AssertionConsumerServiceURL/ProtocolBinding")
    el = _root(
        "samlp",
        "AuthnRequest",
        ID=request.id,
        Version="2.0",
        IssueInstant=format_datetime(request.issue_instant),
        Destination=request.destination,
        ProviderName=request.provider_name,
        ForceAuthn=_bool(request.force_authn),
        IsPassive=_bool(request.is_passive),
        AssertionConsumerServiceURL=request.acs_url,
        ProtocolBinding=request.protocol_binding,
        AssertionConsumerServiceIndex=None if request.acs_index is None else str(request.acs_index),
    )
    _add_issuer(el, request.issuer)
    _add_extensions(el, request.extensions)
    if request.name_id_policy is not None:
        p = request.name_id_policy
        _el(
            el,
            "samlp",
            "NameIDPolicy",
            Format=p.format,
            SPNameQualifier=p.sp_name_qualifier,
            AllowCreate=_bool(p.allow_create),
        )
    if request.requested_authn_context is not None:
        rac = request.requested_authn_context
        ctx = _el(el, "samlp", "RequestedAuthnContext", Comparison=rac.comparison)
        for ref in rac.class_refs:
            _el(ctx, "saml", "AuthnContextClassRef", ref)
    return el


_COMPARISONS: Final = ("exact", "minimum", "maximum", "better")


def parse_authn_request(el: etree._Element) -> AuthnRequest:
    _expect(el, qname("samlp", "AuthnRequest"))
    _version(el)
    index = _opt_attr(el, "AssertionConsumerServiceIndex")
    acs_index = None if index is None else parse_unsigned_short(index, "AssertionConsumerServiceIndex")
    policy_el = _optional(el, qname("samlp", "NameIDPolicy"))
    policy = None
    if policy_el is not None:
        policy = NameIDPolicy(
            format=_opt_attr(policy_el, "Format"),
            sp_name_qualifier=_opt_attr(policy_el, "SPNameQualifier"),
            allow_create=_bool_attr(policy_el, "AllowCreate"),
        )
    rac_el = _optional(el, qname("samlp", "RequestedAuthnContext"))
    rac = None
    if rac_el is not None:
        comparison = rac_el.get("Comparison", "exact")
        if comparison not in _COMPARISONS:
            raise MessageError("RequestedAuthnContext has an unknown Comparison")
        refs = tuple(element_text(r) for r in _children(rac_el, qname("saml", "AuthnContextClassRef")))
        if not refs:
            raise MessageError("RequestedAuthnContext lists no AuthnContextClassRef")
        rac = RequestedAuthnContext(class_refs=refs, comparison=comparison)
    issuer = _issuer(el, required=True)
    assert issuer is not None
    return AuthnRequest(
        issuer=issuer,
        id=_attr(el, "ID"),
        issue_instant=parse_datetime(_attr(el, "IssueInstant"), "IssueInstant"),
        destination=_opt_attr(el, "Destination"),
        acs_url=_opt_attr(el, "AssertionConsumerServiceURL"),
        protocol_binding=_opt_attr(el, "ProtocolBinding"),
        acs_index=acs_index,
        force_authn=_bool_attr(el, "ForceAuthn"),
        is_passive=_bool_attr(el, "IsPassive"),
        provider_name=_opt_attr(el, "ProviderName"),
        name_id_policy=policy,
        requested_authn_context=rac,
        extensions=_parse_extensions(el),
    )


# ---------------------------------------------------------------------------------------- Assertion ---


@dataclass(frozen=True)
class NameID:
    value: str
    format: str | None = None
    name_qualifier: str | None = None
    sp_name_qualifier: str | None = None


@dataclass(frozen=True)
class SubjectConfirmation:
    """A SubjectConfirmation with its SubjectConfirmationData attributes (bearer by default)."""

    method: str = CM_BEARER
    recipient: str | None = None
    not_on_or_after: datetime | None = None
    not_before: datetime | None = None
    in_response_to: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class Subject:
    name_id: NameID
    confirmations: tuple[SubjectConfirmation, ...] = ()


@dataclass(frozen=True)
class Conditions:
    not_before: datetime | None = None
    not_on_or_after: datetime | None = None
    # One tuple per AudienceRestriction; every restriction must name the relying party.
    audience_restrictions: tuple[tuple[str, ...], ...] = ()
    one_time_use: bool = False


@dataclass(frozen=True)
class AuthnStatement:
    authn_instant: datetime
    session_index: str | None = None
    class_ref: str | None = None
    decl_ref: str | None = None
    session_not_on_or_after: datetime | None = None


@dataclass(frozen=True)
class Attribute:
    name: str
    values: tuple[str, ...] = ()
    name_format: str | None = ATTRNAME_FORMAT_URI
    friendly_name: str | None = None


@dataclass(frozen=True)
class Assertion:
    issuer: str
    subject: Subject
    id: str = field(default_factory=new_id)
    issue_instant: datetime = field(default_factory=utcnow)
    conditions: Conditions | None = None
    authn_statements: tuple[AuthnStatement, ...] = ()
    attributes: tuple[Attribute, ...] = ()

    def attribute_map(self) -> dict[str, list[str]]:
        """Attribute values by Name; values of repeated Attribute elements with one Name are joined."""
        result: dict[str, list[str]] = {}
        for attribute in self.attributes:
            result.setdefault(attribute.name, []).extend(attribute.values)
        return result


def _build_name_id(parent: etree._Element, name_id: NameID) -> etree._Element:
    return _el(
        parent,
        "saml",
        "NameID",
        name_id.value,
        Format=name_id.format,
        NameQualifier=name_id.name_qualifier,
        SPNameQualifier=name_id.sp_name_qualifier,
    )


def build_assertion(assertion: Assertion) -> etree._Element:
    """The Assertion element, in schema order; sign it with :func:`sign_message` before use."""
    el = etree.Element(qname("saml", "Assertion"), nsmap={"saml": SAML_NS, "xs": NS["xs"], "xsi": NS["xsi"]})
    el.set("ID", assertion.id)
    el.set("Version", "2.0")
    el.set("IssueInstant", format_datetime(assertion.issue_instant))
    _el(el, "saml", "Issuer", assertion.issuer, Format=NAMEID_ENTITY)
    subject = _el(el, "saml", "Subject")
    _build_name_id(subject, assertion.subject.name_id)
    for sc in assertion.subject.confirmations:
        sc_el = _el(subject, "saml", "SubjectConfirmation", Method=sc.method)
        if any(v is not None for v in (sc.recipient, sc.not_on_or_after, sc.not_before, sc.in_response_to, sc.address)):
            _el(
                sc_el,
                "saml",
                "SubjectConfirmationData",
                NotBefore=_time(sc.not_before),
                NotOnOrAfter=_time(sc.not_on_or_after),
                Recipient=sc.recipient,
                InResponseTo=sc.in_response_to,
                Address=sc.address,
            )
    if assertion.conditions is not None:
        c = assertion.conditions
        cond = _el(el, "saml", "Conditions", NotBefore=_time(c.not_before), NotOnOrAfter=_time(c.not_on_or_after))
        for restriction in c.audience_restrictions:
            ar = _el(cond, "saml", "AudienceRestriction")
            for audience in restriction:
                _el(ar, "saml", "Audience", audience)
        if c.one_time_use:
            _el(cond, "saml", "OneTimeUse")
    for st in assertion.authn_statements:
        st_el = _el(
            el,
            "saml",
            "AuthnStatement",
            AuthnInstant=format_datetime(st.authn_instant),
            SessionIndex=st.session_index,
            SessionNotOnOrAfter=_time(st.session_not_on_or_after),
        )
        ctx = _el(st_el, "saml", "AuthnContext")
        if st.class_ref is None and st.decl_ref is None:
            raise ValueError("an AuthnStatement needs an AuthnContextClassRef or AuthnContextDeclRef")
        if st.class_ref is not None:
            _el(ctx, "saml", "AuthnContextClassRef", st.class_ref)
        if st.decl_ref is not None:
            _el(ctx, "saml", "AuthnContextDeclRef", st.decl_ref)
    if assertion.attributes:
        stmt = _el(el, "saml", "AttributeStatement")
        for attribute in assertion.attributes:
            a_el = _el(
                stmt,
                "saml",
                "Attribute",
                Name=attribute.name,
                NameFormat=attribute.name_format,
                FriendlyName=attribute.friendly_name,
            )
            for value in attribute.values:
                v = _el(a_el, "saml", "AttributeValue", value)
                v.set(_XSI_TYPE, "xs:string")
    return el


def parse_name_id(el: etree._Element) -> NameID:
    _expect(el, qname("saml", "NameID"))
    return NameID(
        value=element_text(el),
        format=_opt_attr(el, "Format"),
        name_qualifier=_opt_attr(el, "NameQualifier"),
        sp_name_qualifier=_opt_attr(el, "SPNameQualifier"),
    )


def _parse_subject(parent: etree._Element) -> Subject:
    subject = _one(parent, qname("saml", "Subject"))
    if _children(subject, qname("saml", "EncryptedID")) or _children(subject, qname("saml", "BaseID")):
        raise MessageError("Subject carries an EncryptedID/BaseID; only a plain NameID is supported")
    name_id = parse_name_id(_one(subject, qname("saml", "NameID")))
    confirmations = []
    for sc in _children(subject, qname("saml", "SubjectConfirmation")):
        if _children(sc, qname("saml", "NameID")) or _children(sc, qname("saml", "EncryptedID")):
            raise MessageError("SubjectConfirmation with its own identifier is not supported")
        data = _optional(sc, qname("saml", "SubjectConfirmationData"))
        confirmations.append(
            SubjectConfirmation(
                method=_attr(sc, "Method"),
                recipient=None if data is None else _opt_attr(data, "Recipient"),
                not_on_or_after=None if data is None else _opt_time(data, "NotOnOrAfter"),
                not_before=None if data is None else _opt_time(data, "NotBefore"),
                in_response_to=None if data is None else _opt_attr(data, "InResponseTo"),
                address=None if data is None else _opt_attr(data, "Address"),
            )
        )
    return Subject(name_id=name_id, confirmations=tuple(confirmations))


def _parse_conditions(parent: etree._Element) -> Conditions | None:
    el = _optional(parent, qname("saml", "Conditions"))
    if el is None:
        return None
    restrictions = []
    for ar in _children(el, qname("saml", "AudienceRestriction")):
        audiences = tuple(element_text(a) for a in _children(ar, qname("saml", "Audience")))
        if not audiences:
            raise MessageError("AudienceRestriction lists no Audience")
        restrictions.append(audiences)
    one_time = _children(el, qname("saml", "OneTimeUse"))
    if len(one_time) > 1:
        raise MessageError("Conditions has more than one OneTimeUse")
    return Conditions(
        not_before=_opt_time(el, "NotBefore"),
        not_on_or_after=_opt_time(el, "NotOnOrAfter"),
        audience_restrictions=tuple(restrictions),
        one_time_use=bool(one_time),
    )


def _parse_authn_statement(el: etree._Element) -> AuthnStatement:
    ctx = _one(el, qname("saml", "AuthnContext"))
    class_ref = _optional(ctx, qname("saml", "AuthnContextClassRef"))
    decl_ref = _optional(ctx, qname("saml", "AuthnContextDeclRef"))
    return AuthnStatement(
        authn_instant=parse_datetime(_attr(el, "AuthnInstant"), "AuthnInstant"),
        session_index=_opt_attr(el, "SessionIndex"),
        class_ref=None if class_ref is None else element_text(class_ref),
        decl_ref=None if decl_ref is None else element_text(decl_ref),
        session_not_on_or_after=_opt_time(el, "SessionNotOnOrAfter"),
    )


def _parse_attribute(el: etree._Element) -> Attribute:
    values = []
    for v in _children(el, qname("saml", "AttributeValue")):
        if v.get(qname("xsi", "nil")) in ("true", "1"):
            continue
        values.append(element_text(v, allow_empty=True))
    return Attribute(
        name=_attr(el, "Name"),
        values=tuple(values),
        name_format=_opt_attr(el, "NameFormat"),
        friendly_name=_opt_attr(el, "FriendlyName"),
    )


def parse_assertion(el: etree._Element) -> Assertion:
    """Parse a plain Assertion. Call it only on the element a signature verification returned."""
    _expect(el, qname("saml", "Assertion"))
    _version(el)
    issuer = _issuer(el, required=True)
    assert issuer is not None
    statements = tuple(_parse_authn_statement(s) for s in _children(el, qname("saml", "AuthnStatement")))
    attributes: list[Attribute] = []
    for stmt in _children(el, qname("saml", "AttributeStatement")):
        attrs = _children(stmt, qname("saml", "Attribute"))
        if _children(stmt, qname("saml", "EncryptedAttribute")):
            raise MessageError("EncryptedAttribute is not supported")
        attributes.extend(_parse_attribute(a) for a in attrs)
    return Assertion(
        issuer=issuer,
        subject=_parse_subject(el),
        id=_attr(el, "ID"),
        issue_instant=parse_datetime(_attr(el, "IssueInstant"), "IssueInstant"),
        conditions=_parse_conditions(el),
        authn_statements=statements,
        attributes=tuple(attributes),
    )


# ----------------------------------------------------------------------------------------- Response ---


@dataclass(frozen=True)
class Response:
    """The samlp:Response envelope (its assertions are handled separately, after verification)."""

    issuer: str | None
    status: Status = field(default_factory=Status)
    id: str = field(default_factory=new_id)
    issue_instant: datetime = field(default_factory=utcnow)
    destination: str | None = None
    in_response_to: str | None = None


def _build_status_response(local: str, response: Response | LogoutResponse) -> etree._Element:
    """The frame Response and LogoutResponse share (StatusResponseType, SAML core 3.2.2): its attributes,
    Issuer and Status."""
    el = _root(
        "samlp",
        local,
        ID=response.id,
        Version="2.0",
        IssueInstant=format_datetime(response.issue_instant),
        Destination=response.destination,
        InResponseTo=response.in_response_to,
    )
    _add_issuer(el, response.issuer)
    build_status(el, response.status)
    return el


class _StatusResponseFields(TypedDict):
    status: Status
    id: str
    issue_instant: datetime
    destination: str | None
    in_response_to: str | None


def _parse_status_response(el: etree._Element, local: str) -> _StatusResponseFields:
    """The StatusResponseType fields but the Issuer (optional in a Response, required in a LogoutResponse)."""
    _expect(el, qname("samlp", local))
    _version(el)
    return _StatusResponseFields(
        status=parse_status(el),
        id=_attr(el, "ID"),
        issue_instant=parse_datetime(_attr(el, "IssueInstant"), "IssueInstant"),
        destination=_opt_attr(el, "Destination"),
        in_response_to=_opt_attr(el, "InResponseTo"),
    )


def build_response(response: Response, assertions: Iterable[etree._Element] = ()) -> etree._Element:
    """A Response carrying the given (already signed and/or encrypted) Assertion/EncryptedAssertion."""
    el = _build_status_response("Response", response)
    for assertion in assertions:
        if assertion.tag not in (qname("saml", "Assertion"), qname("saml", "EncryptedAssertion")):
            raise ValueError("a Response carries only Assertion or EncryptedAssertion elements")
        el.append(assertion)
    return el


def parse_response(el: etree._Element) -> Response:
    """Parse the Response envelope; the Assertion(s) inside are not read here."""
    fields = _parse_status_response(el, "Response")
    return Response(issuer=_issuer(el, required=False), **fields)


# ------------------------------------------------------------------------------------------- Logout ---


@dataclass(frozen=True)
class LogoutRequest:
    issuer: str
    name_id: NameID
    id: str = field(default_factory=new_id)
    issue_instant: datetime = field(default_factory=utcnow)
    destination: str | None = None
    not_on_or_after: datetime | None = None
    reason: str | None = None
    session_indexes: tuple[str, ...] = ()


def build_logout_request(request: LogoutRequest) -> etree._Element:
    el = _root(
        "samlp",
        "LogoutRequest",
        ID=request.id,
        Version="2.0",
        IssueInstant=format_datetime(request.issue_instant),
        Destination=request.destination,
        NotOnOrAfter=_time(request.not_on_or_after),
        Reason=request.reason,
    )
    _add_issuer(el, request.issuer)
    _build_name_id(el, request.name_id)
    for index in request.session_indexes:
        _el(el, "samlp", "SessionIndex", index)
    return el


def parse_logout_request(el: etree._Element) -> LogoutRequest:
    _expect(el, qname("samlp", "LogoutRequest"))
    _version(el)
    if _children(el, qname("saml", "EncryptedID")) or _children(el, qname("saml", "BaseID")):
        raise MessageError("LogoutRequest carries an EncryptedID/BaseID; only a plain NameID is supported")
    issuer = _issuer(el, required=True)
    assert issuer is not None
    return LogoutRequest(
        issuer=issuer,
        name_id=parse_name_id(_one(el, qname("saml", "NameID"))),
        id=_attr(el, "ID"),
        issue_instant=parse_datetime(_attr(el, "IssueInstant"), "IssueInstant"),
        destination=_opt_attr(el, "Destination"),
        not_on_or_after=_opt_time(el, "NotOnOrAfter"),
        reason=_opt_attr(el, "Reason"),
        session_indexes=tuple(element_text(s) for s in _children(el, qname("samlp", "SessionIndex"))),
    )


@dataclass(frozen=True)
class LogoutResponse:
    issuer: str
    in_response_to: str | None
    status: Status = field(default_factory=Status)
    id: str = field(default_factory=new_id)
    issue_instant: datetime = field(default_factory=utcnow)
    destination: str | None = None


def build_logout_response(response: LogoutResponse) -> etree._Element:
    return _build_status_response("LogoutResponse", response)


def parse_logout_response(el: etree._Element) -> LogoutResponse:
    fields = _parse_status_response(el, "LogoutResponse")
    issuer = _issuer(el, required=True)
    assert issuer is not None
    return LogoutResponse(issuer=issuer, **fields)


# ---------------------------------------------------------------------------------------------- signing ---


def sign_message(element: etree._Element, key: KeyPair, *, algorithm: str | None = None) -> etree._Element:
    """Sign a SAML message or assertion in place; the Signature goes right after Issuer, as the schema wants."""
    issuer = _optional(element, qname("saml", "Issuer"))
    return sign_enveloped(element, key, algorithm=algorithm, insert_after=issuer)
