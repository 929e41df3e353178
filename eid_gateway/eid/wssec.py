"""WS-Security for the TR-03130 eID-Interface, both directions (sign what we send, verify what we get).

The layout follows the WSDL's policy: a ``wsse:Security`` header holding a ``wsu:Timestamp`` first and
then one ``ds:Signature`` with exactly two references, the Timestamp and the SOAP Body, each by
``wsu:Id``, exclusive C14N, SHA-256. The signer's X.509 token is never included: ``KeyInfo`` is a
``wsse:SecurityTokenReference`` naming issuer and serial, and the receiver verifies against the one
certificate configured for its peer (the key is never taken from the message).

:func:`verify_envelope` returns the Body element the signature covered; callers read only that element
(it is the Body of this very envelope, checked by identity, so a wrapped copy is never looked at).
The XML-DSig work itself is :func:`saml.dsig.sign_references` / :func:`saml.dsig.verify_references`.
"""

from __future__ import annotations

import copy
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from lxml import etree

from eid_gateway.eid.errors import TimestampError, WsSecurityError
from eid_gateway.eid.messages import SOAP_NS, split_envelope
from saml.algorithms import DEFAULT_POLICY, AlgorithmPolicy
from saml.dsig import DS, WSU, sign_references, verify_references
from saml.errors import SignatureError
from saml.keys import KeyPair
from saml.xml import to_bytes

WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_ID: Final = f"{{{WSU}}}Id"

DEFAULT_TTL: Final = timedelta(minutes=5)
DEFAULT_SKEW: Final = timedelta(minutes=2)
MAX_LIFETIME: Final = timedelta(minutes=30)

_SECURITY: Final = f"{{{WSSE}}}Security"
_TIMESTAMP: Final = f"{{{WSU}}}Timestamp"
_SIGNATURE: Final = f"{{{DS}}}Signature"
_DATETIME_RE: Final = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})")


def _format(moment: datetime) -> str:
    t = moment.astimezone(UTC)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}."
        f"{moment.microsecond // 1000:03d}Z"
    )


def _parse_datetime(text: str, what: str) -> datetime:
    m = _DATETIME_RE.fullmatch(text.strip())
    if m is None:
        raise TimestampError(f"{what} is not an xs:dateTime with a time zone")
    fraction = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.fromisoformat(f"{m.group(1)}.{fraction}{zone}")
    except ValueError:
        raise TimestampError(f"{what} is not a valid date and time") from None


_token_references: dict[bytes, etree._Element] = {}


def _security_token_reference(key: KeyPair) -> etree._Element:
    """``wsse:SecurityTokenReference/ds:X509Data/ds:X509IssuerSerial`` for our certificate.

    Built once per certificate and copied (formatting the issuer name cost more than the ECDSA signature).
    """
    proto = _token_references.get(key.fingerprint)
    if proto is None:
        proto = etree.Element(f"{{{WSSE}}}SecurityTokenReference", nsmap={"wsse": WSSE, "ds": DS})
        data = etree.SubElement(proto, f"{{{DS}}}X509Data")
        serial = etree.SubElement(data, f"{{{DS}}}X509IssuerSerial")
        etree.SubElement(serial, f"{{{DS}}}X509IssuerName").text = key.certificate.issuer.rfc4514_string()
        etree.SubElement(serial, f"{{{DS}}}X509SerialNumber").text = str(key.certificate.serial_number)
        if len(_token_references) > 64:
            _token_references.clear()
        _token_references[key.fingerprint] = proto
    return copy.deepcopy(proto)


