"""The one internal identity model: where frontends (SAML, OIDC) and backends (eID-Servers) meet.

Backends produce an :class:`Identity`; frontends release a subset of it chosen by
:meth:`Identity.minimised` (``eid_gateway.flow.release_identity`` adds the per-service pseudonym).
Attribute names are defined once here, together with their names in the TR-03130 ``UseOperations``
vocabulary, in SAML (``urn:oid`` style names of this gateway) and in OIDC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any


class Attribute(enum.Enum):
    """An attribute a service can be registered for; value = stable config name."""

    DOCUMENT_TYPE = "document_type"
    ISSUING_STATE = "issuing_state"
    DATE_OF_EXPIRY = "date_of_expiry"
    GIVEN_NAMES = "given_names"
    FAMILY_NAMES = "family_names"
    ARTISTIC_NAME = "artistic_name"
    DOCTORAL_DEGREE = "doctoral_degree"
    DATE_OF_BIRTH = "date_of_birth"
    PLACE_OF_BIRTH = "place_of_birth"
    NATIONALITY = "nationality"
    BIRTH_NAME = "birth_name"
    ADDRESS = "address"
    COMMUNITY_ID = "community_id"
    RESIDENCE_PERMIT = "residence_permit"
    PSEUDONYM = "pseudonym"
    AGE_VERIFICATION = "age_verification"
    PLACE_VERIFICATION = "place_verification"


#: Attribute -> TR-03130 UseOperations element name (the 17 names, in schema order).
TR03130_NAMES: dict[Attribute, str] = {
    Attribute.DOCUMENT_TYPE: "DocumentType",
    Attribute.ISSUING_STATE: "IssuingState",
    Attribute.DATE_OF_EXPIRY: "DateOfExpiry",
    Attribute.GIVEN_NAMES: "GivenNames",
    Attribute.FAMILY_NAMES: "FamilyNames",
    Attribute.ARTISTIC_NAME: "ArtisticName",
    Attribute.DOCTORAL_DEGREE: "AcademicTitle",
    Attribute.DATE_OF_BIRTH: "DateOfBirth",
    Attribute.PLACE_OF_BIRTH: "PlaceOfBirth",
    Attribute.NATIONALITY: "Nationality",
    Attribute.BIRTH_NAME: "BirthName",
    Attribute.ADDRESS: "PlaceOfResidence",
    Attribute.COMMUNITY_ID: "CommunityID",
    Attribute.RESIDENCE_PERMIT: "ResidencePermitI",
    Attribute.PSEUDONYM: "RestrictedID",
    Attribute.AGE_VERIFICATION: "AgeVerification",
    Attribute.PLACE_VERIFICATION: "PlaceVerification",
}

#: Attribute -> SAML attribute Name the gateway's IdP frontend emits (NameFormat uri).
SAML_NAMES: dict[Attribute, str] = {a: f"urn:eid-gateway:attribute:{a.value}" for a in Attribute}

#: Attribute -> OIDC claim name.
OIDC_CLAIMS: dict[Attribute, str] = {
    Attribute.DOCUMENT_TYPE: "document_type",
    Attribute.ISSUING_STATE: "issuing_state",
    Attribute.DATE_OF_EXPIRY: "date_of_expiry",
    Attribute.GIVEN_NAMES: "given_name",
    Attribute.FAMILY_NAMES: "family_name",
    Attribute.ARTISTIC_NAME: "artistic_name",
    Attribute.DOCTORAL_DEGREE: "doctoral_degree",
    Attribute.DATE_OF_BIRTH: "birthdate",
    Attribute.PLACE_OF_BIRTH: "place_of_birth",
    Attribute.NATIONALITY: "nationalities",
    Attribute.BIRTH_NAME: "birth_family_name",
    Attribute.ADDRESS: "address",
    Attribute.COMMUNITY_ID: "community_id",
    Attribute.RESIDENCE_PERMIT: "residence_permit",
    Attribute.PSEUDONYM: "sub",
    Attribute.AGE_VERIFICATION: "age_verification",
    Attribute.PLACE_VERIFICATION: "place_verification",
}

#: Attribute -> (:class:`Place` field -> member of the OIDC claim object). SAML writes a place with the
#: field names themselves (see ``frontends.saml_attributes``); OIDC uses the members of Core §5.1.1
#: (``address``) and of OpenID Connect for Identity Assurance (``place_of_birth``). The card's free-text
#: place of birth is the name of the town as printed, hence ``locality``; a free-text address is a whole
#: address, hence ``formatted``. ``no_place_info`` has no OIDC member: the claim is left out.
#: Documented in docs/integrations/attributes.md (checked by tests/frontends/test_attribute_table.py).
OIDC_PLACE_MEMBERS: dict[Attribute, dict[str, str]] = {
    Attribute.ADDRESS: {
        "street": "street_address",
        "city": "locality",
        "state": "region",
        "country": "country",
        "zip_code": "postal_code",
        "freetext": "formatted",
    },
    Attribute.PLACE_OF_BIRTH: {
        "city": "locality",
        "state": "region",
        "country": "country",
        "freetext": "locality",
    },
}


class LevelOfAssurance(enum.Enum):
    """eIDAS level of assurance; the German ID card is ``high``."""

    LOW = "http://eidas.europa.eu/LoA/low"
    SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"
    HIGH = "http://eidas.europa.eu/LoA/high"


@dataclass(frozen=True)
class PartialDate:
    """A date as the card holds it: year always, month and day only where known."""

    year: int
    month: int | None = None
    day: int | None = None

    def iso(self) -> str:
        """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""
        out = f"{self.year:04d}"
        if self.month is not None:
            out += f"-{self.month:02d}"
            if self.day is not None:
                out += f"-{self.day:02d}"
        return out


