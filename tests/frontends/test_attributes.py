"""The documented string forms of attribute values in the AttributeStatement."""

from __future__ import annotations

import pytest

from eid_gateway.frontends.saml_attributes import decode_place, encode_value, released_attributes
from eid_gateway.identity import Attribute, Identity, PartialDate, Place

ERIKA = Identity(
    restricted_id="ab" * 32,
    given_names="ERIKA",
    family_names="MUSTERMANN",
    date_of_birth=PartialDate(1964, 8, 12),
    place_of_birth=Place(freetext="BERLIN"),
    address=Place(street="HEIDESTRASSE 17", city="KÖLN", country="D", zip_code="51147"),
    age_verification=True,
    nationality="D",
)


def test_dates_keep_the_precision_of_the_card() -> None:
    assert encode_value(PartialDate(1964, 8, 12)) == "1964-08-12"
    assert encode_value(PartialDate(1946)) == "1946"
    assert encode_value(PartialDate(1946, 3)) == "1946-03"


def test_places_are_compact_sorted_json_and_round_trip() -> None:
    text = encode_value(ERIKA.address)
    assert text == '{"city":"KÖLN","country":"D","street":"HEIDESTRASSE 17","zip_code":"51147"}'
    assert decode_place(text) == ERIKA.address
    assert encode_value(Place(no_place_info="keine Hauptwohnung in Deutschland")) == (
        '{"no_place_info":"keine Hauptwohnung in Deutschland"}'
    )


def test_decode_place_refuses_what_it_did_not_write() -> None:
    with pytest.raises(ValueError):
        decode_place('["KÖLN"]')
    with pytest.raises(ValueError):
        decode_place('{"town":"KÖLN"}')
    with pytest.raises(ValueError):
        decode_place('{"city":5}')


def test_booleans() -> None:
    assert encode_value(True) == "true" and encode_value(False) == "false"


def test_only_released_attributes_and_the_service_pseudonym() -> None:
    released = frozenset(
        {Attribute.FAMILY_NAMES, Attribute.DATE_OF_BIRTH, Attribute.PSEUDONYM, Attribute.DOCTORAL_DEGREE}
    )
    attrs = released_attributes(ERIKA, released, "pseudo-for-this-service")
    by_name = {a.friendly_name: a.values for a in attrs}
    # doctoral_degree is not on the card: omitted, not sent empty
    assert by_name == {
        "family_names": ("MUSTERMANN",),
        "date_of_birth": ("1964-08-12",),
        "pseudonym": ("pseudo-for-this-service",),
    }
    assert all(a.name == f"urn:eid-gateway:attribute:{a.friendly_name}" for a in attrs)
    assert "ab" * 32 not in repr(attrs)  # the card's RestrictedID never leaves


def test_unknown_value_type_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        encode_value(3.5)
