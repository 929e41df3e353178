"""The eID-Server's SAML interface (TR-03130 part 1, section 4), sans-I/O: the request extension, the
attributes of the answer, status codes, and the session reference the gateway keeps.

Shared by the gateway's SAML backend and the simulator's SAML interface, so both speak exactly one
profile:

- the AuthnRequest carries ``eid:EncryptedAuthnRequestExtension`` (XML-Enc, AES-GCM + RSA-OAEP, to the
  eID-Server's encryption certificate) around ``eid:AuthnRequestExtension Version="2"`` with
  ``eid:RequestedAttributes`` / ``saml:Attribute Name="GivenNames" eid:RequiredAttribute="true"``; the
  age and place checks carry their argument as the attribute's value;
- the assertion's attributes are named as in TR-03130 (``GivenNames``, ``DateOfBirth``, ...). Values are
  text: names as they are, ``DateOfBirth`` as the 8-character DateString, the checks ``true``/``false``,
  ``RestrictedID`` as hex, ``LevelOfAssurance`` as its URI, and places as a small JSON object with the
  GeneralPlace fields (this gateway's profile: the ``saml`` package reads attribute values as text);
  ``DocumentValidity`` is always present, ``AttributeNotOnChip`` lists what the chip does not hold;
- an error carries the eID-Server's ResultMinor as the StatusMessage.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from lxml import etree

from eid_gateway.eid.errors import EidMessageError
from eid_gateway.eid.messages import (
    EID_NS,
    OPERATION_NAMES,
    PERSONAL_DATA_FIELDS,
    GetResultResponse,
    Permission,
    PersonalData,
    RestrictedID,
    Result,
    Selection,
    UseIDRequest,
    check_community_id,
    date_string,
    parse_lenient_date,
)
from eid_gateway.eid.results import MAJOR_ERROR, MAJOR_OK
from eid_gateway.identity import Place
from saml.messages import STATUS_AUTHN_FAILED, STATUS_RESPONDER, Attribute, Status
from saml.xml import NS

SAML_NS: Final = NS["saml"]
EXTENSION_VERSION: Final = "2"
AUTHN_CONTEXT: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"
DOCUMENT_VALIDITY: Final = "DocumentValidity"
NOT_ON_CHIP: Final = "AttributeNotOnChip"
NAME_FORMAT: Final = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
_PLACE_KEYS: Final = ("street", "city", "state", "country", "zip_code", "freetext", "no_place_info")
_MAX_AGE: Final = 150
_PLACE_FIELDS: Final[dict[str, str]] = {"PlaceOfBirth": "place_of_birth", "PlaceOfResidence": "place_of_residence"}
#: The personal data sent as the text itself; the date of birth and the places have forms of their own.
_STRING_FIELDS: Final[dict[str, str]] = {
    name: field_name
    for name, field_name in PERSONAL_DATA_FIELDS.items()
    if name != "DateOfBirth" and name not in _PLACE_FIELDS
}
_RESULT_NAMES: Final = frozenset({*OPERATION_NAMES, DOCUMENT_VALIDITY, NOT_ON_CHIP, "LevelOfAssurance"})


class SamlInterfaceError(ValueError):
    """A message of the SAML interface does not follow the profile; the text names what is wrong."""


def _e(local: str) -> str:
    return f"{{{EID_NS}}}{local}"


# --- the request extension -------------------------------------------------------------------------------


def build_request_extension(request: UseIDRequest) -> etree._Element:
    """``eid:AuthnRequestExtension`` for what useID would ask (REQUIRED / ALLOWED operations)."""
    root = etree.Element(_e("AuthnRequestExtension"), nsmap={"eid": EID_NS, "saml2": SAML_NS})
    root.set("Version", EXTENSION_VERSION)
    attrs = etree.SubElement(root, _e("RequestedAttributes"))
    for name in OPERATION_NAMES:
        selection = request.selection(name)
        if selection is Selection.PROHIBITED:
            continue
        attr = etree.SubElement(attrs, f"{{{SAML_NS}}}Attribute", Name=name)
        attr.set(_e("RequiredAttribute"), "true" if selection is Selection.REQUIRED else "false")
        argument: str | None = None
        if name == "AgeVerification":
            argument = str(request.age) if request.age is not None else None
        elif name == "PlaceVerification":
            argument = request.community_id
        if argument is not None:
            etree.SubElement(attr, f"{{{SAML_NS}}}AttributeValue").text = argument
    if request.transaction_info is not None:
        etree.SubElement(root, _e("TransactionInfo")).text = request.transaction_info
    if request.level_of_assurance is not None:
        etree.SubElement(root, _e("LevelOfAssurance")).text = request.level_of_assurance
    return root


def parse_request_extension(el: etree._Element) -> UseIDRequest:
    """The useID-equivalent of a (decrypted) ``eid:AuthnRequestExtension``; strict."""
    if el.tag != _e("AuthnRequestExtension") or el.get("Version") != EXTENSION_VERSION:
        raise SamlInterfaceError("not an eid:AuthnRequestExtension of version 2")
    children = [c for c in el if isinstance(c.tag, str)]
    if not children or children[0].tag != _e("RequestedAttributes"):
        raise SamlInterfaceError("RequestedAttributes missing")
    ops: dict[str, Selection] = {}
    age: int | None = None
    community: str | None = None
    for attr in children[0]:
        if not isinstance(attr.tag, str):
            continue
        name = attr.get("Name", "")
        if attr.tag != f"{{{SAML_NS}}}Attribute" or name not in OPERATION_NAMES or name in ops:
            raise SamlInterfaceError(f"unknown or repeated requested attribute {name[:40]!r}")
        required = attr.get(_e("RequiredAttribute"), "true")
        if required not in ("true", "false"):
            raise SamlInterfaceError("RequiredAttribute must be true or false")
        ops[name] = Selection.REQUIRED if required == "true" else Selection.ALLOWED
        values = [v.text or "" for v in attr if v.tag == f"{{{SAML_NS}}}AttributeValue"]
        if name == "AgeVerification":
            # ASCII digits, and few of them: "²".isdigit() is True and int() refuses 5000 digits
            text = values[0] if len(values) == 1 else ""
            if not (text.isascii() and text.isdigit()) or len(text) > 9 or not 0 < int(text) <= _MAX_AGE:
                raise SamlInterfaceError("AgeVerification needs one age as its value")
            age = int(text)
        elif name == "PlaceVerification":
            if len(values) != 1:
                raise SamlInterfaceError("PlaceVerification needs one CommunityID as its value")
            try:
                community = check_community_id(values[0])
            except (ValueError, EidMessageError):
                raise SamlInterfaceError("PlaceVerification value is not a CommunityID") from None
        elif values:
            raise SamlInterfaceError(f"{name} takes no value")
    extra = {c.tag: (c.text or "") for c in children[1:]}
    if set(extra) - {_e("TransactionInfo"), _e("LevelOfAssurance")}:
        raise SamlInterfaceError("unexpected element in AuthnRequestExtension")
    return UseIDRequest(
        operations=ops,
        age=age,
        community_id=community,
        transaction_info=extra.get(_e("TransactionInfo")),
        level_of_assurance=extra.get(_e("LevelOfAssurance")),
    )


def wrap_encrypted(encrypted_data: etree._Element) -> etree._Element:
    """``eid:EncryptedAuthnRequestExtension`` around the ``xenc:EncryptedData`` of the extension."""
    wrapper = etree.Element(_e("EncryptedAuthnRequestExtension"), nsmap={"eid": EID_NS})
    wrapper.append(encrypted_data)
    return wrapper


# --- the answer's attributes -----------------------------------------------------------------------------


def _place_json(place: Place) -> str:
    values = {k: getattr(place, k) for k in _PLACE_KEYS if getattr(place, k) is not None}
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _place(text: str, name: str) -> Place:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested deeper than json's recursion
        raise SamlInterfaceError(f"{name} is not a place object") from None
    if (
        not isinstance(data, dict)
        or not data
        or set(data) - set(_PLACE_KEYS)
        or not all(isinstance(v, str) for v in data.values())
    ):
        raise SamlInterfaceError(f"{name} is not a place object")
    return Place(**data)


def result_attributes(response: GetResultResponse) -> tuple[Attribute, ...]:
    """The attributes of the assertion for a successful result (what the eID-Server SAML answer holds)."""
    out: list[Attribute] = [Attribute(DOCUMENT_VALIDITY, ("valid",), NAME_FORMAT)]
    pd = response.personal_data or PersonalData()
    for name, field_name in _STRING_FIELDS.items():
        value = getattr(pd, field_name)
        if value is not None:
            out.append(Attribute(name, (str(value),), NAME_FORMAT))
    if pd.date_of_birth is not None:
        out.append(Attribute("DateOfBirth", (date_string(pd.date_of_birth),), NAME_FORMAT))
    for name, field_name in _PLACE_FIELDS.items():
        place = getattr(pd, field_name)
        if place is not None:
            out.append(Attribute(name, (_place_json(place),), NAME_FORMAT))
    if pd.restricted_id is not None:
        out.append(Attribute("RestrictedID", (pd.restricted_id.id,), NAME_FORMAT))
    for name, flag in (
        ("AgeVerification", response.fulfils_age_verification),
        ("PlaceVerification", response.fulfils_place_verification),
    ):
        if flag is not None:
            out.append(Attribute(name, ("true" if flag else "false",), NAME_FORMAT))
    if response.level_of_assurance is not None:
        out.append(Attribute("LevelOfAssurance", (response.level_of_assurance,), NAME_FORMAT))
    missing = tuple(n for n, p in (response.operations_allowed_by_user or {}).items() if p is Permission.NOTONCHIP)
    if missing:
        out.append(Attribute(NOT_ON_CHIP, missing, NAME_FORMAT))
    return tuple(out)


def _one(attributes: Mapping[str, list[str]], name: str) -> str | None:
    values = attributes.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise SamlInterfaceError(f"{name} must have exactly one value")
    return values[0]


def result_from_attributes(attributes: Mapping[str, list[str]]) -> GetResultResponse:
    """The getResult equivalent of a verified assertion's attributes (then mapped like TR-03130)."""
    unknown = set(attributes) - _RESULT_NAMES
    if unknown:
        raise SamlInterfaceError(f"unexpected attribute {sorted(unknown)[0][:40]!r}")
    if _one(attributes, DOCUMENT_VALIDITY) != "valid":
        raise SamlInterfaceError("DocumentValidity is missing or not valid")
    fields: dict[str, object] = {}
    for name, field_name in _STRING_FIELDS.items():
        value = _one(attributes, name)
        if value is not None:
            fields[field_name] = value
    if (born := _one(attributes, "DateOfBirth")) is not None:
        try:
            fields["date_of_birth"] = parse_lenient_date(born, "DateOfBirth")
        except (ValueError, EidMessageError):
            raise SamlInterfaceError("DateOfBirth is not a date") from None
    for name, field_name in _PLACE_FIELDS.items():
        if (text := _one(attributes, name)) is not None:
            fields[field_name] = _place(text, name)
    if (rid := _one(attributes, "RestrictedID")) is not None:
        try:
            if not rid or len(bytes.fromhex(rid)) < 16:
                raise ValueError
        except ValueError:
            raise SamlInterfaceError("RestrictedID is not a hex identifier") from None
        fields["restricted_id"] = RestrictedID(rid.upper())
    flags: dict[str, bool | None] = {}
    for name in ("AgeVerification", "PlaceVerification"):
        value = _one(attributes, name)
        if value not in (None, "true", "false"):
            raise SamlInterfaceError(f"{name} must be true or false")
        flags[name] = None if value is None else value == "true"
    ops: dict[str, Permission] = {}
    for name in attributes.get(NOT_ON_CHIP, []):
        if name not in OPERATION_NAMES:
            raise SamlInterfaceError("AttributeNotOnChip names an unknown attribute")
        ops[name] = Permission.NOTONCHIP
    return GetResultResponse(
        Result(MAJOR_OK),
        personal_data=PersonalData(**fields),  # type: ignore[arg-type]
        fulfils_age_verification=flags["AgeVerification"],
        fulfils_place_verification=flags["PlaceVerification"],
        operations_allowed_by_user=ops or None,
        level_of_assurance=_one(attributes, "LevelOfAssurance"),
    )


