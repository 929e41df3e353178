"""docs/integrations/attributes.md is the attribute vocabulary (SAML Name <-> OIDC claim) for services;
these tests parse its tables and compare every cell that follows from code with the code's tables, and
its examples with what the two frontends' encoders make of one identity, so the page cannot drift."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from eid_gateway.frontends.oidc.claims import SCOPE_ATTRIBUTES, claim_values
from eid_gateway.frontends.saml_attributes import NAME_FORMAT_URI, released_attributes
from eid_gateway.identity import OIDC_CLAIMS, OIDC_PLACE_MEMBERS, SAML_NAMES, TR03130_NAMES, Attribute, Identity, Place
from eid_gateway.simulator import identities
from helpers.eid_samples import identity_of

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "attributes.md"
PSEUDONYM = "kJ3v0Qm1Yx7sT2bW9pE4hL6nR8cA5dFgZuVoXiMqBtY"

#: The example identity of the page (the simulator's Erika, with the attributes she lacks filled in).
EXAMPLE = identity_of(
    identities.ERIKA,
    restricted_id="never-released",
    artistic_name="ROSIE",
    doctoral_degree="DR.",
    residence_permit="GÜLTIG BIS 2030-01-31",
    age_verification=True,
    place_verification=True,
)


def _table(header_start: str) -> list[list[str]]:
    """The rows of the Markdown table whose header begins with ``header_start`` (cells unquoted)."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows: list[list[str]] = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows.append([c[1:-1] if c.startswith("`") and c.endswith("`") else c for c in cells])
    return rows


def _scope(attribute: Attribute) -> str:
    if attribute is Attribute.PSEUDONYM:
        return "openid"
    scopes = [s for s, attrs in SCOPE_ATTRIBUTES.items() if attribute in attrs]
    return ", ".join(scopes) if scopes else "— (`claims` parameter)"


def test_the_page_lists_every_attribute_with_the_names_the_code_uses() -> None:
    rows = _table("| internal name |")
    assert [r[0] for r in rows] == [a.value for a in Attribute]  # all of them, in the enum's order
    for row in rows:
        attribute = Attribute(row[0])
        assert len(row) == 10, row
        assert row[1] == TR03130_NAMES[attribute]
        assert row[2] == SAML_NAMES[attribute]
        assert row[3] == NAME_FORMAT_URI
        assert row[5] == OIDC_CLAIMS[attribute]
        assert row[6] == _scope(attribute)
        assert row[4] and row[7], f"{attribute.value}: value formats must be described"


def test_the_examples_are_what_the_frontends_send() -> None:
    saml = {a.friendly_name: a.values for a in released_attributes(EXAMPLE, frozenset(Attribute), PSEUDONYM)}
    oidc = claim_values(EXAMPLE, list(Attribute))
    for row in _table("| internal name |"):
        attribute = Attribute(row[0])
        assert (row[8],) == saml[attribute.value], attribute
        expected = PSEUDONYM if attribute is Attribute.PSEUDONYM else oidc[OIDC_CLAIMS[attribute]]
        assert json.loads(row[9]) == expected, attribute


def test_the_place_of_birth_has_one_mapping_for_both_protocols() -> None:
    """The issue's example: SAML ``{"freetext":"BERLIN"}`` and OIDC ``{"locality":"BERLIN"}`` are the same
    card value; the page's place table is the code's mapping."""
    rows = _table("| `Place` part |")
    assert [r[0] for r in rows] == [f.name for f in fields(Place)]
    for part, saml_key, address, birth in rows:
        assert saml_key == part  # SAML's JSON keys are the parts' names
        assert address == OIDC_PLACE_MEMBERS[Attribute.ADDRESS].get(part, "—")
        assert birth == OIDC_PLACE_MEMBERS[Attribute.PLACE_OF_BIRTH].get(part, "—")
    assert claim_values(Identity(place_of_birth=Place(freetext="BERLIN")), [Attribute.PLACE_OF_BIRTH]) == {
        "place_of_birth": {"locality": "BERLIN"}
    }
    assert claim_values(Identity(address=Place(freetext="KEINE HAUPTWOHNUNG IN DEUTSCHLAND")), [Attribute.ADDRESS]) == {
        "address": {"formatted": "KEINE HAUPTWOHNUNG IN DEUTSCHLAND"}
    }
    assert claim_values(Identity(place_of_birth=Place(no_place_info="unbekannt")), [Attribute.PLACE_OF_BIRTH]) == {}


def test_the_keycloak_mapper_table_uses_the_vocabulary() -> None:
    """docs/integrations/keycloak.md (not run in CI) must at least name the attributes as the code does;
    over OIDC only scope claims reach Keycloak (its broker sends no ``claims`` parameter)."""
    page = PAGE.parent / "keycloak.md"
    lines = page.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| internal name | SAML Attribute Name |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().strip("`") for c in line.strip().strip("|").split(" | ")])
    assert [r[0] for r in rows] == [a.value for a in Attribute]
    scoped = frozenset().union(*SCOPE_ATTRIBUTES.values())
    for name, saml_name, claim, _user in rows:
        attribute = Attribute(name)
        assert saml_name == SAML_NAMES[attribute]
        if attribute is Attribute.PSEUDONYM:
            assert claim.startswith(OIDC_CLAIMS[attribute] + "`")
        else:
            assert claim == (OIDC_CLAIMS[attribute] if attribute in scoped else "—"), name
