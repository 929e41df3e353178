"""The sans-I/O pieces: claim values, scope and claims-parameter mapping, PKCE, the language choice."""

from __future__ import annotations

import pytest

from eid_gateway.frontends.oidc.claims import (
    ClaimsParameterError,
    claim_values,
    parse_claims_parameter,
    scope_attributes,
)
from eid_gateway.frontends.oidc.pages import pick_language
from eid_gateway.frontends.oidc.tokens import access_token_hash, pkce_matches
from eid_gateway.identity import OIDC_CLAIMS, Attribute, Identity, PartialDate, Place

from .conftest import ERIKA


def test_every_attribute_has_a_claim_value_mapping() -> None:
    values = claim_values(ERIKA, list(Attribute))
    assert "sub" not in values  # the RestrictedID never becomes a claim
    assert values["birthdate"] == "1964-08-12"
    assert values["nationalities"] == ["D"]
    assert values["place_of_birth"] == {"locality": "BERLIN"}
    assert values["address"]["street_address"] == "HEIDESTRASSE 17"
    assert values["age_verification"] is True
    assert set(values) <= set(OIDC_CLAIMS.values())


def test_partial_dates_and_absent_places() -> None:
    identity = Identity(
        date_of_birth=PartialDate(1970),
        address=Place(no_place_info="keine Hauptwohnung"),
        place_of_birth=Place(city="BONN", country="D"),
    )
    values = claim_values(
        identity, [Attribute.DATE_OF_BIRTH, Attribute.ADDRESS, Attribute.PLACE_OF_BIRTH, Attribute.GIVEN_NAMES]
    )
    assert values == {"birthdate": "1970", "place_of_birth": {"locality": "BONN", "country": "D"}}


def test_scopes_and_claims_parameter() -> None:
    assert scope_attributes(["openid", "profile", "unknown"]) == {
        Attribute.GIVEN_NAMES,
        Attribute.FAMILY_NAMES,
        Attribute.DATE_OF_BIRTH,
    }
    req = parse_claims_parameter(
        '{"id_token": {"birthdate": {"essential": true}, "sub": null, "email": null}, "userinfo": {"address": null}}'
    )
    assert req.id_token == {Attribute.DATE_OF_BIRTH} and req.userinfo == {Attribute.ADDRESS}
    assert req.essential == {Attribute.DATE_OF_BIRTH}
    narrowed = req.within(frozenset({Attribute.ADDRESS}))
    assert narrowed.all == {Attribute.ADDRESS} and narrowed.essential == frozenset()
    for bad in ("x" * 5000, '{"userinfo": {"address": {"essential": "yes"}}}', "null"):
        with pytest.raises(ClaimsParameterError):
            parse_claims_parameter(bad)


def test_pkce_rfc7636_appendix_b_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN")
    assert not pkce_matches("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not pkce_matches(verifier + "\n", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


def test_at_hash_is_left_half_of_sha256() -> None:
    # OIDC Core example (§A.3 style): 22 base64url characters for SHA-256
    value = access_token_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y")
    assert len(value) == 22 and "=" not in value


@pytest.mark.parametrize(
    "locales,negotiated,expected",
    [
        ((), "de", "de"),
        ((), "en", "en"),
        (("en",), "de", "en"),
        (("fr", "en-GB"), "de", "en"),
        (("fr",), "en", "en"),
    ],
)
def test_pick_language(locales: tuple[str, ...], negotiated: str, expected: str) -> None:
    assert pick_language(locales, negotiated) == expected