@dataclass(frozen=True)
class Place:
    """A place from the card: structured, free text, or explicitly absent (``no_place_info``)."""

    street: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    zip_code: str | None = None
    freetext: str | None = None
    no_place_info: str | None = None


@dataclass(frozen=True)
class Identity:
    """What the eID-Server read from the card for one sign-in. ``None`` = not read / not on chip.

    ``restricted_id`` is the card's sector-specific identifier for *this gateway's* authorization
    certificate; services never see it directly but a keyed per-service pseudonym derived from it.
    """

    restricted_id: str | None = None
    document_type: str | None = None
    issuing_state: str | None = None
    date_of_expiry: str | None = None
    given_names: str | None = None
    family_names: str | None = None
    artistic_name: str | None = None
    doctoral_degree: str | None = None
    date_of_birth: PartialDate | None = None
    place_of_birth: Place | None = None
    nationality: str | None = None
    birth_name: str | None = None
    address: Place | None = None
    community_id: str | None = None
    residence_permit: str | None = None
    age_verification: bool | None = None
    place_verification: bool | None = None
    level_of_assurance: LevelOfAssurance = LevelOfAssurance.HIGH
    authenticated_at: datetime | None = None
    not_on_chip: frozenset[Attribute] = field(default_factory=frozenset)

    def value(self, attribute: Attribute) -> object | None:
        """The value behind an :class:`Attribute` (the pseudonym is *not* here: see frontends)."""
        if attribute is Attribute.PSEUDONYM:
            return self.restricted_id
        value: object | None = getattr(self, attribute.value)
        return value

    def minimised(self, allowed: frozenset[Attribute]) -> Identity:
        """A copy holding only ``allowed`` attributes (data minimisation before any frontend)."""
        keep_meta = {"level_of_assurance", "authenticated_at", "not_on_chip"}
        cleared: dict[str, Any] = {
            f.name: None
            for f in fields(self)
            if f.name not in keep_meta
            and not (f.name == "restricted_id" and Attribute.PSEUDONYM in allowed)
            and not (f.name != "restricted_id" and Attribute(f.name) in allowed)
        }
        return replace(self, **cleared)
