"""SAML 2.0 metadata: dataclasses, a builder and a strict parser for one EntityDescriptor.

Metadata is the trust anchor of a SAML relationship (it carries the peer's keys), so the parser reads a
signed document only through the element the signature verification returned, refuses expired
metadata, and never lets ``KeyInfo`` of a *message* stand in for the keys listed here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, TypedDict

from cryptography import x509
from lxml import etree

from saml.dsig import has_signature, sign_enveloped, verify_enveloped
from saml.errors import MetadataError, SamlError, SignatureError
from saml.keys import KeyPair, cert_b64
from saml.messages import element_text, format_datetime, new_id, parse_datetime, parse_unsigned_short
from saml.xml import NS, parse_xml, qname

PROTOCOL_SAML2: Final = "urn:oasis:names:tc:SAML:2.0:protocol"
USE_SIGNING: Final = "signing"
USE_ENCRYPTION: Final = "encryption"


class MetadataExpired(MetadataError):
    """``validUntil`` of the metadata (or of the role used) lies in the past."""

    code = "metadata_expired"


class MetadataSignatureMissing(MetadataError):
    """A signature on the metadata is required, but it is unsigned or no trusted certificate was given."""

    code = "metadata_unsigned"


class MetadataSignatureInvalid(MetadataError):
    """The metadata signature does not verify with the trusted certificates."""

    code = "metadata_signature_invalid"


@dataclass(frozen=True)
class Endpoint:
    binding: str
    location: str
    index: int | None = None
    is_default: bool | None = None
    response_location: str | None = None


@dataclass(frozen=True)
class KeyDescriptor:
    """A certificate and what it is for; ``use=None`` means both signing and encryption.

    ``encryption_methods`` are the ``md:EncryptionMethod`` algorithm URIs the peer lists for this key (what
    it can decrypt, strongest first by its own account); empty when it lists none.
    """

    certificate: x509.Certificate
    use: str | None = None
    encryption_methods: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.use not in (None, USE_SIGNING, USE_ENCRYPTION):
            raise ValueError("KeyDescriptor use must be signing, encryption or None")


@dataclass(frozen=True, kw_only=True)
class _SSODescriptor:
    """What the IdP and SP descriptors share (SSODescriptorType, SAML metadata 2.4.2); keyword-only, so
    that each role's own first field (its SSO or ACS endpoints) stays the first positional one."""

    keys: tuple[KeyDescriptor, ...] = ()
    slo_services: tuple[Endpoint, ...] = ()
    name_id_formats: tuple[str, ...] = ()
    valid_until: datetime | None = None

    def signing_certificates(self) -> list[x509.Certificate]:
        """Every certificate usable for signing: all of them during a key rollover."""
        return [k.certificate for k in self.keys if k.use in (None, USE_SIGNING)]

    def encryption_certificates(self) -> list[x509.Certificate]:
        return [k.certificate for k in self.keys if k.use in (None, USE_ENCRYPTION)]


@dataclass(frozen=True)
class IDPSSODescriptor(_SSODescriptor):
    sso_services: tuple[Endpoint, ...]
    want_authn_requests_signed: bool = False

    def sso_location(self, binding: str) -> str | None:
        return next((e.location for e in self.sso_services if e.binding == binding), None)


@dataclass(frozen=True)
class SPSSODescriptor(_SSODescriptor):
    acs_services: tuple[Endpoint, ...]
    authn_requests_signed: bool = False
    want_assertions_signed: bool = False

    def encryption_methods(self) -> list[str]:
        """The ``md:EncryptionMethod`` algorithms listed with the encryption keys, in order, no repeats."""
        seen: dict[str, None] = {}
        for kd in self.keys:
            if kd.use in (None, USE_ENCRYPTION):
                seen.update(dict.fromkeys(kd.encryption_methods))
        return list(seen)

    def acs_locations(self) -> list[str]:
        return [e.location for e in self.acs_services]


