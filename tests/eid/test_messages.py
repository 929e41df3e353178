"""TR-03130 messages: round trips, schema order, tolerance for real servers, precise refusals."""

from __future__ import annotations

import pytest
from lxml import etree

from eid_gateway.eid import messages, results
from eid_gateway.eid.errors import (
    InvalidValueError,
    MissingElementError,
    NotSoapError,
    SoapFaultError,
    UnexpectedElementError,
)
from eid_gateway.identity import PartialDate, Place
from helpers.eid_samples import ERIKA_RESULT, PSK, SESSION_ID, USE_ID_REQUEST
from saml.xml import parse_xml, to_bytes

E = "{http://bsi.bund.de/eID/}"
DSS = "{urn:oasis:names:tc:dss:1.0:core:schema}"


def reparse(el: etree._Element) -> etree._Element:
    """Serialise and parse with the hardened parser, as the peer would."""
    return parse_xml(to_bytes(el))


def wrap(local: str, inner: str) -> etree._Element:
    return parse_xml(
        f'<eid:{local} xmlns:eid="{messages.EID_NS}" xmlns:dss="urn:oasis:names:tc:dss:1.0:core:schema">{inner}</eid:{local}>'.encode()
    )


OK = "<dss:Result><dss:ResultMajor>http://www.bsi.bund.de/ecard/api/1.1/resultmajor#ok</dss:ResultMajor></dss:Result>"


# --- useID ----------------------------------------------------------------------------------------------


def test_use_id_request_writes_all_17_operations_in_schema_order() -> None:
    el = messages.build_use_id_request(USE_ID_REQUEST)
    ops = el.find(f"{E}UseOperations")
    assert ops is not None
    assert [etree.QName(c).localname for c in ops] == list(messages.OPERATION_NAMES)
    assert len(ops) == 17
    values = {etree.QName(c).localname: c.text for c in ops}
    assert values["GivenNames"] == "REQUIRED" and values["ArtisticName"] == "ALLOWED"
    assert values["FamilyNames"] == "PROHIBITED"
    assert [etree.QName(c).localname for c in el] == [
        "UseOperations",
        "AgeVerificationRequest",
        "PlaceVerificationRequest",
        "TransactionInfo",
        "LevelOfAssuranceRequest",
        "PSK",
    ]
    back = messages.parse_use_id_request(reparse(el))
    assert back.age == 18 and back.community_id == "027605" and back.psk == PSK
    assert back.selection("GivenNames") is messages.Selection.REQUIRED
    assert back.selection("FamilyNames") is messages.Selection.PROHIBITED
    assert back.transaction_info == "Wohnsitzanmeldung"
    assert back.level_of_assurance == "http://eidas.europa.eu/LoA/high"
    assert isinstance(messages.parse_request(reparse(el)), messages.UseIDRequest)


def test_use_id_request_optional_parts_round_trip() -> None:
    req = messages.UseIDRequest(
        operations={"RestrictedID": messages.Selection.REQUIRED},
        transaction_attestation=("http://bsi.bund.de/eID/ExampleAttestationFormat", "ctx"),
        eid_type={"CardCertified": "ALLOWED", "HWKeyStore": "DENIED"},
    )
    back = messages.parse_use_id_request(reparse(messages.build_use_id_request(req)))
    assert back.transaction_attestation == req.transaction_attestation
    assert back.eid_type == req.eid_type
    assert back.psk is None and back.age is None


def test_empty_operation_means_prohibited() -> None:
    inner = (
        "<eid:UseOperations>"
        + "".join(
            f"<eid:{n}/>" if n != "GivenNames" else "<eid:GivenNames>REQUIRED</eid:GivenNames>"
            for n in messages.OPERATION_NAMES
        )
        + "</eid:UseOperations>"
    )
    req = messages.parse_use_id_request(wrap("useIDRequest", inner))
    assert req.selection("GivenNames") is messages.Selection.REQUIRED
    assert req.selection("DocumentType") is messages.Selection.PROHIBITED


def _ops(names: list[str], value: str = "ALLOWED") -> str:
    return "<eid:UseOperations>" + "".join(f"<eid:{n}>{value}</eid:{n}>" for n in names) + "</eid:UseOperations>"


def test_use_operations_out_of_order_refused() -> None:
    names = list(messages.OPERATION_NAMES)
    names[3], names[4] = names[4], names[3]
    with pytest.raises(MissingElementError):
        messages.parse_use_id_request(wrap("useIDRequest", _ops(names)))


def test_use_operations_missing_child_refused() -> None:
    with pytest.raises(MissingElementError):
        messages.parse_use_id_request(wrap("useIDRequest", _ops(list(messages.OPERATION_NAMES[:-1]))))