def sign_envelope(
    envelope: etree._Element,
    key: KeyPair,
    *,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
    algorithm: str | None = None,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> bytes:
    """Add the Security header (Timestamp, Signature over Timestamp + Body) and serialise.

    ``algorithm`` is the signature method URI (default ecdsa-sha256 / rsa-sha256 by key type; which
    ones a product accepts is in its conformance statement, hence configurable).
    """
    env = split_envelope(envelope)
    header = env.header
    if header is None:
        header = etree.Element(f"{{{SOAP_NS}}}Header")
        envelope.insert(0, header)
    if any(child.tag == _SECURITY for child in header):
        raise WsSecurityError("the envelope is already signed")
    moment = now or datetime.now(UTC)
    security = etree.SubElement(header, _SECURITY, nsmap={"wsse": WSSE, "wsu": WSU})
    security.set(f"{{{SOAP_NS}}}mustUnderstand", "1")
    timestamp = etree.SubElement(security, _TIMESTAMP)
    etree.SubElement(timestamp, f"{{{WSU}}}Created").text = _format(moment)
    etree.SubElement(timestamp, f"{{{WSU}}}Expires").text = _format(moment + ttl)
    sign_references(
        security,
        [(timestamp, f"TS-{secrets.token_hex(16)}"), (env.body, f"Body-{secrets.token_hex(16)}")],
        key,
        id_attr_qname=WSU_ID,
        algorithm=algorithm,
        key_info=_security_token_reference(key),
        policy=policy,
    )
    return to_bytes(envelope)


def _check_timestamp(timestamp: etree._Element, now: datetime, skew: timedelta, max_lifetime: timedelta) -> None:
    children = [c for c in timestamp]
    if len(children) != 2 or children[0].tag != f"{{{WSU}}}Created" or children[1].tag != f"{{{WSU}}}Expires":
        raise WsSecurityError("wsu:Timestamp must hold Created and Expires")
    if any(len(c) for c in children):
        raise WsSecurityError("wsu:Timestamp values must be text")
    created = _parse_datetime(children[0].text or "", "Created")
    expires = _parse_datetime(children[1].text or "", "Expires")
    if expires <= created:
        raise TimestampError("the Timestamp expires before it was created")
    if expires - created > max_lifetime:
        raise TimestampError("the Timestamp is valid for implausibly long")
    if created > now + skew:
        raise TimestampError("the Timestamp was created in the future")
    if expires <= now - skew:
        raise TimestampError("the Timestamp has expired")


def verify_envelope(
    envelope: etree._Element,
    peer_certificate: x509.Certificate,
    *,
    now: datetime | None = None,
    skew: timedelta = DEFAULT_SKEW,
    max_lifetime: timedelta = MAX_LIFETIME,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> etree._Element:
    """Check the WS-Security header of a parsed envelope; return the Body the signature covers.

    Raises :class:`WsSecurityError` (layout, signature; :class:`~saml.errors.SignatureError` details
    are folded in) or :class:`TimestampError`.
    """
    env = split_envelope(envelope)
    if env.header is None:
        raise WsSecurityError("the envelope has no Header, hence no WS-Security")
    securities = [c for c in env.header if c.tag == _SECURITY]
    if len(securities) != 1:
        raise WsSecurityError(f"expected one wsse:Security header, found {len(securities)}")
    items = [c for c in securities[0]]
    if any(not isinstance(c.tag, str) for c in items):
        raise WsSecurityError("unexpected node in wsse:Security")
    if any(c.tag == f"{{{WSSE}}}BinarySecurityToken" for c in items):
        raise WsSecurityError("an included BinarySecurityToken is refused (tokens are never included)")
    if len(items) != 2 or items[0].tag != _TIMESTAMP or items[1].tag != _SIGNATURE:
        raise WsSecurityError("wsse:Security must hold exactly wsu:Timestamp first, then ds:Signature")
    timestamp, signature = items
    if not timestamp.get(WSU_ID) or not env.body.get(WSU_ID):
        raise WsSecurityError("Timestamp and Body must carry a wsu:Id")
    try:
        verify_references(signature, [timestamp, env.body], [peer_certificate], id_attr_qname=WSU_ID, policy=policy)
    except SignatureError as exc:
        raise WsSecurityError(f"WS-Security signature refused: {type(exc).__name__}: {exc}") from None
    # Only after the signature holds is the (now authentic) timestamp worth judging.
    _check_timestamp(timestamp, now or datetime.now(UTC), skew, max_lifetime)
    return env.body
