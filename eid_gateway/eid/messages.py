"""TR-03130 eID-Interface messages (SOAP 1.1, document/literal): dataclasses, builders and parsers.

Sans-I/O: builders return lxml elements (the payload that goes into a SOAP Body), parsers take the one
payload element of a Body that WS-Security has verified (see :mod:`eid_gateway.eid.wssec`) and return
dataclasses. Parsing is strict about structure (schema order, no unknown or repeated elements, no stray
text) and about value types, and tolerant exactly where deployed eID-Servers deviate: partial dates and
dates with a time-zone offset, whitespace around URIs, ``LevelOfAssuranceResponse`` for
``LevelOfAssuranceResult``, unqualified ``ResultMajor`` children, and error responses without the
Session / PSK the schema would demand.

Reused from :mod:`eid_gateway.identity`: :class:`PartialDate` models ``GeneralDate`` and :class:`Place`
models ``GeneralPlace`` (one of structured / free text / no place info).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from lxml import etree

from eid_gateway.eid.errors import (
    InvalidValueError,
    MissingElementError,
    NotSoapError,
    SoapFaultError,
    UnexpectedElementError,
)
from eid_gateway.eid.results import MAJOR_OK, MAJORS, NO_RESULT_YET
from eid_gateway.identity import LevelOfAssurance, PartialDate, Place

SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
EID_NS: Final = "http://bsi.bund.de/eID/"
DSS_NS: Final = "urn:oasis:names:tc:dss:1.0:core:schema"
XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"
WSU_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

SOAP_ACTION_USE_ID: Final = "http://bsi.bund.de/eID/useID"
SOAP_ACTION_GET_RESULT: Final = "http://bsi.bund.de/eID/getResult"
SOAP_ACTION_GET_SERVER_INFO: Final = "http://bsi.bund.de/eID/getServerInfo"
SOAP_CONTENT_TYPE: Final = "text/xml; charset=utf-8"

#: The 17 ``UseOperations`` / ``OperationsAllowedByUser`` children, in schema order.
OPERATION_NAMES: Final[tuple[str, ...]] = (
    "DocumentType",
    "IssuingState",
    "DateOfExpiry",
    "GivenNames",
    "FamilyNames",
    "ArtisticName",
    "AcademicTitle",
    "DateOfBirth",
    "PlaceOfBirth",
    "Nationality",
    "BirthName",
    "PlaceOfResidence",
    "CommunityID",
    "ResidencePermitI",
    "RestrictedID",
    "AgeVerification",
    "PlaceVerification",
)

#: ``EIDTypeRequest`` / ``EIDTypeResponse`` children, in schema order.
EID_TYPE_NAMES: Final[tuple[str, ...]] = ("CardCertified", "SECertified", "SEEndorsed", "HWKeyStore")

#: Accepted LevelOfAssurance URIs (national German spelling and eIDAS).
LOA_URIS: Final = frozenset(
    {
        "http://bsi.bund.de/eID/LoA/normal",
        "http://bsi.bund.de/eID/LoA/substantiell",
        "http://bsi.bund.de/eID/LoA/hoch",
        "http://bsi.bund.de/eID/LoA/undefined",
        "http://eidas.europa.eu/LoA/low",
        "http://eidas.europa.eu/LoA/substantial",
        "http://eidas.europa.eu/LoA/high",
    }
)

COMMUNITY_ID_RE: Final = re.compile(r"[0][0-9]{3}([0-9]{2}([0][0-9]([0-9]{2}([0][0-9]{3})?)?)?)?")
_DOCUMENT_TYPE_RE: Final = re.compile(r"[A-Z ]{2}")
_ICAO_RE: Final = re.compile(r"[A-Z ]{1,3}")
_HEX_RE: Final = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_DATE_STRING_RE: Final = re.compile(r"[0-9 ]{8}")
_ISO_DATE_RE: Final = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:Z|[+-](?:0\d|1[0-4]):[0-5]\d)?")
_INT_RE: Final = re.compile(r"[+-]?\d{1,9}")


class Selection(enum.Enum):
    """``AttributeRequestType``: what useID asks for one attribute."""

    REQUIRED = "REQUIRED"
    ALLOWED = "ALLOWED"
    PROHIBITED = "PROHIBITED"


class Permission(enum.Enum):
    """``AttributeResponseType``: what the citizen released (or the chip does not hold)."""

    ALLOWED = "ALLOWED"
    PROHIBITED = "PROHIBITED"
    NOTONCHIP = "NOTONCHIP"


# --- dataclasses ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """OASIS DSS ``Result``."""

    major: str
    minor: str | None = None
    message: str | None = None
    message_lang: str = "en"

    @property
    def ok(self) -> bool:
        return self.major == MAJOR_OK

    @property
    def no_result_yet(self) -> bool:
        return self.minor == NO_RESULT_YET


@dataclass(frozen=True)
class Psk:
    """``PreSharedKeyType``: ``id`` (>= 16 characters) names the PSK ``key`` (hex, >= 16 octets)."""

    id: str
    key: str


@dataclass(frozen=True)
class UseIDRequest:
    """useID: which attributes to read and which checks to run. Missing operations are PROHIBITED."""

    operations: Mapping[str, Selection]
    age: int | None = None
    community_id: str | None = None
    transaction_info: str | None = None
    transaction_attestation: tuple[str, str] | None = None  # (format URI, context)
    level_of_assurance: str | None = None
    eid_type: Mapping[str, str] | None = None  # EID_TYPE_NAMES -> ALLOWED | DENIED
    psk: Psk | None = None

    def selection(self, name: str) -> Selection:
        return self.operations.get(name, Selection.PROHIBITED)


@dataclass(frozen=True)
class UseIDResponse:
    """useIDResponse. ``session_id`` and ``psk`` are only guaranteed when ``result.ok``."""

    result: Result
    session_id: str | None = None
    ecard_server_address: str | None = None
    psk: Psk | None = None


@dataclass(frozen=True)
class GetResultRequest:
    session_id: str
    request_counter: int


@dataclass(frozen=True)
class RestrictedID:
    """The card's sector-specific identifier(s), hex (upper case)."""

    id: str
    id2: str | None = None