# --- status ------------------------------------------------------------------------------------------------


def error_status(minor: str | None) -> Status:
    """The SAML status of a failed card step / session: Responder + AuthnFailed, ResultMinor as message."""
    return Status(STATUS_RESPONDER, STATUS_AUTHN_FAILED, minor)


def result_minor_of(status: Status) -> str | None:
    """The ResultMinor an error status carries (its message), if it looks like one."""
    message = (status.message or "").strip()
    return message if message.startswith("http://www.bsi.bund.de/") else None


def error_result(status: Status) -> Result:
    return Result(MAJOR_ERROR, result_minor_of(status))


# --- what the gateway keeps of a session -------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRef:
    """The eID-Server's session as the gateway stores it (in ``EidSession.session_id``): its
    SessionIdentifier, where the result is fetched (the TC Token's RefreshAddress) and the ID of our
    AuthnRequest (the answer's InResponseTo must name it)."""

    session_identifier: str
    refresh_address: str
    request_id: str

    PREFIX = "saml1."

    def encode(self) -> str:
        data = json.dumps([self.session_identifier, self.refresh_address, self.request_id], separators=(",", ":"))
        return self.PREFIX + base64.urlsafe_b64encode(data.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, value: str) -> SessionRef:
        if not value.startswith(cls.PREFIX):
            raise SamlInterfaceError("not a SAML-interface session reference")
        raw = value[len(cls.PREFIX) :]
        try:
            data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, binascii.Error):
            raise SamlInterfaceError("unreadable session reference") from None
        if not (isinstance(data, list) and len(data) == 3 and all(isinstance(v, str) and v for v in data)):
            raise SamlInterfaceError("unreadable session reference")
        return cls(data[0], data[1], data[2])
