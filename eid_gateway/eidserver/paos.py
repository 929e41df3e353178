"""PAOS messages between eID-Client and eID-Server (BSI TR-03112-7, ISO/IEC 24727-3), sans-I/O.

The client POSTs (``application/vnd.paos+xml``) and every HTTP response carries the server's next
request: StartPAOS -> DIDAuthenticate(EAC1) -> DIDAuthenticateResponse -> DIDAuthenticate(EAC2) ->
DIDAuthenticateResponse -> Transmit -> TransmitResponse ... -> StartPAOSResponse. Messages are SOAP 1.1
with WS-Addressing ``MessageID`` / ``RelatesTo`` in the header. Parsing goes through the project's one
hardened parser and is strict about the parts we use; unknown elements elsewhere are ignored, as the
client does.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Final

from lxml import etree

from eid_gateway.eid import results
from saml.errors import XmlSecurityError
from saml.xml import parse_xml

SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
ISO_NS: Final = "urn:iso:std:iso-iec:24727:tech:schema"
DSS_NS: Final = "urn:oasis:names:tc:dss:1.0:core:schema"
WSA_NS: Final = "http://www.w3.org/2005/03/addressing"
PAOS_NS: Final = "urn:liberty:paos:2006-08"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"
ECARD_PROFILE: Final = "http://www.bsi.bund.de/ecard/api/1.1"
EAC_PROTOCOL: Final = "urn:oid:1.3.162.15480.3.0.14.2"
CONTENT_TYPE: Final = "application/vnd.paos+xml"
#: The eID application's identifier (CardApplication in a ConnectionHandle).
EID_APPLICATION: Final = "E80704007F00070302"
MAX_PAOS_BYTES: Final = 256 * 1024
_NSMAP: Final = {"soap": SOAP_NS, "iso": ISO_NS, "dss": DSS_NS, "wsa": WSA_NS, "paos": PAOS_NS, "xsi": XSI_NS}
_HEX = re.compile(r"[0-9A-Fa-f]*")


class PaosError(ValueError):
    """A PAOS message that cannot be used (not XML, not SOAP, unexpected type, bad value)."""


# --- what the client sends ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FromClient:
    """The WS-Addressing header of every client message: its ``MessageID``, and the ``RelatesTo`` that
    :func:`parse` fills in (keyword-only, so that each message's own fields keep their positions)."""

    message_id: str | None
    relates_to: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class StartPaos(_FromClient):
    session_identifier: str
    slot_handle: str | None
    user_agent: str | None


@dataclass(frozen=True)
class ClientResult:
    major: str
    minor: str | None = None

    @property
    def ok(self) -> bool:
        return self.major == results.MAJOR_OK


@dataclass(frozen=True)
class _ClientOutput(_FromClient):
    """The client's answer to a request of the server, with the ``dss:Result`` of what it did."""

    result: ClientResult


@dataclass(frozen=True)
class Eac1Output(_ClientOutput):
    chat: bytes | None = None
    car: tuple[str, ...] = ()
    ef_card_access: bytes = b""
    id_picc: bytes = b""
    challenge: bytes = b""


@dataclass(frozen=True)
class Eac2Output(_ClientOutput):
    ef_card_security: bytes = b""
    authentication_token: bytes = b""
    nonce: bytes = b""


@dataclass(frozen=True)
class TransmitOutput(_ClientOutput):
    apdus: tuple[bytes, ...] = ()


ClientMessage = StartPaos | Eac1Output | Eac2Output | TransmitOutput


# --- what the server sends ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Eac1Input:
    certificates: tuple[bytes, ...]
    certificate_description: bytes
    required_chat: bytes
    optional_chat: bytes | None = None
    auxiliary_data: bytes | None = None
    transaction_info: str | None = None


@dataclass(frozen=True)
class Eac2Input:
    ephemeral_public_key: bytes
    signature: bytes
    certificates: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class TransmitInput:
    apdus: tuple[bytes, ...]
    acceptable: tuple[tuple[str, ...], ...] = field(default=())


@dataclass(frozen=True)
class StartPaosResponse:
    result: ClientResult


ServerMessage = Eac1Input | Eac2Input | TransmitInput | StartPaosResponse


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def _hex_of(data: bytes) -> str:
    return data.hex().upper()


def _sub(parent: etree._Element, local: str, text: str | None = None, ns: str = ISO_NS) -> etree._Element:
    el = etree.SubElement(parent, _q(ns, local))
    if text is not None:
        el.text = text
    return el


def build(
    message: ServerMessage, *, relates_to: str | None, slot_handle: str | None = None, message_id: str | None = None
) -> bytes:
    """One server message as a SOAP envelope (UTF-8 bytes)."""
    env = etree.Element(_q(SOAP_NS, "Envelope"), nsmap=_NSMAP)
    header = _sub(env, "Header", ns=SOAP_NS)
    if relates_to is not None:
        _sub(header, "RelatesTo", relates_to, WSA_NS)
    _sub(header, "MessageID", message_id or f"urn:uuid:{uuid.uuid4()}", WSA_NS)
    body = _sub(env, "Body", ns=SOAP_NS)
    if isinstance(message, (Eac1Input, Eac2Input)):
        did = _sub(body, "DIDAuthenticate")
        handle = _sub(did, "ConnectionHandle")
        handle.set(_q(XSI_NS, "type"), "iso:ConnectionHandleType")
        _sub(handle, "CardApplication", EID_APPLICATION)
        if slot_handle is not None:
            _sub(handle, "SlotHandle", slot_handle)
        _sub(did, "DIDName", "PIN")
        apd = _sub(did, "AuthenticationProtocolData")
        apd.set("Protocol", EAC_PROTOCOL)
        if isinstance(message, Eac1Input):
            apd.set(_q(XSI_NS, "type"), "iso:EAC1InputType")
            for cert in message.certificates:
                _sub(apd, "Certificate", _hex_of(cert))
            _sub(apd, "CertificateDescription", _hex_of(message.certificate_description))
            _sub(apd, "RequiredCHAT", _hex_of(message.required_chat))
            if message.optional_chat is not None:
                _sub(apd, "OptionalCHAT", _hex_of(message.optional_chat))
            if message.auxiliary_data is not None:
                _sub(apd, "AuthenticatedAuxiliaryData", _hex_of(message.auxiliary_data))
            if message.transaction_info is not None:
                _sub(apd, "TransactionInfo", message.transaction_info)
        else:
            apd.set(_q(XSI_NS, "type"), "iso:EAC2InputType")
            for cert in message.certificates:
                _sub(apd, "Certificate", _hex_of(cert))
            _sub(apd, "EphemeralPublicKey", _hex_of(message.ephemeral_public_key))
            _sub(apd, "Signature", _hex_of(message.signature))
    elif isinstance(message, TransmitInput):
        tr = _sub(body, "Transmit")
        _sub(tr, "SlotHandle", slot_handle or "00")
        for i, apdu in enumerate(message.apdus):
            info = _sub(tr, "InputAPDUInfo")
            _sub(info, "InputAPDU", _hex_of(apdu))
            if i < len(message.acceptable):
                for code in message.acceptable[i]:
                    _sub(info, "AcceptableStatusCode", code)
    else:
        resp = _sub(body, "StartPAOSResponse")
        resp.set("Profile", ECARD_PROFILE)
        res = _sub(resp, "Result", ns=DSS_NS)
        _sub(res, "ResultMajor", message.result.major, DSS_NS)
        if message.result.minor is not None:
            _sub(res, "ResultMinor", message.result.minor, DSS_NS)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


# --- parsing --------------------------------------------------------------------------------------------


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _child(parent: etree._Element, local: str) -> etree._Element | None:
    found = [c for c in parent if _local(c) == local]
    if len(found) > 1:
        raise PaosError(f"{local} appears more than once")
    return found[0] if found else None


def _text(parent: etree._Element, local: str, *, required: bool = True) -> str | None:
    el = _child(parent, local)
    if el is None:
        if required:
            raise PaosError(f"{local} is missing")
        return None
    return (el.text or "").strip()


def _hex(parent: etree._Element, local: str, *, required: bool = True) -> bytes | None:
    value = _text(parent, local, required=required)
    if value is None:
        return None
    if len(value) % 2 or not _HEX.fullmatch(value):
        raise PaosError(f"{local} is not hexadecimal")
    return bytes.fromhex(value)


def _result(parent: etree._Element) -> ClientResult:
    el = _child(parent, "Result")
    if el is None or etree.QName(el).namespace != DSS_NS:
        raise PaosError("dss:Result is missing")
    major = _text(el, "ResultMajor")
    assert major is not None
    if major not in results.MAJORS:
        raise PaosError("unknown ResultMajor")
    return ClientResult(major, _text(el, "ResultMinor", required=False) or None)


def parse(data: bytes) -> ClientMessage:
    """A client message; raises :class:`PaosError`."""
    message, relates_to = _parse(data)
    return replace(message, relates_to=relates_to)


def _parse(data: bytes) -> tuple[ClientMessage, str | None]:
    try:
        root = parse_xml(data, max_bytes=MAX_PAOS_BYTES)
    except XmlSecurityError as exc:
        raise PaosError(f"not acceptable XML: {exc}") from None
    if root.tag != _q(SOAP_NS, "Envelope"):
        raise PaosError("not a SOAP 1.1 envelope")
    header = _child(root, "Header")
    body = _child(root, "Body")
    if body is None:
        raise PaosError("SOAP Body is missing")
    message_id = relates_to = None
    if header is not None:
        mid = _child(header, "MessageID")
        message_id = (mid.text or "").strip() if mid is not None else None
        rel = _child(header, "RelatesTo")
        relates_to = (rel.text or "").strip() if rel is not None else None
    payload = [c for c in body if isinstance(c.tag, str)]
    if len(payload) != 1 or etree.QName(payload[0]).namespace != ISO_NS:
        raise PaosError("the Body must hold exactly one ISO 24727 message")
    msg = payload[0]
    name = _local(msg)
    if name == "StartPAOS":
        sid = _text(msg, "SessionIdentifier")
        assert sid is not None
        handle = _child(msg, "ConnectionHandle")
        slot = _text(handle, "SlotHandle", required=False) if handle is not None else None
        ua = _child(msg, "UserAgent")
        agent = None
        if ua is not None:
            agent = " ".join(
                filter(
                    None,
                    (_text(ua, n, required=False) for n in ("Name", "VersionMajor", "VersionMinor", "VersionSubminor")),
                )
            )
        return (StartPaos(message_id, sid, slot, agent), relates_to)
    if name == "DIDAuthenticateResponse":
        result = _result(msg)
        apd = _child(msg, "AuthenticationProtocolData")
        if apd is None:
            if result.ok:
                raise PaosError("AuthenticationProtocolData is missing")
            return (Eac1Output(message_id, result), relates_to)
        kind = apd.get(_q(XSI_NS, "type"), "")
        if kind.endswith("EAC1OutputType"):
            if not result.ok:
                return (Eac1Output(message_id, result), relates_to)
            cars = tuple((c.text or "").strip() for c in apd if _local(c) == "CertificationAuthorityReference")
            return (
                Eac1Output(
                    message_id,
                    result,
                    _hex(apd, "CertificateHolderAuthorizationTemplate", required=False),
                    cars,
                    _hex(apd, "EFCardAccess") or b"",
                    _hex(apd, "IDPICC") or b"",
                    _hex(apd, "Challenge") or b"",
                ),
                relates_to,
            )
        if kind.endswith("EAC2OutputType"):
            if not result.ok:
                return (Eac2Output(message_id, result), relates_to)
            return (
                Eac2Output(
                    message_id,
                    result,
                    _hex(apd, "EFCardSecurity") or b"",
                    _hex(apd, "AuthenticationToken") or b"",
                    _hex(apd, "Nonce") or b"",
                ),
                relates_to,
            )
        if not result.ok:
            return (Eac1Output(message_id, result), relates_to)
        raise PaosError("unknown AuthenticationProtocolData type")
    if name == "TransmitResponse":
        result = _result(msg)
        apdus = []
        for c in msg:
            if _local(c) == "OutputAPDU":
                value = (c.text or "").strip()
                if len(value) % 2 or not _HEX.fullmatch(value):
                    raise PaosError("OutputAPDU is not hexadecimal")
                apdus.append(bytes.fromhex(value))
        return (TransmitOutput(message_id, result, tuple(apdus)), relates_to)
    raise PaosError(f"unexpected client message {name}")
