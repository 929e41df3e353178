"""The eID application's data groups (TR-03110 part 4 / TR-03127), decoded with pyasn1 into PersonalData.

Each data group is one ASN.1 value under an explicit ``[APPLICATION n]`` tag. Decoding is strict (DER,
no trailing bytes); encoding exists for the card emulator and the AusweisApp simulator files
(``SET_CARD``), so tests put an identity on a card and read the same identity back through EAC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Final

from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, namedtype, tag, univ

from eid_gateway.eid.errors import EidMessageError
from eid_gateway.eid.messages import PersonalData, date_string, parse_lenient_date
from eid_gateway.identity import PartialDate, Place
from tr03110 import tlv


class DataGroupError(ValueError):
    """A data group that does not decode (names no content: personal data stays out of messages)."""


def _app(n: int) -> tag.Tag:
    return tag.Tag(tag.tagClassApplication, tag.tagFormatConstructed, n)


def _ctx(n: int) -> tag.Tag:
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, n)


class _Place(univ.Sequence):  # type: ignore[misc]  # pyasn1 ships no types
    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType("street", char.UTF8String().subtype(explicitTag=_ctx(10))),
        namedtype.OptionalNamedType("city", char.UTF8String().subtype(explicitTag=_ctx(11))),
        namedtype.OptionalNamedType("state", char.UTF8String().subtype(explicitTag=_ctx(12))),
        namedtype.OptionalNamedType("country", char.PrintableString().subtype(explicitTag=_ctx(13))),
        namedtype.OptionalNamedType("zipCode", char.PrintableString().subtype(explicitTag=_ctx(14))),
    )


class _GeneralPlace(univ.Choice):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("structuredPlace", _Place()),
        namedtype.NamedType("freetextPlace", char.UTF8String().subtype(explicitTag=_ctx(1))),
        namedtype.NamedType("noPlaceInfo", char.UTF8String().subtype(explicitTag=_ctx(2))),
    )


class _Text(univ.Choice):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("uncompressed", char.UTF8String().subtype(explicitTag=_ctx(1))),
        namedtype.NamedType("compressed", univ.OctetString().subtype(explicitTag=_ctx(2))),
    )


#: Data group number -> (PersonalData field, ASN.1 type of the value inside [APPLICATION n]).
_SPEC: Final[dict[int, tuple[str, Any]]] = {
    1: ("document_type", char.PrintableString()),
    2: ("issuing_state", char.PrintableString()),
    3: ("date_of_expiry", char.NumericString()),
    4: ("given_names", char.UTF8String()),
    5: ("family_names", char.UTF8String()),
    6: ("artistic_name", char.UTF8String()),
    7: ("academic_title", char.UTF8String()),
    8: ("date_of_birth", char.NumericString()),
    9: ("place_of_birth", _GeneralPlace()),
    10: ("nationality", char.PrintableString()),
    13: ("birth_name", char.UTF8String()),
    17: ("place_of_residence", _GeneralPlace()),
    18: ("community_id", univ.OctetString()),
    19: ("residence_permit_i", _Text()),
}
#: PersonalData field -> data group number.
FIELD_DG: Final[dict[str, int]] = {f: n for n, (f, _) in _SPEC.items()}
_DATE8 = re.compile(r"[0-9]{4}[0-9 ]{4}")


def _wrapped(n: int, inner: Any) -> Any:
    return (
        inner.clone(tagSet=inner.tagSet.tagExplicitly(_app(n)))
        if not isinstance(inner, univ.Choice)
        else inner.subtype(explicitTag=_app(n))
    )


def _place_from(value: Any) -> Place:
    name = value.getName()
    if name == "freetextPlace":
        return Place(freetext=str(value["freetextPlace"]))
    if name == "noPlaceInfo":
        return Place(no_place_info=str(value["noPlaceInfo"]))
    p = value["structuredPlace"]

    def opt(key: str) -> str | None:
        return str(p[key]) if p[key].isValue else None

    return Place(
        street=opt("street"), city=opt("city"), state=opt("state"), country=opt("country"), zip_code=opt("zipCode")
    )


def _iso(value: str) -> str:
    d = parse_lenient_date(value, "date of expiry")
    if d.month is None or d.day is None:
        raise DataGroupError("DG3 date of expiry is incomplete")
    return date(d.year, d.month, d.day).isoformat()


def decode(n: int, data: bytes) -> Any:
    """The value of data group ``n`` as the PersonalData field wants it."""
    if n not in _SPEC:
        raise DataGroupError(f"DG{n} is not supported")
    field, spec = _SPEC[n]
    try:
        value, rest = der_decoder.decode(data, asn1Spec=_wrapped(n, spec))
    except (PyAsn1Error, OverflowError):  # OverflowError: a length field wider than 2**63 (pyasn1#107)
        raise DataGroupError(f"DG{n} does not decode") from None
    if rest:
        raise DataGroupError(f"DG{n} has trailing bytes")
    try:
        if n in (9, 17):
            return _place_from(value)
        if n == 19:
            if value.getName() != "uncompressed":
                raise DataGroupError("DG19 compressed text is not supported")
            return str(value["uncompressed"])
        if n == 18:
            return bytes(value).hex().upper()
        if n == 3:
            return _iso(str(value))
        if n == 8:
            text = str(value)
            if not _DATE8.fullmatch(text):
                raise DataGroupError("DG8 is not a yyyymmdd date")
            return parse_lenient_date(text, "date of birth")
        return str(value)
    except (ValueError, PyAsn1Error, EidMessageError) as exc:  # EidMessageError: a date parse_lenient_date refused
        if isinstance(exc, DataGroupError):
            raise
        raise DataGroupError(f"DG{n} holds an invalid value") from None


def personal_data(groups: dict[int, bytes]) -> PersonalData:
    """PersonalData from read data groups (absent ones stay ``None``)."""
    values = {_SPEC[n][0]: decode(n, raw) for n, raw in groups.items() if n in _SPEC}
    return replace(PersonalData(), **values)


# --- encoding (card emulator, AusweisApp simulator files) ---------------------------------------------


def _place_to(place: Place) -> Any:
    gp = _GeneralPlace()
    if place.freetext is not None:
        gp["freetextPlace"] = place.freetext
    elif place.no_place_info is not None:
        gp["noPlaceInfo"] = place.no_place_info
    else:
        p = _Place()
        for key, value in (
            ("street", place.street),
            ("city", place.city),
            ("state", place.state),
            ("country", place.country),
            ("zipCode", place.zip_code),
        ):
            if value is not None:
                p[key] = value
        gp["structuredPlace"] = p
    return gp


def encode(n: int, value: Any) -> bytes:
    """Data group ``n`` holding ``value`` (the PersonalData field's type)."""
    _, spec = _SPEC[n]
    if n in (9, 17):
        inner: Any = _place_to(value)
    elif n == 19:
        inner = _Text()
        inner["uncompressed"] = value
    elif n == 18:
        inner = univ.OctetString(bytes.fromhex(value))
    elif n == 3:
        inner = char.NumericString(value.replace("-", ""))
    elif n == 8:
        assert isinstance(value, PartialDate)
        inner = char.NumericString(date_string(value))
    else:
        inner = spec.clone(value)
    # The outer [APPLICATION n] is one constructed tag around the DER of the inner value.
    return tlv.encode(0x60 | n, bytes(der_encoder.encode(inner)))


def encode_all(data: PersonalData) -> dict[int, bytes]:
    """Every data group for which ``data`` has a value (RestrictedID is a key, not a file)."""
    return {n: encode(n, getattr(data, f)) for f, n in FIELD_DG.items() if getattr(data, f) is not None}


@dataclass(frozen=True)
class CardFile:
    """One file of a simulated card: file ID, short file ID and content (hex in AusweisApp's SET_CARD)."""

    file_id: bytes
    short_id: int
    content: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "fileId": self.file_id.hex().upper(),
            "shortFileId": f"{self.short_id:02X}",
            "content": self.content.hex().upper(),
        }
