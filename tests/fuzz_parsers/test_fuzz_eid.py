"""Fuzzing the TR-03130 / TR-03124 parsers (SOAP messages, WS-Security, TC Token): only their declared
error types may come out. Seeds are built by the project's own message builders."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from lxml import etree

from eid_gateway.eid import messages, results
from eid_gateway.eid.errors import EidMessageError, TcTokenError, TimestampError, WsSecurityError
from eid_gateway.eid.tctoken import ErrorTcToken, TcToken, build_error_tc_token, build_tc_token, parse_tc_token
from eid_gateway.eid.wssec import _parse_datetime, sign_envelope, verify_envelope
from eid_gateway.identity import PartialDate, Place
from helpers.eid_samples import ERIKA_RESULT, PSK, SESSION_ID, TC_TOKEN, USE_ID_REQUEST
from saml.errors import XmlSecurityError
from saml.keys import KeyPair, generate_key_pair
from saml.xml import parse_xml, to_bytes

from .mutate import binary_mutants, fuzz, xml_mutants

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
E = "{http://bsi.bund.de/eID/}"


def _payloads() -> list[etree._Element]:
    return [
        messages.build_use_id_request(
            replace(
                USE_ID_REQUEST,
                operations={**USE_ID_REQUEST.operations, "PlaceVerification": messages.Selection.REQUIRED},
                transaction_attestation=("http://bsi.bund.de/eID/ExampleAttestationFormat", "ctx"),
                eid_type={"CardCertified": "ALLOWED"},
            )
        ),
        messages.build_use_id_response(
            messages.UseIDResponse(messages.Result(results.MAJOR_OK), SESSION_ID, "https://eid.example/paos", PSK)
        ),
        messages.build_use_id_response(
            messages.UseIDResponse(messages.Result(results.MAJOR_ERROR, results.TOO_MANY_OPEN_SESSIONS, "busy", "de"))
        ),
        messages.build_get_result_request(messages.GetResultRequest(SESSION_ID, 7)),
        messages.build_get_result_response(
            replace(ERIKA_RESULT, transaction_attestation_format="http://bsi.bund.de/eID/ExampleAttestationFormat")
        ),
        messages.build_get_result_response(
            messages.GetResultResponse(
                messages.Result(results.MAJOR_OK),
                messages.PersonalData(
                    date_of_birth=PartialDate(1964, None, None), place_of_birth=Place(no_place_info="unbekannt")
                ),
            )
        ),
        messages.build_get_server_info_request(),
        messages.build_get_server_info_response(
            messages.GetServerInfoResponse("Version 2.4.0", 2, 4, 0, {"GivenNames": True})
        ),
    ]


def _receive(data: bytes) -> object:
    """What both ends do with a SOAP message after WS-Security: frame, payload, typed parse."""
    payload = messages.body_payload(messages.split_envelope(parse_xml(data)).body)
    if payload.tag == f"{E}useIDResponse":
        return messages.parse_use_id_response(payload)
    if payload.tag == f"{E}getResultResponse":
        return messages.parse_get_result_response(payload)
    if payload.tag == f"{E}getServerInfoResponse":
        return messages.parse_get_server_info_response(payload)
    return messages.parse_request(payload)


def test_soap_messages() -> None:
    samples = [to_bytes(messages.soap_envelope(p)) for p in _payloads()] + [
        to_bytes(messages.build_fault("soapenv:Server", "x"))
    ]
    tally = fuzz(
        "eid.messages (envelope, payloads)",
        _receive,
        xml_mutants(samples, 2000, seed=11),
        (EidMessageError, XmlSecurityError),
    )
    tally.check(min_inputs=2000)


@pytest.fixture(scope="module")
def server_key() -> KeyPair:
    return generate_key_pair("ec-p256", "fuzz eid-server")


def test_ws_security(server_key: KeyPair) -> None:
    samples = [sign_envelope(messages.soap_envelope(p), server_key, now=NOW) for p in _payloads()[3:6]]

    def verify(data: bytes) -> object:
        return verify_envelope(parse_xml(data), server_key.certificate, now=NOW)

    tally = fuzz(
        "eid.wssec.verify_envelope",
        verify,
        xml_mutants(samples, 600, seed=12),
        (WsSecurityError, TimestampError, EidMessageError, XmlSecurityError),
    )
    tally.check(min_inputs=600)


def test_tc_token() -> None:
    samples = [
        build_tc_token(TC_TOKEN),
        build_tc_token(TcToken("https://eid.example.de/paos", "5a6b7c8d", "https://gateway.example.de/r")),
        build_error_tc_token("https://gateway.example.de/eid/error"),
    ]

    def parse(data: bytes) -> TcToken | ErrorTcToken:
        return parse_tc_token(data, require_https=True)

    tally = fuzz("eid.tctoken.parse_tc_token", parse, xml_mutants(samples, 2000, seed=13), (TcTokenError,))
    tally.check(min_inputs=2000)


def test_ws_security_timestamp_values() -> None:
    """Created / Expires are read only after the signature holds, so the mutants of the signed envelopes
    above rarely reach them: their parser is fed directly (TimestampError is its one error type)."""
    samples = [b"2026-11-25T12:00:00.000Z", b"2026-11-25T12:05:00+01:00", b"2026-11-25T12:00:00.123456789-00:30"]
    inputs = [b.decode("latin-1") for b in binary_mutants(samples, 1000, seed=14)]
    tally = fuzz("eid.wssec timestamp values", lambda text: _parse_datetime(text, "Created"), inputs, (TimestampError,))
    tally.check(min_inputs=1000)