def test_use_operations_extra_child_refused() -> None:
    with pytest.raises(UnexpectedElementError):
        messages.parse_use_id_request(wrap("useIDRequest", _ops([*messages.OPERATION_NAMES, "GivenNames"])))


def test_use_operations_bad_value_refused() -> None:
    with pytest.raises(InvalidValueError):
        messages.parse_use_id_request(wrap("useIDRequest", _ops(list(messages.OPERATION_NAMES), "MAYBE")))


def test_unknown_operation_name_not_built() -> None:
    with pytest.raises(InvalidValueError):
        messages.build_use_id_request(messages.UseIDRequest(operations={"ShoeSize": messages.Selection.REQUIRED}))


@pytest.mark.parametrize("cid", ["0276", "027605", "02760503", "0276050315", "02760503150000"])
def test_community_id_pattern_accepts(cid: str) -> None:
    req = messages.UseIDRequest(operations={"PlaceVerification": messages.Selection.REQUIRED}, community_id=cid)
    assert messages.parse_use_id_request(reparse(messages.build_use_id_request(req))).community_id == cid


@pytest.mark.parametrize(
    "cid", ["", "1276", "027", "0276051", "02760513", "027605031500000", "0276050315000", "02760503150001x"]
)
def test_community_id_pattern_refuses(cid: str) -> None:
    with pytest.raises(InvalidValueError):
        messages.build_use_id_request(
            messages.UseIDRequest(operations={"PlaceVerification": messages.Selection.REQUIRED}, community_id=cid)
        )
    inner = (
        _ops(list(messages.OPERATION_NAMES))
        + f"<eid:PlaceVerificationRequest><eid:CommunityID>{cid}</eid:CommunityID></eid:PlaceVerificationRequest>"
    )
    with pytest.raises(InvalidValueError):
        messages.parse_use_id_request(wrap("useIDRequest", inner))


@pytest.mark.parametrize(
    "psk",
    [
        messages.Psk("short", "00112233445566778899aabbccddeeff"),
        messages.Psk("0123456789abcdef", "0011"),
        messages.Psk("0123456789abcdef", "zz" * 16),
    ],
)
def test_bad_psk_refused(psk: messages.Psk) -> None:
    with pytest.raises(InvalidValueError):
        messages.build_use_id_request(messages.UseIDRequest(operations={}, psk=psk))


def test_negative_age_refused() -> None:
    with pytest.raises(InvalidValueError):
        messages.build_use_id_request(messages.UseIDRequest(operations={}, age=-1))
    inner = (
        _ops(list(messages.OPERATION_NAMES))
        + "<eid:AgeVerificationRequest><eid:Age>-3</eid:Age></eid:AgeVerificationRequest>"
    )
    with pytest.raises(InvalidValueError):
        messages.parse_use_id_request(wrap("useIDRequest", inner))


def test_use_id_response_round_trip() -> None:
    resp = messages.UseIDResponse(messages.Result(results.MAJOR_OK), SESSION_ID, "https://eid.example/paos", PSK)
    el = messages.build_use_id_response(resp)
    assert [etree.QName(c).localname for c in el] == ["Session", "eCardServerAddress", "PSK", "Result"]
    assert el[3].tag == f"{DSS}Result" and el[3][0].tag == f"{DSS}ResultMajor"
    assert messages.parse_use_id_response(reparse(el)) == resp


def test_use_id_response_ok_without_session_refused() -> None:
    with pytest.raises(MissingElementError):
        messages.parse_use_id_response(wrap("useIDResponse", OK))


def test_use_id_error_response_without_session_accepted() -> None:
    resp = messages.UseIDResponse(messages.Result(results.MAJOR_ERROR, results.TOO_MANY_OPEN_SESSIONS, "busy", "de"))
    back = messages.parse_use_id_response(reparse(messages.build_use_id_response(resp)))
    assert back == resp and not back.result.ok


def test_short_session_id_refused() -> None:
    with pytest.raises(InvalidValueError):
        messages.build_get_result_request(messages.GetResultRequest("abcd", 1))
    inner = "<eid:Session><eid:ID>abcd</eid:ID></eid:Session><eid:RequestCounter>1</eid:RequestCounter>"
    with pytest.raises(InvalidValueError):
        messages.parse_get_result_request(wrap("getResultRequest", inner))


def test_get_result_request_round_trip() -> None:
    req = messages.GetResultRequest(SESSION_ID, 7)
    assert messages.parse_get_result_request(reparse(messages.build_get_result_request(req))) == req


