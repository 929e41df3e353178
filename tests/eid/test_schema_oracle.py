"""Everything our builders and the simulator emit is valid against an independent XSD oracle.

``data/tr03130-messages.xsd`` is written from the protocol notes, not from the Python code, so a
shared misreading (order, optionality, types) between builder and parser would show up here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from eid_gateway.eid import messages, results
from eid_gateway.eid.wssec import sign_envelope, verify_envelope
from eid_gateway.identity import PartialDate, Place
from eid_gateway.simulator import SimulatedEidServer, SimulatorConfig, default_identities
from helpers.eid_samples import PSK
from saml.keys import KeyPair
from saml.xml import parse_xml

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "tr03130-messages.xsd")))
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def assert_valid(el: etree._Element) -> None:
    doc = parse_xml(etree.tostring(el))
    assert SCHEMA.validate(doc), str(SCHEMA.error_log)


def test_oracle_is_not_vacuous() -> None:
    el = messages.build_get_result_request(messages.GetResultRequest("ab" * 16, 1))
    el.append(el[0])  # Session after RequestCounter
    assert not SCHEMA.validate(parse_xml(etree.tostring(el)))


@pytest.mark.parametrize(
    "message",
    [
        messages.UseIDRequest(operations={n: messages.Selection.ALLOWED for n in messages.OPERATION_NAMES}),
        messages.UseIDRequest(operations={}),
        messages.UseIDRequest(
            operations={"GivenNames": messages.Selection.REQUIRED, "AgeVerification": messages.Selection.REQUIRED},
            age=18,
            community_id="02760503150000",
            transaction_info="Antrag",
            transaction_attestation=("urn:x:format", "ctx"),
            level_of_assurance="http://bsi.bund.de/eID/LoA/hoch",
            eid_type={"CardCertified": "ALLOWED", "SEEndorsed": "DENIED"},
            psk=PSK,
        ),
    ],
)
def test_use_id_requests(message: messages.UseIDRequest) -> None:
    assert_valid(messages.build_use_id_request(message))


def test_other_messages() -> None:
    assert_valid(
        messages.build_use_id_response(
            messages.UseIDResponse(messages.Result(results.MAJOR_OK), "ab" * 32, "https://e/paos", PSK)
        )
    )
    assert_valid(messages.build_get_result_request(messages.GetResultRequest("ab" * 32, 2)))
    assert_valid(messages.build_get_server_info_request())
    assert_valid(
        messages.build_get_server_info_response(messages.GetServerInfoResponse("x", 2, 4, None, {"GivenNames": True}))
    )
    assert_valid(
        messages.build_get_result_response(
            messages.GetResultResponse(messages.Result(results.MAJOR_ERROR, results.NO_RESULT_YET, "wait", "de"))
        )
    )


@pytest.mark.parametrize(
    "personal",
    [
        messages.PersonalData(
            document_type="ID", issuing_state="D", date_of_expiry="2029-10-31", given_names="ERIKA",
            family_names="MUSTERMANN", artistic_name="A", academic_title="DR.", date_of_birth=PartialDate(1964, 8, 12),
            place_of_birth=Place(freetext="BERLIN"), nationality="D", birth_name="GABLER",
            place_of_residence=Place(street="S 1", city="KÖLN", state="NRW", country="D", zip_code="51147"),
            community_id="02760503150000", residence_permit_i="x", restricted_id=messages.RestrictedID("ab" * 32, "cd" * 32),
        ),
        messages.PersonalData(date_of_birth=PartialDate(1946), place_of_residence=Place(no_place_info="keine Hauptwohnung")),
        messages.PersonalData(date_of_birth=PartialDate(1946, 1), place_of_birth=Place(city="X", country="AZE")),
    ],
)  # fmt: skip
def test_get_result_responses(personal: messages.PersonalData) -> None:
    assert_valid(
        messages.build_get_result_response(
            messages.GetResultResponse(
                messages.Result(results.MAJOR_OK),
                personal,
                True,
                False,
                {n: messages.Permission.NOTONCHIP for n in messages.OPERATION_NAMES},
                level_of_assurance="http://eidas.europa.eu/LoA/high",
                eid_type_used="HWKeyStore",
            )
        )
    )


@pytest.mark.parametrize("card", sorted(default_identities()))
def test_simulator_outputs(gateway_key: KeyPair, server_key: KeyPair, card: str) -> None:
    core = SimulatedEidServer(SimulatorConfig("https://gw.example", server_key, gateway_key.certificate))
    every = messages.UseIDRequest(
        operations={n: messages.Selection.REQUIRED for n in messages.OPERATION_NAMES}, age=18, community_id="0276"
    )
    answer = core.handle_soap(
        sign_envelope(messages.soap_envelope(messages.build_use_id_request(every)), gateway_key, now=NOW), None, NOW
    )
    use_id = messages.body_payload(verify_envelope(parse_xml(answer.body), server_key.certificate, now=NOW))
    assert_valid(use_id)
    resp = messages.parse_use_id_response(use_id)
    assert resp.psk is not None and resp.session_id is not None
    core.card_step(resp.psk.id, card, "123456", now=NOW)
    request = sign_envelope(
        messages.soap_envelope(messages.build_get_result_request(messages.GetResultRequest(resp.session_id, 1))),
        gateway_key,
        now=NOW,
    )
    answer = core.handle_soap(request, None, NOW)
    assert_valid(messages.body_payload(verify_envelope(parse_xml(answer.body), server_key.certificate, now=NOW)))


def test_error_use_id_response_is_the_known_deviation() -> None:
    """An error useIDResponse carries only Result (the schema would demand Session and PSK even then)."""
    el = messages.build_use_id_response(
        messages.UseIDResponse(messages.Result(results.MAJOR_ERROR, results.INTERNAL_ERROR))
    )
    assert not SCHEMA.validate(parse_xml(etree.tostring(el)))