@dataclass(frozen=True)
class PersonalData:
    """``PersonalDataType``; every field optional. Dates of expiry are ISO strings (maybe partial)."""

    document_type: str | None = None
    issuing_state: str | None = None
    date_of_expiry: str | None = None
    given_names: str | None = None
    family_names: str | None = None
    artistic_name: str | None = None
    academic_title: str | None = None
    date_of_birth: PartialDate | None = None
    place_of_birth: Place | None = None
    nationality: str | None = None
    birth_name: str | None = None
    place_of_residence: Place | None = None
    community_id: str | None = None
    residence_permit_i: str | None = None
    restricted_id: RestrictedID | None = None


#: ``UseOperations`` name -> the :class:`PersonalData` field it releases, for the operations whose value is
#: read from a data group (not the two checks, not RestrictedID, which has a type of its own).
PERSONAL_DATA_FIELDS: Final[Mapping[str, str]] = {
    "DocumentType": "document_type",
    "IssuingState": "issuing_state",
    "DateOfExpiry": "date_of_expiry",
    "GivenNames": "given_names",
    "FamilyNames": "family_names",
    "ArtisticName": "artistic_name",
    "AcademicTitle": "academic_title",
    "DateOfBirth": "date_of_birth",
    "PlaceOfBirth": "place_of_birth",
    "Nationality": "nationality",
    "BirthName": "birth_name",
    "PlaceOfResidence": "place_of_residence",
    "CommunityID": "community_id",
    "ResidencePermitI": "residence_permit_i",
}


@dataclass(frozen=True)
class GetResultResponse:
    result: Result
    personal_data: PersonalData | None = None
    fulfils_age_verification: bool | None = None
    fulfils_place_verification: bool | None = None
    operations_allowed_by_user: Mapping[str, Permission] | None = None
    transaction_attestation_format: str | None = None
    level_of_assurance: str | None = None
    eid_type_used: str | None = None

    @classmethod
    def card_read(
        cls,
        personal_data: PersonalData,
        operations: Mapping[str, Permission],
        *,
        age: bool | None,
        place: bool | None,
    ) -> GetResultResponse:
        """The answer of an eID-Server that read the card: ResultMajor ok, what the citizen released, the
        two checks, and level of assurance high (the German ID card)."""
        return cls(
            Result(MAJOR_OK),
            personal_data=personal_data,
            fulfils_age_verification=age,
            fulfils_place_verification=place,
            operations_allowed_by_user=operations,
            level_of_assurance=LevelOfAssurance.HIGH.value,
        )


@dataclass(frozen=True)
class GetServerInfoRequest:
    """getServerInfoRequest has no content."""


@dataclass(frozen=True)
class GetServerInfoResponse:
    version_string: str
    major: int
    minor: int
    bugfix: int | None = None
    rights: Mapping[str, bool] = field(default_factory=dict)  # OPERATION_NAMES -> ALLOWED?


@dataclass(frozen=True)
class SoapEnvelope:
    """The parts of a parsed SOAP 1.1 envelope."""

    envelope: etree._Element
    header: etree._Element | None
    body: etree._Element


Request = UseIDRequest | GetResultRequest | GetServerInfoRequest


# --- small helpers ---------------------------------------------------------------------------------------


def _e(local: str) -> str:
    return f"{{{EID_NS}}}{local}"


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _sub(parent: etree._Element, local: str, text: str | None = None, ns: str = EID_NS) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{local}")
    if text is not None:
        el.text = text
    return el


def _root(local: str) -> etree._Element:
    return etree.Element(_e(local), nsmap={"eid": EID_NS, "dss": DSS_NS})