def test_request_counter_must_be_int() -> None:
    inner = f"<eid:Session><eid:ID>{SESSION_ID}</eid:ID></eid:Session><eid:RequestCounter>one</eid:RequestCounter>"
    with pytest.raises(InvalidValueError):
        messages.parse_get_result_request(wrap("getResultRequest", inner))


# --- getResult --------------------------------------------------------------------------------------------


def test_get_result_response_full_round_trip() -> None:
    el = messages.build_get_result_response(ERIKA_RESULT)
    pd = el.find(f"{E}PersonalData")
    assert pd is not None
    assert [etree.QName(c).localname for c in pd] == [
        "DocumentType", "IssuingState", "DateOfExpiry", "GivenNames", "FamilyNames", "ArtisticName",
        "AcademicTitle", "DateOfBirth", "PlaceOfBirth", "Nationality", "BirthName", "PlaceOfResidence",
        "CommunityID", "ResidencePermitI", "RestrictedID",
    ]  # fmt: skip
    assert pd.findtext(f"{E}DateOfBirth/{E}DateString") == "19640812"
    assert pd.findtext(f"{E}DateOfBirth/{E}DateValue") == "1964-08-12"
    assert [etree.QName(c).localname for c in el] == [
        "PersonalData", "FulfilsAgeVerification", "FulfilsPlaceVerification", "OperationsAllowedByUser",
        "LevelOfAssuranceResult", "EIDTypeResponse", "Result",
    ]  # fmt: skip
    assert messages.parse_get_result_response(reparse(el)) == ERIKA_RESULT


@pytest.mark.parametrize(
    "place",
    [
        Place(street="HEIDESTRASSE 17", city="KÖLN", country="D", zip_code="51147"),
        Place(city="LÜBBENAU/SPREEWALD", country="D"),  # no street (ANNEKATHRIN LERCH's case)
        Place(freetext="FRANKFURT (ODER)"),
        Place(no_place_info="keine Hauptwohnung in Deutschland"),
    ],
)
def test_all_place_forms_round_trip(place: Place) -> None:
    resp = messages.GetResultResponse(
        messages.Result(results.MAJOR_OK), messages.PersonalData(place_of_residence=place, place_of_birth=place)
    )
    back = messages.parse_get_result_response(reparse(messages.build_get_result_response(resp)))
    assert back.personal_data is not None
    assert back.personal_data.place_of_residence == place == back.personal_data.place_of_birth


def test_place_with_two_forms_refused() -> None:
    with pytest.raises(InvalidValueError):
        messages.build_get_result_response(
            messages.GetResultResponse(
                messages.Result(results.MAJOR_OK),
                messages.PersonalData(place_of_birth=Place(city="A", country="D", freetext="B")),
            )
        )
    inner = (
        "<eid:PersonalData><eid:PlaceOfBirth><eid:FreetextPlace>A</eid:FreetextPlace><eid:NoPlaceInfo>B</eid:NoPlaceInfo></eid:PlaceOfBirth></eid:PersonalData>"
        + OK
    )
    with pytest.raises(UnexpectedElementError):
        messages.parse_get_result_response(wrap("getResultResponse", inner))


def test_structured_place_needs_city_and_country() -> None:
    inner = (
        "<eid:PersonalData><eid:PlaceOfResidence><eid:StructuredPlace><eid:Street>X</eid:Street><eid:Country>D</eid:Country></eid:StructuredPlace></eid:PlaceOfResidence></eid:PersonalData>"
        + OK
    )
    with pytest.raises(MissingElementError):
        messages.parse_get_result_response(wrap("getResultResponse", inner))


@pytest.mark.parametrize(
    ("date", "string", "value"),
    [
        (PartialDate(1946), "1946    ", None),
        (PartialDate(1946, 1), "194601  ", None),
        (PartialDate(1964, 8, 12), "19640812", "1964-08-12"),
    ],
)
def test_partial_dates_round_trip(date: PartialDate, string: str, value: str | None) -> None:
    el = messages.build_get_result_response(
        messages.GetResultResponse(messages.Result(results.MAJOR_OK), messages.PersonalData(date_of_birth=date))
    )
    assert el.findtext(f"{E}PersonalData/{E}DateOfBirth/{E}DateString") == string
    assert el.findtext(f"{E}PersonalData/{E}DateOfBirth/{E}DateValue") == value
    back = messages.parse_get_result_response(reparse(el))
    assert back.personal_data is not None and back.personal_data.date_of_birth == date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1946", PartialDate(1946)),
        ("2029-11", PartialDate(2029, 11)),
        ("1981-06-17+02:00", PartialDate(1981, 6, 17)),
        ("1981-06-17Z", PartialDate(1981, 6, 17)),
        ("1981-06-17", PartialDate(1981, 6, 17)),
        ("19460000", PartialDate(1946)),
        ("1946    ", PartialDate(1946)),
    ],
)
def test_lenient_dates(text: str, expected: PartialDate) -> None:
    assert messages.parse_lenient_date(text) == expected


