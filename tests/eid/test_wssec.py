"""WS-Security of the eID-Interface: layout, round trips, and the attacks the verifier must stop."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from eid_gateway.eid.errors import TimestampError, WsSecurityError
from eid_gateway.eid.messages import (
    GetResultRequest,
    GetResultResponse,
    PersonalData,
    Result,
    body_payload,
    build_get_result_request,
    build_get_result_response,
    parse_get_result_response,
    soap_envelope,
)
from eid_gateway.eid.results import MAJOR_OK
from eid_gateway.eid.wssec import WSSE, WSU_ID, sign_envelope, verify_envelope
from saml import algorithms as alg
from saml.dsig import WSU, sign_references
from saml.keys import KeyPair, generate_key_pair
from saml.xml import parse_xml, to_bytes

SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
SEC = f"{{{WSSE}}}Security"
TS = f"{{{WSU}}}Timestamp"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _response(name: str = "ERIKA") -> etree._Element:
    return soap_envelope(build_get_result_response(GetResultResponse(Result(MAJOR_OK), PersonalData(given_names=name))))


def _signed(key: KeyPair, name: str = "ERIKA", **kw: object) -> etree._Element:
    return parse_xml(sign_envelope(_response(name), key, now=NOW, **kw))  # type: ignore[arg-type]


def _verify(root: etree._Element, key: KeyPair, now: datetime = NOW) -> etree._Element:
    return verify_envelope(root, key.certificate, now=now)


def _security(root: etree._Element) -> etree._Element:
    sec = root.find(f"{SOAP}Header/{SEC}")
    assert sec is not None
    return sec


def _body(root: etree._Element) -> etree._Element:
    body = root.find(f"{SOAP}Body")
    assert body is not None
    return body


def _reparse(root: etree._Element) -> etree._Element:
    return parse_xml(to_bytes(root))


# --- layout and round trips ----------------------------------------------------------------------------------


def test_layout(server_key: KeyPair) -> None:
    root = _signed(server_key)
    sec = _security(root)
    assert sec.get(f"{SOAP}mustUnderstand") == "1"
    assert [c.tag for c in sec] == [TS, f"{DS}Signature"]
    ts_id, body_id = sec[0].get(WSU_ID), _body(root).get(WSU_ID)
    assert ts_id and body_id
    info = sec[1].find(f"{DS}SignedInfo")
    assert info is not None
    assert info[0].get("Algorithm") == alg.EXC_C14N
    assert info[1].get("Algorithm") == alg.ECDSA_SHA256
    refs = info.findall(f"{DS}Reference")
    assert [r.get("URI") for r in refs] == [f"#{ts_id}", f"#{body_id}"]
    assert {r.find(f"{DS}DigestMethod").get("Algorithm") for r in refs} == {alg.SHA256}  # type: ignore[union-attr]
    ki = sec[1].find(f"{DS}KeyInfo")
    assert ki is not None
    serial = ki.find(f"{{{WSSE}}}SecurityTokenReference/{DS}X509Data/{DS}X509IssuerSerial")
    assert serial is not None
    assert serial.findtext(f"{DS}X509SerialNumber") == str(server_key.certificate.serial_number)
    assert serial.findtext(f"{DS}X509IssuerName") == server_key.certificate.issuer.rfc4514_string()
    assert root.find(f".//{{{WSSE}}}BinarySecurityToken") is None
    assert root.find(f".//{DS}X509Certificate") is None  # the token is never included
    created, expires = sec[0].findtext(f"{{{WSU}}}Created"), sec[0].findtext(f"{{{WSU}}}Expires")
    assert created == "2026-11-25T12:00:00.000Z" and expires == "2026-11-25T12:05:00.000Z"


def test_round_trip_ec(server_key: KeyPair) -> None:
    root = _signed(server_key)
    body = _verify(root, server_key)
    assert body is _body(root)
    resp = parse_get_result_response(body_payload(body))
    assert resp.personal_data is not None and resp.personal_data.given_names == "ERIKA"


@pytest.mark.parametrize("algorithm", [alg.RSA_SHA256, alg.RSA_PSS_SHA256])
def test_round_trip_rsa(rsa_key: KeyPair, algorithm: str) -> None:
    root = _signed(rsa_key, algorithm=algorithm)
    sig_method = _security(root).find(f"{DS}Signature/{DS}SignedInfo/{DS}SignatureMethod")
    assert sig_method is not None and sig_method.get("Algorithm") == algorithm
    assert _verify(root, rsa_key) is _body(root)


def test_request_direction(gateway_key: KeyPair) -> None:
    env = soap_envelope(build_get_result_request(GetResultRequest("ab" * 32, 3)))
    root = parse_xml(sign_envelope(env, gateway_key, now=NOW))
    assert body_payload(_verify(root, gateway_key)).tag == "{http://bsi.bund.de/eID/}getResultRequest"


def test_clock_skew_tolerated(server_key: KeyPair) -> None:
    root = _signed(server_key)
    _verify(root, server_key, now=NOW - timedelta(minutes=1))  # created "in the future" within skew
    _verify(root, server_key, now=NOW + timedelta(minutes=6))  # expired less than the skew ago


def test_refuses_to_sign_twice(server_key: KeyPair) -> None:
    with pytest.raises(WsSecurityError):
        sign_envelope(_signed(server_key), server_key)


# --- attacks -------------------------------------------------------------------------------------------------


def test_forged_signature_value(server_key: KeyPair) -> None:
    root = _signed(server_key)
    value = _security(root).find(f"{DS}Signature/{DS}SignatureValue")
    assert value is not None and value.text
    raw = bytearray(value.text.encode())
    raw[10] = ord("A") if raw[10] != ord("A") else ord("B")
    value.text = raw.decode()
    with pytest.raises(WsSecurityError):
        _verify(root, server_key)


def test_wrong_certificate(server_key: KeyPair, rogue_key: KeyPair) -> None:
    """Same subject and issuer name, other key: KeyInfo names "the" certificate, trust decides."""
    with pytest.raises(WsSecurityError):
        _verify(_signed(rogue_key), server_key)


def test_body_swapped_after_signing(server_key: KeyPair) -> None:
    root = _signed(server_key)
    body = _body(root)
    body.remove(body[0])
    body.append(build_get_result_response(GetResultResponse(Result(MAJOR_OK), PersonalData(given_names="MALLORY"))))
    with pytest.raises(WsSecurityError):
        _verify(_reparse(root), server_key)


def test_text_changed_after_signing(server_key: KeyPair) -> None:
    data = to_bytes(_signed(server_key)).replace(b"ERIKA", b"EMIL!")
    with pytest.raises(WsSecurityError):
        _verify(parse_xml(data), server_key)


def _wrap_original_body(root: etree._Element, new_body_id: str | None) -> etree._Element:
    """XSW: keep the signed Body (moved into a header wrapper) and put an evil Body in its place."""
    body = _body(root)
    wrapper = etree.SubElement(root.find(f"{SOAP}Header"), "{urn:evil}Wrapper")  # type: ignore[arg-type]
    evil = copy.deepcopy(body)
    wrapper.append(body)
    for el in evil.iter("{http://bsi.bund.de/eID/}GivenNames"):
        el.text = "MALLORY"
    if new_body_id is None:
        del evil.attrib[WSU_ID]
    else:
        evil.set(WSU_ID, new_body_id)
    root.append(evil)
    return _reparse(root)


@pytest.mark.parametrize("variant", ["same-id", "other-id", "no-id"])
def test_signature_wrapping(server_key: KeyPair, variant: str) -> None:
    root = _signed(server_key)
    original_id = _body(root).get(WSU_ID)
    new_id = {"same-id": original_id, "other-id": "Body-evil", "no-id": None}[variant]
    attacked = _wrap_original_body(root, new_id)
    with pytest.raises(WsSecurityError):
        _verify(attacked, server_key)


def test_expired_timestamp(server_key: KeyPair) -> None:
    with pytest.raises(TimestampError):
        _verify(_signed(server_key), server_key, now=NOW + timedelta(minutes=8))


def test_timestamp_from_the_future(server_key: KeyPair) -> None:
    with pytest.raises(TimestampError):
        _verify(_signed(server_key), server_key, now=NOW - timedelta(minutes=10))


def test_implausibly_long_lifetime(server_key: KeyPair) -> None:
    with pytest.raises(TimestampError):
        _verify(_signed(server_key, ttl=timedelta(days=1)), server_key)


def test_expires_extended_after_signing(server_key: KeyPair) -> None:
    root = _signed(server_key)
    expires = _security(root).find(f"{TS}/{{{WSU}}}Expires")
    assert expires is not None
    expires.text = "2026-11-25T12:20:00.000Z"
    with pytest.raises(WsSecurityError):
        _verify(root, server_key, now=NOW + timedelta(minutes=10))


def test_missing_timestamp(server_key: KeyPair) -> None:
    root = _signed(server_key)
    sec = _security(root)
    sec.remove(sec[0])
    with pytest.raises(WsSecurityError):
        _verify(root, server_key)


def test_timestamp_not_first(server_key: KeyPair) -> None:
    root = _signed(server_key)
    sec = _security(root)
    sec.append(sec[0])  # moves the Timestamp behind the Signature
    assert sec[1].tag == TS
    with pytest.raises(WsSecurityError):
        _verify(root, server_key)


def test_binary_security_token_refused(server_key: KeyPair) -> None:
    root = _signed(server_key)
    sec = _security(root)
    sec.insert(0, etree.Element(f"{{{WSSE}}}BinarySecurityToken"))
    with pytest.raises(WsSecurityError):
        _verify(root, server_key)


def test_no_header_or_two_security_headers(server_key: KeyPair) -> None:
    root = _signed(server_key)
    header = root.find(f"{SOAP}Header")
    assert header is not None
    header.append(copy.deepcopy(_security(root)))
    with pytest.raises(WsSecurityError):
        _verify(_reparse(root), server_key)
    root.remove(header)
    with pytest.raises(WsSecurityError):
        _verify(root, server_key)


def _security_with_timestamp(env: etree._Element) -> tuple[etree._Element, etree._Element]:
    header = env.find(f"{SOAP}Header")
    assert header is not None
    sec = etree.SubElement(header, SEC)
    ts = etree.SubElement(sec, TS)
    etree.SubElement(ts, f"{{{WSU}}}Created").text = "2026-11-25T12:00:00Z"
    etree.SubElement(ts, f"{{{WSU}}}Expires").text = "2026-11-25T12:05:00Z"
    return sec, ts


def test_signature_over_body_only_refused(server_key: KeyPair) -> None:
    env = _response()
    sec, ts = _security_with_timestamp(env)
    ts.set(WSU_ID, "TS-1")
    sign_references(sec, [(_body(env), "Body-1")], server_key, id_attr_qname=WSU_ID)
    with pytest.raises(WsSecurityError):
        _verify(_reparse(env), server_key)


def test_signature_over_timestamp_only_refused(server_key: KeyPair) -> None:
    env = _response()
    sec, ts = _security_with_timestamp(env)
    _body(env).set(WSU_ID, "Body-1")
    sign_references(sec, [(ts, "TS-1")], server_key, id_attr_qname=WSU_ID)
    with pytest.raises(WsSecurityError):
        _verify(_reparse(env), server_key)


def test_signature_over_more_than_timestamp_and_body_refused(server_key: KeyPair) -> None:
    env = _response()
    sec, ts = _security_with_timestamp(env)
    extra = etree.SubElement(env.find(f"{SOAP}Header"), "{urn:x}Extra")  # type: ignore[arg-type]
    sign_references(sec, [(ts, "TS-1"), (_body(env), "Body-1"), (extra, "X-1")], server_key, id_attr_qname=WSU_ID)
    with pytest.raises(WsSecurityError):
        _verify(_reparse(env), server_key)


def test_hand_built_correct_layout_accepted(server_key: KeyPair) -> None:
    """Control for the three tests above: the same construction with exactly Timestamp + Body passes."""
    env = _response()
    sec, ts = _security_with_timestamp(env)
    sign_references(sec, [(_body(env), "Body-1"), (ts, "TS-1")], server_key, id_attr_qname=WSU_ID)
    assert _verify(_reparse(env), server_key).get(WSU_ID) == "Body-1"


def test_weak_rsa_key_refused() -> None:
    weak = generate_key_pair("rsa-2048", "legacy")
    root = parse_xml(sign_envelope(_response(), weak, now=NOW, policy=alg.LEGACY_POLICY))
    with pytest.raises(WsSecurityError):
        _verify(root, weak)


@pytest.mark.parametrize("value", ["2026-11-25T12:00:00", "tomorrow", "2026-13-25T12:00:00Z"])
def test_malformed_timestamp_values(server_key: KeyPair, value: str) -> None:
    env = _response()
    sec, ts = _security_with_timestamp(env)
    created = ts.find(f"{{{WSU}}}Created")
    assert created is not None
    created.text = value
    sign_references(sec, [(ts, "TS-1"), (_body(env), "Body-1")], server_key, id_attr_qname=WSU_ID)
    with pytest.raises(TimestampError):
        _verify(_reparse(env), server_key)