class _Cursor:
    """Walks the element children of ``parent`` in schema order; anything left over is an error."""

    def __init__(self, parent: etree._Element, ns: str | None = EID_NS):
        if (parent.text or "").strip():
            raise UnexpectedElementError(f"text content inside {_local(parent)}")
        self.parent = parent
        self.ns = ns
        self.items: list[etree._Element] = []
        for child in parent:
            if not isinstance(child.tag, str):
                raise UnexpectedElementError(f"non-element node inside {_local(parent)}")
            if (child.tail or "").strip():
                raise UnexpectedElementError(f"text content inside {_local(parent)}")
            self.items.append(child)
        self.pos = 0

    def _matches(self, el: etree._Element, local: str, alt_ns: tuple[str | None, ...]) -> bool:
        # Split the Clark tag by hand: building an etree.QName per child was most of a message's parse.
        tag = el.tag
        assert isinstance(tag, str)  # __init__ keeps elements only
        if tag[:1] == "{":
            namespace, _, name = tag[1:].partition("}")
            return name == local and (namespace == self.ns or namespace in alt_ns)
        return tag == local and (self.ns is None or None in alt_ns)

    def opt(self, local: str, *alt_ns: str | None) -> etree._Element | None:
        if self.pos < len(self.items) and self._matches(self.items[self.pos], local, alt_ns):
            self.pos += 1
            return self.items[self.pos - 1]
        return None

    def req(self, local: str, *alt_ns: str | None) -> etree._Element:
        el = self.opt(local, *alt_ns)
        if el is None:
            raise MissingElementError(f"{_local(self.parent)} lacks {local}")
        return el

    def end(self) -> None:
        if self.pos < len(self.items):
            raise UnexpectedElementError(f"unexpected element {_local(self.items[self.pos])} in {_local(self.parent)}")


def _text(el: etree._Element) -> str:
    """The whole text of a simple-typed element (child elements refused, so nothing gets split)."""
    if len(el):
        raise UnexpectedElementError(f"{_local(el)} must not contain elements")
    return el.text or ""


def _token(el: etree._Element) -> str:
    """Text of a simple type with whiteSpace=collapse (anyURI, enumerations, numbers, booleans, dates)."""
    return " ".join(_text(el).split())


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if pattern.fullmatch(value) is None:
        raise InvalidValueError(f"{what} does not match its schema pattern")
    return value


def _hex(value: str, what: str, min_octets: int = 0) -> str:
    if not value or _HEX_RE.fullmatch(value) is None or len(value) < 2 * min_octets:
        raise InvalidValueError(f"{what} is not hexBinary of at least {min_octets} octets")
    return value


def _int(el: etree._Element) -> int:
    value = _token(el)
    if _INT_RE.fullmatch(value) is None:
        raise InvalidValueError(f"{_local(el)} is not an int")
    return int(value)


def _bool(el: etree._Element) -> bool:
    value = _token(el)
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidValueError(f"{_local(el)} is not a boolean")


def _enum(el: etree._Element, allowed: frozenset[str] | set[str], default: str | None = None) -> str:
    value = _token(el)
    if not value and default is not None:
        return default
    if value not in allowed:
        raise InvalidValueError(f"{_local(el)} has a value outside its enumeration")
    return value


def _loa(el: etree._Element) -> str:
    return _enum(el, LOA_URIS)


def check_community_id(value: str) -> str:
    """A CommunityID (AGS-like key) as the schema's pattern allows it."""
    return _check(COMMUNITY_ID_RE, value, "CommunityID")


def check_session_id(value: str) -> str:
    """Session/ID: hexBinary of at least 16 octets."""
    return _hex(value, "Session ID", 16)


def _check_psk(psk: Psk) -> Psk:
    if len(psk.id) < 16:
        raise InvalidValueError("PSK ID is shorter than 16 characters")
    _hex(psk.key, "PSK Key", 16)
    return psk


# --- dates --------------------------------------------------------------------------------------------


def _partial(year: int, month: int | None, day: int | None, what: str) -> PartialDate:
    if month is None and day is not None:
        raise InvalidValueError(f"{what} has a day but no month")
    if month is not None and not 1 <= month <= 12:
        raise InvalidValueError(f"{what} has an invalid month")
    if month is not None and day is not None:
        try:
            date(year, month, day)
        except ValueError:
            raise InvalidValueError(f"{what} is not a calendar date") from None
    return PartialDate(year, month, day)


def parse_lenient_date(value: str, what: str = "date") -> PartialDate:
    """``yyyymmdd`` (spaces for unknown parts), ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` with an optional
    time-zone suffix (``Z``, ``+02:00``), which is dropped: a birth date has no time zone."""
    if len(value) == 8 and _DATE_STRING_RE.fullmatch(value):
        year_s, month_s, day_s = value[:4], value[4:6], value[6:8]
        if not year_s.isdigit():
            raise InvalidValueError(f"{what} has no year")
        parts: list[int | None] = []
        for piece in (month_s, day_s):
            if piece.strip() == "" or piece == "00":  # unknown on the card (spaces; some servers write 00)
                parts.append(None)
            elif piece.isdigit():
                parts.append(int(piece))
            else:
                raise InvalidValueError(f"{what} is not a date string")
        return _partial(int(year_s), parts[0], parts[1], what)
    m = _ISO_DATE_RE.fullmatch(value.strip())
    if m is None:
        raise InvalidValueError(f"{what} is not a date")
    return _partial(
        int(m.group(1)),
        int(m.group(2)) if m.group(2) else None,
        int(m.group(3)) if m.group(3) else None,
        what,
    )