@pytest.mark.parametrize(
    "text", ["", "46", "1946-13", "1946-02-30", "1946  12", "19461301", "yesterday", "1946-01-01T00:00:00"]
)
def test_bad_dates_refused(text: str) -> None:
    with pytest.raises(InvalidValueError):
        messages.parse_lenient_date(text)


def test_tolerant_real_server_dates_in_messages() -> None:
    inner = (
        "<eid:PersonalData><eid:DateOfExpiry>2029-11</eid:DateOfExpiry>"
        "<eid:DateOfBirth><eid:DateString>1981-06-17+02:00</eid:DateString></eid:DateOfBirth></eid:PersonalData>" + OK
    )
    resp = messages.parse_get_result_response(wrap("getResultResponse", inner))
    assert resp.personal_data is not None
    assert resp.personal_data.date_of_expiry == "2029-11"
    assert resp.personal_data.date_of_birth == PartialDate(1981, 6, 17)


def test_date_string_and_value_disagree_refused() -> None:
    inner = (
        "<eid:PersonalData><eid:DateOfBirth><eid:DateString>19640812</eid:DateString>"
        "<eid:DateValue>1964-08-13</eid:DateValue></eid:DateOfBirth></eid:PersonalData>" + OK
    )
    with pytest.raises(InvalidValueError):
        messages.parse_get_result_response(wrap("getResultResponse", inner))


def test_bsi_sample_shape_is_accepted() -> None:
    """BSI's sample: unqualified ResultMajor, LevelOfAssuranceResponse, whitespace around URIs, empty
    AcademicTitle, empty operations (PROHIBITED), a transaction attestation."""
    inner = (
        "<eid:PersonalData><eid:GivenNames>ERIKA</eid:GivenNames><eid:AcademicTitle />"
        "<eid:RestrictedID><eid:ID>01a4fb50</eid:ID></eid:RestrictedID></eid:PersonalData>"
        "<eid:OperationsAllowedByUser>"
        + "".join(
            f"<eid:{n} />" if n == "ArtisticName" else f"<eid:{n}>ALLOWED</eid:{n}>" for n in messages.OPERATION_NAMES
        )
        + "</eid:OperationsAllowedByUser>"
        "<eid:TransactionAttestationResponse><eid:TransactionAttestationFormat>\n  http://bsi.bund.de/eID/ExampleAttestationFormat\n"
        "</eid:TransactionAttestationFormat><eid:TransactionAttestationData>V6IN</eid:TransactionAttestationData>"
        "</eid:TransactionAttestationResponse>"
        "<eid:LevelOfAssuranceResponse>\n   http://bsi.bund.de/eID/LoA/hoch\n </eid:LevelOfAssuranceResponse>"
        "<eid:EIDTypeResponse><eid:CardCertified>USED</eid:CardCertified></eid:EIDTypeResponse>"
        "<dss:Result><ResultMajor>\n http://www.bsi.bund.de/ecard/api/1.1/resultmajor#ok\n </ResultMajor></dss:Result>"
    )
    resp = messages.parse_get_result_response(wrap("getResultResponse", inner))
    assert resp.result.ok
    assert resp.level_of_assurance == "http://bsi.bund.de/eID/LoA/hoch"
    assert resp.transaction_attestation_format == "http://bsi.bund.de/eID/ExampleAttestationFormat"
    assert resp.eid_type_used == "CardCertified"
    assert resp.operations_allowed_by_user is not None
    assert resp.operations_allowed_by_user["ArtisticName"] is messages.Permission.PROHIBITED
    assert resp.personal_data is not None
    assert resp.personal_data.academic_title == "" and resp.personal_data.restricted_id == messages.RestrictedID(
        "01A4FB50"
    )