@dataclass(frozen=True)
class EntityDescriptor:
    entity_id: str
    idp: IDPSSODescriptor | None = None
    sp: SPSSODescriptor | None = None
    valid_until: datetime | None = None
    cache_duration: timedelta | None = None
    id: str = field(default_factory=new_id)
    # Set by the parser: True only if a signature over the whole EntityDescriptor verified.
    signed: bool = False


# ------------------------------------------------------------------------------------------ duration ---

_DURATION_RE: Final = re.compile(
    r"(?P<sign>-)?P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


def parse_duration(text: str) -> timedelta:
    """xs:duration as a timedelta (a year counted as 365 days, a month as 30: cacheDuration is a hint)."""
    m = _DURATION_RE.fullmatch(text)
    if m is None or text in ("P", "-P") or text.endswith("T"):
        raise MetadataError("cacheDuration is not an xs:duration")
    try:
        days = int(m["y"] or 0) * 365 + int(m["mo"] or 0) * 30 + int(m["d"] or 0)
        value = timedelta(days=days, hours=int(m["h"] or 0), minutes=int(m["mi"] or 0), seconds=float(m["s"] or 0))
    except (OverflowError, ValueError):  # beyond timedelta's range, or digits beyond int()'s limit
        raise MetadataError("cacheDuration is out of range") from None
    return -value if m["sign"] else value


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds < 0:
        raise ValueError("cacheDuration must not be negative")
    return f"PT{seconds}S"


# ------------------------------------------------------------------------------------------- builder ---


def _md(parent: etree._Element, local: str, **attrs: str | None) -> etree._Element:
    el = etree.SubElement(parent, qname("md", local))
    for key, value in attrs.items():
        if value is not None:
            el.set(key, value)
    return el


def _build_keys(parent: etree._Element, keys: Sequence[KeyDescriptor]) -> None:
    for kd in keys:
        el = _md(parent, "KeyDescriptor", use=kd.use)
        info = etree.SubElement(el, qname("ds", "KeyInfo"))
        data = etree.SubElement(info, qname("ds", "X509Data"))
        etree.SubElement(data, qname("ds", "X509Certificate")).text = cert_b64(kd.certificate)
        for algorithm in kd.encryption_methods:
            _md(el, "EncryptionMethod", Algorithm=algorithm)


def _build_endpoints(parent: etree._Element, local: str, endpoints: Sequence[Endpoint]) -> None:
    for ep in endpoints:
        _md(
            parent,
            local,
            Binding=ep.binding,
            Location=ep.location,
            ResponseLocation=ep.response_location,
            index=None if ep.index is None else str(ep.index),
            isDefault=None if ep.is_default is None else ("true" if ep.is_default else "false"),
        )


def _build_formats(parent: etree._Element, formats: Sequence[str]) -> None:
    for fmt in formats:
        _md(parent, "NameIDFormat").text = fmt


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _build_sso_descriptor(root: etree._Element, local: str, role: _SSODescriptor, **flags: bool) -> etree._Element:
    """An IDP/SPSSODescriptor with what both have (schema order); the caller adds its own endpoints."""
    el = _md(root, local, protocolSupportEnumeration=PROTOCOL_SAML2, **{k: _flag(v) for k, v in flags.items()})
    if role.valid_until is not None:
        el.set("validUntil", format_datetime(role.valid_until))
    _build_keys(el, role.keys)
    _build_endpoints(el, "SingleLogoutService", role.slo_services)
    _build_formats(el, role.name_id_formats)
    return el


def build_metadata(entity: EntityDescriptor, *, sign_key: KeyPair | None = None) -> etree._Element:
    """The md:EntityDescriptor element; signed (enveloped, first child) if ``sign_key`` is given."""
    if entity.idp is None and entity.sp is None:
        raise ValueError("an EntityDescriptor needs an IdP or SP role")
    root = etree.Element(qname("md", "EntityDescriptor"), nsmap={"md": NS["md"], "ds": NS["ds"]})
    root.set("entityID", entity.entity_id)
    root.set("ID", entity.id)
    if entity.valid_until is not None:
        root.set("validUntil", format_datetime(entity.valid_until))
    if entity.cache_duration is not None:
        root.set("cacheDuration", format_duration(entity.cache_duration))
    if entity.idp is not None:
        idp = entity.idp
        if not idp.sso_services:
            raise ValueError("an IdP needs at least one SingleSignOnService")
        el = _build_sso_descriptor(
            root, "IDPSSODescriptor", idp, WantAuthnRequestsSigned=idp.want_authn_requests_signed
        )
        _build_endpoints(el, "SingleSignOnService", idp.sso_services)
    if entity.sp is not None:
        sp = entity.sp
        if not sp.acs_services:
            raise ValueError("an SP needs at least one AssertionConsumerService")
        el = _build_sso_descriptor(
            root,
            "SPSSODescriptor",
            sp,
            AuthnRequestsSigned=sp.authn_requests_signed,
            WantAssertionsSigned=sp.want_assertions_signed,
        )
        acs = [
            ep if ep.index is not None else Endpoint(ep.binding, ep.location, i, ep.is_default, ep.response_location)
            for i, ep in enumerate(sp.acs_services)
        ]
        _build_endpoints(el, "AssertionConsumerService", acs)
    if sign_key is not None:
        sign_enveloped(root, sign_key)
    return root


# -------------------------------------------------------------------------------------------- parser ---


def _children(parent: etree._Element, local: str) -> list[etree._Element]:
    tag = qname("md", local)
    return [c for c in parent if c.tag == tag]


def _req(el: etree._Element, name: str) -> str:
    value = el.get(name)
    if not value:
        raise MetadataError(f"{etree.QName(el).localname} lacks {name}")
    return value


def _bool(el: etree._Element, name: str) -> bool:
    value = el.get(name, "false")
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise MetadataError(f"{etree.QName(el).localname}/@{name} is not an xs:boolean")


def _time(el: etree._Element, name: str) -> datetime | None:
    value = el.get(name)
    if value is None:
        return None
    try:
        return parse_datetime(value, name)
    except SamlError as exc:
        raise MetadataError(str(exc)) from None


def _parse_endpoints(parent: etree._Element, local: str) -> tuple[Endpoint, ...]:
    result = []
    for el in _children(parent, local):
        raw_index = el.get("index")
        try:
            index = None if raw_index is None else parse_unsigned_short(raw_index, f"{local}/@index")
        except SamlError as exc:
            raise MetadataError(str(exc)) from None
        is_default = None if el.get("isDefault") is None else _bool(el, "isDefault")
        result.append(
            Endpoint(
                binding=_req(el, "Binding"),
                location=_req(el, "Location"),
                index=index,
                is_default=is_default,
                response_location=el.get("ResponseLocation"),
            )
        )
    return tuple(result)


def _parse_keys(parent: etree._Element) -> tuple[KeyDescriptor, ...]:
    result = []
    for kd in _children(parent, "KeyDescriptor"):
        use = kd.get("use")
        if use not in (None, USE_SIGNING, USE_ENCRYPTION):
            raise MetadataError("KeyDescriptor/@use must be signing or encryption")
        infos = [c for c in kd if c.tag == qname("ds", "KeyInfo")]
        if len(infos) != 1:
            raise MetadataError("KeyDescriptor must hold exactly one ds:KeyInfo")
        certs = [
            c
            for data in infos[0].iterchildren(qname("ds", "X509Data"))
            for c in data.iterchildren(qname("ds", "X509Certificate"))
        ]
        if not certs:
            raise MetadataError("KeyDescriptor carries no X509Certificate")
        methods = tuple(_req(m, "Algorithm") for m in _children(kd, "EncryptionMethod"))
        for c in certs:
            try:
                der = base64.b64decode("".join(element_text(c).split()), validate=True)
                cert = x509.load_der_x509_certificate(der)
            except (binascii.Error, ValueError, SamlError):
                raise MetadataError("KeyDescriptor holds an unreadable X509Certificate") from None
            result.append(KeyDescriptor(certificate=cert, use=use, encryption_methods=methods))
    return tuple(result)


def _formats(parent: etree._Element) -> tuple[str, ...]:
    try:
        return tuple(element_text(f) for f in _children(parent, "NameIDFormat"))
    except SamlError as exc:
        raise MetadataError(str(exc)) from None


def _saml2_role(parent: etree._Element, local: str) -> etree._Element | None:
    roles = [
        r for r in _children(parent, local) if PROTOCOL_SAML2 in (r.get("protocolSupportEnumeration") or "").split()
    ]
    if len(roles) > 1:
        raise MetadataError(f"more than one SAML 2.0 {local}")
    return roles[0] if roles else None


def _check_valid(valid_until: datetime | None, now: datetime, what: str) -> None:
    if valid_until is not None and valid_until <= now:
        raise MetadataExpired(f"{what} expired (validUntil lies in the past)")


class _SSODescriptorFields(TypedDict):
    keys: tuple[KeyDescriptor, ...]
    slo_services: tuple[Endpoint, ...]
    name_id_formats: tuple[str, ...]
    valid_until: datetime | None


def _required_endpoints(role: etree._Element, local: str) -> tuple[Endpoint, ...]:
    endpoints = _parse_endpoints(role, local)
    if not endpoints:
        raise MetadataError(f"{etree.QName(role).localname} has no {local}")
    return endpoints


def _parse_sso_descriptor(el: etree._Element, now: datetime) -> _SSODescriptorFields:
    """What an IDP/SPSSODescriptor element has in common (:class:`_SSODescriptor`); expired is refused."""
    fields = _SSODescriptorFields(
        keys=_parse_keys(el),
        slo_services=_parse_endpoints(el, "SingleLogoutService"),
        name_id_formats=_formats(el),
        valid_until=_time(el, "validUntil"),
    )
    _check_valid(fields["valid_until"], now, etree.QName(el).localname)
    return fields


def parse_metadata(
    xml: bytes,
    *,
    trusted: Sequence[x509.Certificate] | None = None,
    require_signature: bool = False,
    now: datetime | None = None,
) -> EntityDescriptor:
    """Parse one md:EntityDescriptor.

    A signature is verified when ``trusted`` is given (and a signed document is then read only through
    the verified element); ``require_signature`` refuses unsigned metadata or a missing trust anchor.
    """
    now = now or datetime.now(UTC)
    root = parse_xml(xml)
    if root.tag != qname("md", "EntityDescriptor"):
        raise MetadataError("metadata root must be md:EntityDescriptor")
    signed = False
    if has_signature(root) and trusted:
        try:
            root = verify_enveloped(root, trusted)
        except SignatureError as exc:
            raise MetadataSignatureInvalid(f"metadata signature does not verify: {exc}") from None
        signed = True
    if require_signature and not signed:
        if not has_signature(root):
            raise MetadataSignatureMissing("metadata is not signed")
        raise MetadataSignatureMissing("metadata is signed but no trusted certificate was given")
    valid_until = _time(root, "validUntil")
    _check_valid(valid_until, now, "metadata")
    cache = root.get("cacheDuration")

    idp = None
    idp_el = _saml2_role(root, "IDPSSODescriptor")
    if idp_el is not None:
        idp = IDPSSODescriptor(
            sso_services=_required_endpoints(idp_el, "SingleSignOnService"),
            want_authn_requests_signed=_bool(idp_el, "WantAuthnRequestsSigned"),
            **_parse_sso_descriptor(idp_el, now),
        )
    sp = None
    sp_el = _saml2_role(root, "SPSSODescriptor")
    if sp_el is not None:
        sp = SPSSODescriptor(
            acs_services=_required_endpoints(sp_el, "AssertionConsumerService"),
            authn_requests_signed=_bool(sp_el, "AuthnRequestsSigned"),
            want_assertions_signed=_bool(sp_el, "WantAssertionsSigned"),
            **_parse_sso_descriptor(sp_el, now),
        )
    if idp is None and sp is None:
        raise MetadataError("metadata describes neither a SAML 2.0 IdP nor SP")
    return EntityDescriptor(
        entity_id=_req(root, "entityID"),
        idp=idp,
        sp=sp,
        valid_until=valid_until,
        cache_duration=None if cache is None else parse_duration(cache),
        id=root.get("ID") or "",
        signed=signed,
    )