def date_string(value: PartialDate) -> str:
    """GeneralDate/DateString: eight characters, spaces where the card holds no month / day."""
    month = f"{value.month:02d}" if value.month is not None else "  "
    day = f"{value.day:02d}" if value.day is not None else "  "
    return f"{value.year:04d}{month}{day}"


def _complete(value: PartialDate) -> bool:
    return value.month is not None and value.day is not None


# --- Result -------------------------------------------------------------------------------------------


def _build_result(parent: etree._Element, result: Result) -> None:
    el = _sub(parent, "Result", ns=DSS_NS)
    _sub(el, "ResultMajor", result.major, ns=DSS_NS)
    if result.minor is not None:
        _sub(el, "ResultMinor", result.minor, ns=DSS_NS)
    if result.message is not None:
        msg = _sub(el, "ResultMessage", result.message, ns=DSS_NS)
        msg.set(XML_LANG, result.message_lang)


def _parse_result(el: etree._Element) -> Result:
    # BSI's samples write the children without a namespace: accepted, never emitted.
    cur = _Cursor(el, DSS_NS)
    major = _enum(cur.req("ResultMajor", None), MAJORS)
    minor_el = cur.opt("ResultMinor", None)
    minor = _token(minor_el) if minor_el is not None else None
    msg_el = cur.opt("ResultMessage", None)
    cur.end()
    message = _text(msg_el) if msg_el is not None else None
    lang = (msg_el.get(XML_LANG) if msg_el is not None else None) or "en"
    return Result(major, minor or None, message, lang)


def _result_el(cur: _Cursor) -> Result:
    el = cur.opt("Result", DSS_NS)
    if el is None:
        cur.end()  # something else stands where Result belongs: name it
        raise MissingElementError(f"{_local(cur.parent)} lacks dss:Result")
    return _parse_result(el)


# --- PSK, Session ---------------------------------------------------------------------------------------


def _build_psk(parent: etree._Element, psk: Psk) -> None:
    _check_psk(psk)
    el = _sub(parent, "PSK")
    _sub(el, "ID", psk.id)
    _sub(el, "Key", psk.key)


def _parse_psk(el: etree._Element) -> Psk:
    cur = _Cursor(el)
    psk = Psk(_text(cur.req("ID")), _token(cur.req("Key")))
    cur.end()
    return _check_psk(psk)


def _build_session(parent: etree._Element, session_id: str) -> None:
    _sub(_sub(parent, "Session"), "ID", check_session_id(session_id))


def _parse_session(el: etree._Element) -> str:
    cur = _Cursor(el)
    value = _token(cur.req("ID"))
    cur.end()
    return check_session_id(value)


# --- useID ----------------------------------------------------------------------------------------------


def build_use_id_request(req: UseIDRequest) -> etree._Element:
    """The ``eid:useIDRequest`` payload; all 17 UseOperations written, in schema order."""
    unknown = set(req.operations) - set(OPERATION_NAMES)
    if unknown:
        raise InvalidValueError("unknown UseOperations name")
    root = _root("useIDRequest")
    ops = _sub(root, "UseOperations")
    for name in OPERATION_NAMES:
        _sub(ops, name, req.selection(name).value)
    if req.age is not None:
        if req.age < 0:
            raise InvalidValueError("Age must not be negative")
        _sub(_sub(root, "AgeVerificationRequest"), "Age", str(req.age))
    if req.community_id is not None:
        _sub(_sub(root, "PlaceVerificationRequest"), "CommunityID", check_community_id(req.community_id))
    if req.transaction_info is not None:
        _sub(root, "TransactionInfo", req.transaction_info)
    if req.transaction_attestation is not None:
        ta = _sub(root, "TransactionAttestationRequest")
        _sub(ta, "TransactionAttestationFormat", req.transaction_attestation[0])
        _sub(ta, "TransactionContext", req.transaction_attestation[1])
    if req.level_of_assurance is not None:
        if req.level_of_assurance not in LOA_URIS:
            raise InvalidValueError("unknown LevelOfAssurance")
        _sub(root, "LevelOfAssuranceRequest", req.level_of_assurance)
    if req.eid_type is not None:
        et = _sub(root, "EIDTypeRequest")
        for name in EID_TYPE_NAMES:
            if name in req.eid_type:
                if req.eid_type[name] not in ("ALLOWED", "DENIED"):
                    raise InvalidValueError("EIDTypeRequest value must be ALLOWED or DENIED")
                _sub(et, name, req.eid_type[name])
    if req.psk is not None:
        _build_psk(root, req.psk)
    return root