@pytest.mark.parametrize(
    ("inner", "error"),
    [
        ("", MissingElementError),  # no Result
        (OK + OK, UnexpectedElementError),
        (
            "<eid:FulfilsAgeVerification><eid:FulfilsRequest>yes</eid:FulfilsRequest></eid:FulfilsAgeVerification>"
            + OK,
            InvalidValueError,
        ),
        (
            "<eid:PersonalData><eid:GivenNames>A<eid:X/>B</eid:GivenNames></eid:PersonalData>" + OK,
            UnexpectedElementError,
        ),
        ("<eid:PersonalData>text<eid:GivenNames>A</eid:GivenNames></eid:PersonalData>" + OK, UnexpectedElementError),
        (
            "<eid:PersonalData><eid:FamilyNames>B</eid:FamilyNames><eid:GivenNames>A</eid:GivenNames></eid:PersonalData>"
            + OK,
            UnexpectedElementError,
        ),
        ("<eid:PersonalData><eid:DocumentType>Id</eid:DocumentType></eid:PersonalData>" + OK, InvalidValueError),
        (
            "<eid:PersonalData><eid:RestrictedID><eid:ID>abc</eid:ID></eid:RestrictedID></eid:PersonalData>" + OK,
            InvalidValueError,
        ),
        ("<eid:LevelOfAssuranceResult>http://example.org/loa</eid:LevelOfAssuranceResult>" + OK, InvalidValueError),
        ("<eid:Evil/>" + OK, UnexpectedElementError),
        ("<dss:Result><dss:ResultMajor>urn:whatever</dss:ResultMajor></dss:Result>", InvalidValueError),
        ("<eid:EIDTypeResponse/>" + OK, MissingElementError),
    ],
)
def test_get_result_response_refusals(inner: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        messages.parse_get_result_response(wrap("getResultResponse", inner))


def test_result_message_language() -> None:
    resp = messages.GetResultResponse(messages.Result(results.MAJOR_ERROR, results.NO_RESULT_YET, "noch nicht", "de"))
    el = messages.build_get_result_response(resp)
    msg = el.find(f"{DSS}Result/{DSS}ResultMessage")
    assert msg is not None and msg.get("{http://www.w3.org/XML/1998/namespace}lang") == "de"
    back = messages.parse_get_result_response(reparse(el))
    assert back == resp and back.result.no_result_yet


def test_wrong_payload_type_refused() -> None:
    with pytest.raises(UnexpectedElementError):
        messages.parse_get_result_response(
            reparse(messages.build_get_result_request(messages.GetResultRequest(SESSION_ID, 1)))
        )
    with pytest.raises(UnexpectedElementError):
        messages.parse_request(wrap("getResultResponse", OK))


# --- getServerInfo, envelope, faults ------------------------------------------------------------------------


def test_server_info_round_trip() -> None:
    assert isinstance(
        messages.parse_request(reparse(messages.build_get_server_info_request())), messages.GetServerInfoRequest
    )
    resp = messages.GetServerInfoResponse(
        "poseidas 3.2.1", 3, 2, 1, {n: n != "ResidencePermitI" for n in messages.OPERATION_NAMES}
    )
    back = messages.parse_get_server_info_response(reparse(messages.build_get_server_info_response(resp)))
    assert back == resp
    assert back.rights["ResidencePermitI"] is False and back.rights["GivenNames"] is True


def test_server_info_request_must_be_empty() -> None:
    with pytest.raises(UnexpectedElementError):
        messages.parse_request(wrap("getServerInfoRequest", "<eid:X/>"))


def test_envelope_round_trip() -> None:
    env = messages.split_envelope(
        reparse(messages.soap_envelope(messages.build_get_result_request(messages.GetResultRequest(SESSION_ID, 1))))
    )
    assert env.header is not None
    assert messages.parse_get_result_request(messages.body_payload(env.body)).request_counter == 1


@pytest.mark.parametrize(
    "doc",
    [
        b"<x/>",
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><a/></s:Body></s:Envelope>',  # SOAP 1.2
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/></s:Envelope>',
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/><s:Body/></s:Envelope>',
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/><s:Header/></s:Envelope>',
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">x<s:Body/></s:Envelope>',
    ],
)
def test_bad_envelopes_refused(doc: bytes) -> None:
    with pytest.raises(NotSoapError):
        messages.split_envelope(parse_xml(doc))


@pytest.mark.parametrize(
    "body",
    [
        b"<s:Body/>",
        b"<s:Body><a/><b/></s:Body>",
        b"<s:Body>text<a/></s:Body>",
    ],
)
def test_bad_bodies_refused(body: bytes) -> None:
    doc = b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">' + body + b"</s:Envelope>"
    with pytest.raises(NotSoapError):
        messages.body_payload(messages.split_envelope(parse_xml(doc)).body)


def test_fault_is_reported() -> None:
    env = messages.split_envelope(reparse(messages.build_fault("soapenv:Server", "internal")))
    with pytest.raises(SoapFaultError) as err:
        messages.body_payload(env.body)
    assert err.value.faultcode == "soapenv:Server" and err.value.faultstring == "internal"
    assert "internal" not in str(err.value)  # the peer's free text stays out of messages/logs
