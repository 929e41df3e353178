"""The DCQL query asks for the service's registered claims only (eid_gateway/wallet/dcql.py, pid.py)."""

from __future__ import annotations

import pytest

from eid_gateway.identity import Attribute
from eid_gateway.wallet.dcql import dcql_query
from eid_gateway.wallet.pid import NOT_IN_PID, PID_CLAIMS

VCT = ["urn:eudi:pid:1", "urn:eudi:pid:de:1"]


def _paths(query: dict) -> list[list[str]]:
    (credential,) = query["credentials"]
    return [c["path"] for c in credential.get("claims", [])]


def test_the_query_names_the_pid_format_and_the_accepted_types() -> None:
    query = dcql_query(frozenset({Attribute.FAMILY_NAMES}), minimum_age=None, vct_values=VCT, query_id="q1")
    (credential,) = query["credentials"]
    assert credential["id"] == "q1" and credential["format"] == "dc+sd-jwt"
    assert credential["meta"] == {"vct_values": VCT}
    assert _paths(query) == [["family_name"]]


def test_only_the_registered_attributes_are_asked_for() -> None:
    asked = frozenset({Attribute.GIVEN_NAMES, Attribute.DATE_OF_BIRTH, Attribute.ADDRESS})
    assert _paths(dcql_query(asked, minimum_age=None, vct_values=VCT)) == [["given_name"], ["birthdate"], ["address"]]


def test_every_pid_attribute_maps_to_its_rulebook_claim() -> None:
    everything = frozenset(Attribute)
    paths = _paths(dcql_query(everything, minimum_age=18, vct_values=VCT))
    assert paths == [
        ["given_name"],
        ["family_name"],
        ["birthdate"],
        ["place_of_birth"],
        ["nationalities"],
        ["birth_family_name"],
        ["address"],
        ["issuing_country"],
        ["date_of_expiry"],
        ["age_equal_or_over", "18"],
    ]
    assert Attribute.ARTISTIC_NAME in NOT_IN_PID and Attribute.PSEUDONYM not in NOT_IN_PID
    assert NOT_IN_PID.isdisjoint(PID_CLAIMS)


def test_a_minimum_age_asks_for_that_age_over_claim_only() -> None:
    assert _paths(dcql_query(frozenset(), minimum_age=16, vct_values=VCT)) == [["age_equal_or_over", "16"]]
    # registered for the age check but no age given: nothing to ask (as the card: no age, no answer)
    assert _paths(dcql_query(frozenset({Attribute.AGE_VERIFICATION}), minimum_age=None, vct_values=VCT)) == []


def test_a_pseudonym_only_service_asks_for_no_claim_at_all() -> None:
    (credential,) = dcql_query(frozenset({Attribute.PSEUDONYM}), minimum_age=None, vct_values=VCT)["credentials"]
    assert "claims" not in credential  # OpenID4VP 1.0 §6.1: no selectively disclosable claim is released


def test_no_accepted_type_or_an_absurd_age_is_refused() -> None:
    with pytest.raises(ValueError):
        dcql_query(frozenset(), minimum_age=None, vct_values=[])
    with pytest.raises(ValueError):
        dcql_query(frozenset(), minimum_age=0, vct_values=VCT)