def _parse_operations(el: etree._Element) -> dict[str, Selection]:
    cur = _Cursor(el)
    allowed = {s.value for s in Selection}
    out = {name: Selection(_enum(cur.req(name), allowed, Selection.PROHIBITED.value)) for name in OPERATION_NAMES}
    cur.end()
    return out


def parse_use_id_request(el: etree._Element) -> UseIDRequest:
    _expect(el, "useIDRequest")
    cur = _Cursor(el)
    operations = _parse_operations(cur.req("UseOperations"))
    age: int | None = None
    if (av := cur.opt("AgeVerificationRequest")) is not None:
        c = _Cursor(av)
        age = _int(c.req("Age"))
        c.end()
        if age < 0:
            raise InvalidValueError("Age must not be negative")
    community: str | None = None
    if (pv := cur.opt("PlaceVerificationRequest")) is not None:
        c = _Cursor(pv)
        community = check_community_id(_token(c.req("CommunityID")))
        c.end()
    ti = cur.opt("TransactionInfo")
    attestation: tuple[str, str] | None = None
    if (ta := cur.opt("TransactionAttestationRequest")) is not None:
        c = _Cursor(ta)
        attestation = (_token(c.req("TransactionAttestationFormat")), _text(c.req("TransactionContext")))
        c.end()
    loa_el = cur.opt("LevelOfAssuranceRequest")
    eid_type: dict[str, str] | None = None
    if (et := cur.opt("EIDTypeRequest")) is not None:
        c = _Cursor(et)
        eid_type = {}
        for name in EID_TYPE_NAMES:
            if (item := c.opt(name)) is not None:
                eid_type[name] = _enum(item, {"ALLOWED", "DENIED"})
        c.end()
    psk_el = cur.opt("PSK")
    cur.end()
    return UseIDRequest(
        operations=operations,
        age=age,
        community_id=community,
        transaction_info=_text(ti) if ti is not None else None,
        transaction_attestation=attestation,
        level_of_assurance=_loa(loa_el) if loa_el is not None else None,
        eid_type=eid_type,
        psk=_parse_psk(psk_el) if psk_el is not None else None,
    )


def build_use_id_response(resp: UseIDResponse) -> etree._Element:
    root = _root("useIDResponse")
    if resp.session_id is not None:
        _build_session(root, resp.session_id)
    if resp.ecard_server_address is not None:
        _sub(root, "eCardServerAddress", resp.ecard_server_address)
    if resp.psk is not None:
        _build_psk(root, resp.psk)
    _build_result(root, resp.result)
    return root


def parse_use_id_response(el: etree._Element) -> UseIDResponse:
    _expect(el, "useIDResponse")
    cur = _Cursor(el)
    session_el = cur.opt("Session")
    address_el = cur.opt("eCardServerAddress")
    psk_el = cur.opt("PSK")
    result = _result_el(cur)
    cur.end()
    if result.ok and (session_el is None or psk_el is None):
        raise MissingElementError("useIDResponse with result ok lacks Session or PSK")
    return UseIDResponse(
        result=result,
        session_id=_parse_session(session_el) if session_el is not None else None,
        ecard_server_address=_token(address_el) if address_el is not None else None,
        psk=_parse_psk(psk_el) if psk_el is not None else None,
    )


# --- getResult --------------------------------------------------------------------------------------------


def build_get_result_request(req: GetResultRequest) -> etree._Element:
    root = _root("getResultRequest")
    _build_session(root, req.session_id)
    _sub(root, "RequestCounter", str(req.request_counter))
    return root


def parse_get_result_request(el: etree._Element) -> GetResultRequest:
    _expect(el, "getResultRequest")
    cur = _Cursor(el)
    session_id = _parse_session(cur.req("Session"))
    counter = _int(cur.req("RequestCounter"))
    cur.end()
    return GetResultRequest(session_id, counter)


def _build_place(parent: etree._Element, local: str, place: Place) -> None:
    el = _sub(parent, local)
    kinds = sum(
        1
        for present in (
            place.city is not None or place.country is not None,
            place.freetext is not None,
            place.no_place_info is not None,
        )
        if present
    )
    if kinds != 1:
        raise InvalidValueError(f"{local} must be exactly one of structured, free text or no place info")
    if place.freetext is not None:
        _sub(el, "FreetextPlace", place.freetext)
    elif place.no_place_info is not None:
        _sub(el, "NoPlaceInfo", place.no_place_info)
    else:
        if place.city is None or place.country is None:
            raise InvalidValueError(f"{local}: a structured place needs City and Country")
        sp = _sub(el, "StructuredPlace")
        if place.street is not None:
            _sub(sp, "Street", place.street)
        _sub(sp, "City", place.city)
        if place.state is not None:
            _sub(sp, "State", place.state)
        _sub(sp, "Country", _check(_ICAO_RE, place.country, "Country"))
        if place.zip_code is not None:
            _sub(sp, "ZipCode", place.zip_code)


def _parse_place(el: etree._Element) -> Place:
    cur = _Cursor(el)
    if (sp := cur.opt("StructuredPlace")) is not None:
        cur.end()
        c = _Cursor(sp)
        street = c.opt("Street")
        city = c.req("City")
        state = c.opt("State")
        country = c.req("Country")
        zip_code = c.opt("ZipCode")
        c.end()
        return Place(
            street=_text(street) if street is not None else None,
            city=_text(city),
            state=_text(state) if state is not None else None,
            country=_check(_ICAO_RE, _token(country), "Country"),
            zip_code=_text(zip_code) if zip_code is not None else None,
        )
    if (ft := cur.opt("FreetextPlace")) is not None:
        cur.end()
        return Place(freetext=_text(ft))
    if (npi := cur.opt("NoPlaceInfo")) is not None:
        cur.end()
        return Place(no_place_info=_text(npi))
    cur.end()
    raise MissingElementError(f"{_local(el)} holds none of StructuredPlace, FreetextPlace, NoPlaceInfo")


def _build_date(parent: etree._Element, local: str, value: PartialDate) -> None:
    _partial(value.year, value.month, value.day, local)
    el = _sub(parent, local)
    _sub(el, "DateString", date_string(value))
    if _complete(value):
        _sub(el, "DateValue", value.iso())


def _parse_date(el: etree._Element) -> PartialDate:
    cur = _Cursor(el)
    ds = cur.req("DateString")
    dv = cur.opt("DateValue")
    cur.end()
    raw = _text(ds)
    value = parse_lenient_date(raw if len(raw) == 8 else raw.strip(), _local(el))
    if dv is not None:
        full = parse_lenient_date(_token(dv), _local(el))
        if full != value:
            raise InvalidValueError(f"{_local(el)}: DateString and DateValue disagree")
    return value


def _build_personal_data(parent: etree._Element, pd: PersonalData) -> None:
    el = _sub(parent, "PersonalData")
    if pd.document_type is not None:
        _sub(el, "DocumentType", _check(_DOCUMENT_TYPE_RE, pd.document_type, "DocumentType"))
    if pd.issuing_state is not None:
        _sub(el, "IssuingState", _check(_ICAO_RE, pd.issuing_state, "IssuingState"))
    if pd.date_of_expiry is not None:
        parse_lenient_date(pd.date_of_expiry, "DateOfExpiry")
        _sub(el, "DateOfExpiry", pd.date_of_expiry)
    for local, value in (
        ("GivenNames", pd.given_names),
        ("FamilyNames", pd.family_names),
        ("ArtisticName", pd.artistic_name),
        ("AcademicTitle", pd.academic_title),
    ):
        if value is not None:
            _sub(el, local, value)
    if pd.date_of_birth is not None:
        _build_date(el, "DateOfBirth", pd.date_of_birth)
    if pd.place_of_birth is not None:
        _build_place(el, "PlaceOfBirth", pd.place_of_birth)
    if pd.nationality is not None:
        _sub(el, "Nationality", _check(_ICAO_RE, pd.nationality, "Nationality"))
    if pd.birth_name is not None:
        _sub(el, "BirthName", pd.birth_name)
    if pd.place_of_residence is not None:
        _build_place(el, "PlaceOfResidence", pd.place_of_residence)
    if pd.community_id is not None:
        _sub(el, "CommunityID", check_community_id(pd.community_id))
    if pd.residence_permit_i is not None:
        _sub(el, "ResidencePermitI", pd.residence_permit_i)
    if pd.restricted_id is not None:
        rid = _sub(el, "RestrictedID")
        _sub(rid, "ID", _hex(pd.restricted_id.id, "RestrictedID").upper())
        if pd.restricted_id.id2 is not None:
            _sub(rid, "ID2", _hex(pd.restricted_id.id2, "RestrictedID ID2").upper())


def _opt_text(el: etree._Element | None) -> str | None:
    return _text(el) if el is not None else None


def _parse_personal_data(el: etree._Element) -> PersonalData:
    cur = _Cursor(el)
    doc_type = cur.opt("DocumentType")
    issuing = cur.opt("IssuingState")
    expiry = cur.opt("DateOfExpiry")
    given = cur.opt("GivenNames")
    family = cur.opt("FamilyNames")
    artistic = cur.opt("ArtisticName")
    title = cur.opt("AcademicTitle")
    dob = cur.opt("DateOfBirth")
    pob = cur.opt("PlaceOfBirth")
    nationality = cur.opt("Nationality")
    birth_name = cur.opt("BirthName")
    residence = cur.opt("PlaceOfResidence")
    community = cur.opt("CommunityID")
    permit = cur.opt("ResidencePermitI")
    rid_el = cur.opt("RestrictedID")
    cur.end()
    rid: RestrictedID | None = None
    if rid_el is not None:
        c = _Cursor(rid_el)
        id1 = _hex(_token(c.req("ID")), "RestrictedID").upper()
        id2_el = c.opt("ID2")
        c.end()
        rid = RestrictedID(id1, _hex(_token(id2_el), "RestrictedID ID2").upper() if id2_el is not None else None)
    return PersonalData(
        document_type=_check(_DOCUMENT_TYPE_RE, _text(doc_type), "DocumentType") if doc_type is not None else None,
        issuing_state=_check(_ICAO_RE, _token(issuing), "IssuingState") if issuing is not None else None,
        date_of_expiry=parse_lenient_date(_token(expiry), "DateOfExpiry").iso() if expiry is not None else None,
        given_names=_opt_text(given),
        family_names=_opt_text(family),
        artistic_name=_opt_text(artistic),
        academic_title=_opt_text(title),
        date_of_birth=_parse_date(dob) if dob is not None else None,
        place_of_birth=_parse_place(pob) if pob is not None else None,
        nationality=_check(_ICAO_RE, _token(nationality), "Nationality") if nationality is not None else None,
        birth_name=_opt_text(birth_name),
        place_of_residence=_parse_place(residence) if residence is not None else None,
        community_id=check_community_id(_token(community)) if community is not None else None,
        residence_permit_i=_opt_text(permit),
        restricted_id=rid,
    )


def _build_fulfils(parent: etree._Element, local: str, value: bool) -> None:
    _sub(_sub(parent, local), "FulfilsRequest", "true" if value else "false")


def _parse_fulfils(el: etree._Element) -> bool:
    cur = _Cursor(el)
    value = _bool(cur.req("FulfilsRequest"))
    cur.end()
    return value


def build_get_result_response(resp: GetResultResponse) -> etree._Element:
    root = _root("getResultResponse")
    if resp.personal_data is not None:
        _build_personal_data(root, resp.personal_data)
    if resp.fulfils_age_verification is not None:
        _build_fulfils(root, "FulfilsAgeVerification", resp.fulfils_age_verification)
    if resp.fulfils_place_verification is not None:
        _build_fulfils(root, "FulfilsPlaceVerification", resp.fulfils_place_verification)
    if resp.operations_allowed_by_user is not None:
        ops = _sub(root, "OperationsAllowedByUser")
        for name in OPERATION_NAMES:
            _sub(ops, name, resp.operations_allowed_by_user.get(name, Permission.PROHIBITED).value)
    if resp.level_of_assurance is not None:
        if resp.level_of_assurance not in LOA_URIS:
            raise InvalidValueError("unknown LevelOfAssurance")
        _sub(root, "LevelOfAssuranceResult", resp.level_of_assurance)
    if resp.eid_type_used is not None:
        if resp.eid_type_used not in EID_TYPE_NAMES:
            raise InvalidValueError("unknown EIDType")
        _sub(_sub(root, "EIDTypeResponse"), resp.eid_type_used, "USED")
    _build_result(root, resp.result)
    return root


def parse_get_result_response(el: etree._Element) -> GetResultResponse:
    _expect(el, "getResultResponse")
    cur = _Cursor(el)
    pd = cur.opt("PersonalData")
    age = cur.opt("FulfilsAgeVerification")
    place = cur.opt("FulfilsPlaceVerification")
    ops_el = cur.opt("OperationsAllowedByUser")
    ta_format: str | None = None
    if (ta := cur.opt("TransactionAttestationResponse")) is not None:
        c = _Cursor(ta)
        ta_format = _token(c.req("TransactionAttestationFormat"))
        c.req("TransactionAttestationData")  # dss:AnyType, not interpreted: the gateway never asks for it
        c.end()
    # BSI's sample names it LevelOfAssuranceResponse; the schema says LevelOfAssuranceResult.
    loa_el = cur.opt("LevelOfAssuranceResult")
    if loa_el is None:
        loa_el = cur.opt("LevelOfAssuranceResponse")
    eid_type: str | None = None
    if (et := cur.opt("EIDTypeResponse")) is not None:
        c = _Cursor(et)
        for name in EID_TYPE_NAMES:
            if (item := c.opt(name)) is not None:
                _enum(item, {"USED"})
                eid_type = name
                break
        c.end()
        if eid_type is None:
            raise MissingElementError("EIDTypeResponse is empty")
    result = _result_el(cur)
    cur.end()
    ops: dict[str, Permission] | None = None
    if ops_el is not None:
        c = _Cursor(ops_el)
        allowed = {p.value for p in Permission}
        ops = {name: Permission(_enum(c.req(name), allowed, Permission.PROHIBITED.value)) for name in OPERATION_NAMES}
        c.end()
    return GetResultResponse(
        result=result,
        personal_data=_parse_personal_data(pd) if pd is not None else None,
        fulfils_age_verification=_parse_fulfils(age) if age is not None else None,
        fulfils_place_verification=_parse_fulfils(place) if place is not None else None,
        operations_allowed_by_user=ops,
        transaction_attestation_format=ta_format,
        level_of_assurance=_loa(loa_el) if loa_el is not None else None,
        eid_type_used=eid_type,
    )


# --- getServerInfo ------------------------------------------------------------------------------------


def build_get_server_info_request(_: GetServerInfoRequest | None = None) -> etree._Element:
    return _root("getServerInfoRequest")


def parse_get_server_info_request(el: etree._Element) -> GetServerInfoRequest:
    _expect(el, "getServerInfoRequest")
    _Cursor(el).end()
    return GetServerInfoRequest()


def build_get_server_info_response(resp: GetServerInfoResponse) -> etree._Element:
    root = _root("getServerInfoResponse")
    version = _sub(root, "ServerVersion")
    _sub(version, "VersionString", resp.version_string)
    _sub(version, "Major", str(resp.major))
    _sub(version, "Minor", str(resp.minor))
    if resp.bugfix is not None:
        _sub(version, "Bugfix", str(resp.bugfix))
    rights = _sub(root, "DocumentVerificationRights")
    for name in OPERATION_NAMES:
        _sub(rights, name, "ALLOWED" if resp.rights.get(name, False) else "PROHIBITED")
    return root


def parse_get_server_info_response(el: etree._Element) -> GetServerInfoResponse:
    _expect(el, "getServerInfoResponse")
    cur = _Cursor(el)
    version = _Cursor(cur.req("ServerVersion"))
    rights_el = cur.req("DocumentVerificationRights")
    cur.end()
    version_string = _text(version.req("VersionString"))
    major = _int(version.req("Major"))
    minor = _int(version.req("Minor"))
    bugfix_el = version.opt("Bugfix")
    version.end()
    c = _Cursor(rights_el)
    rights = {
        name: _enum(c.req(name), {"ALLOWED", "PROHIBITED"}, "PROHIBITED") == "ALLOWED" for name in OPERATION_NAMES
    }
    c.end()
    return GetServerInfoResponse(
        version_string, major, minor, _int(bugfix_el) if bugfix_el is not None else None, rights
    )


# --- requests by payload ------------------------------------------------------------------------------


def _expect(el: etree._Element, local: str) -> None:
    if el.tag != _e(local):
        raise UnexpectedElementError(f"expected eid:{local}, got {_local(el)}")


#: soapAction of each request payload.
SOAP_ACTIONS: Final[dict[str, str]] = {
    "useIDRequest": SOAP_ACTION_USE_ID,
    "getResultRequest": SOAP_ACTION_GET_RESULT,
    "getServerInfoRequest": SOAP_ACTION_GET_SERVER_INFO,
}


def parse_request(el: etree._Element) -> Request:
    """Any of the three request payloads (the server side dispatches on the result's type)."""
    if el.tag == _e("useIDRequest"):
        return parse_use_id_request(el)
    if el.tag == _e("getResultRequest"):
        return parse_get_result_request(el)
    if el.tag == _e("getServerInfoRequest"):
        return parse_get_server_info_request(el)
    raise UnexpectedElementError(f"{_local(el)} is not a TR-03130 request")


# --- SOAP envelope and faults ------------------------------------------------------------------------------


def soap_envelope(payload: etree._Element) -> etree._Element:
    """``soapenv:Envelope`` with an (empty) Header and a Body holding ``payload``."""
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soapenv": SOAP_NS, "wsu": WSU_NS})
    etree.SubElement(env, f"{{{SOAP_NS}}}Header")
    body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
    body.append(payload)
    return env


def split_envelope(root: etree._Element) -> SoapEnvelope:
    """Check the SOAP 1.1 frame: Envelope, optional Header, Body, nothing else."""
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise NotSoapError("root is not a SOAP 1.1 Envelope")
    children = [c for c in root if isinstance(c.tag, str)]
    if (root.text or "").strip() or any((c.tail or "").strip() for c in root):
        raise NotSoapError("text content inside the Envelope")
    header: etree._Element | None = None
    if children and children[0].tag == f"{{{SOAP_NS}}}Header":
        header = children.pop(0)
    if len(children) != 1 or children[0].tag != f"{{{SOAP_NS}}}Body":
        raise NotSoapError("the Envelope must hold exactly one Body after an optional Header")
    return SoapEnvelope(root, header, children[0])


def body_payload(body: etree._Element) -> etree._Element:
    """The one payload element of a Body; a SOAP Fault raises :class:`SoapFaultError`."""
    if (body.text or "").strip():
        raise NotSoapError("text content inside the Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1 or any((c.tail or "").strip() for c in body):
        raise NotSoapError("the Body must hold exactly one element")
    payload = children[0]
    if payload.tag == f"{{{SOAP_NS}}}Fault":
        code = payload.find("faultcode")
        string = payload.find("faultstring")
        raise SoapFaultError(
            " ".join((code.text or "").split()) if code is not None else "",
            (string.text or "") if string is not None else "",
        )
    return payload


def build_fault(faultcode: str, faultstring: str) -> etree._Element:
    """A SOAP 1.1 Fault envelope (``soapenv:Client`` / ``soapenv:Server``)."""
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soapenv": SOAP_NS})
    body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = faultcode
    etree.SubElement(fault, "faultstring").text = faultstring
    return env
