"""Detached multi-reference signatures (the WS-Security shape used for TR-03130)."""

from __future__ import annotations

import copy

import pytest
from lxml import etree

from saml import algorithms as A
from saml.dsig import (
    BadSignature,
    DuplicateId,
    ForbiddenTransform,
    ReferenceMismatch,
    UntrustedKey,
    sign_references,
    verify_references,
)
from saml.keys import KeyPair
from saml.xml import parse_xml, to_bytes

from .conftest import DS, raw_sign

WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSU_ID = f"{{{WSU}}}Id"

ENVELOPE = f"""<soap:Envelope xmlns:soap="{SOAP}" xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}">
  <soap:Header><wsse:Security><wsu:Timestamp><wsu:Created>2026-11-25T10:00:00Z</wsu:Created></wsu:Timestamp></wsse:Security></soap:Header>
  <soap:Body><useIDRequest xmlns="urn:example:eid"><UseOperations/></useIDRequest></soap:Body>
</soap:Envelope>""".encode()


def _parts(env: etree._Element) -> tuple[etree._Element, etree._Element, etree._Element]:
    security = env.find(f".//{{{WSSE}}}Security")
    ts = env.find(f".//{{{WSU}}}Timestamp")
    body = env.find(f"{{{SOAP}}}Body")
    assert security is not None and ts is not None and body is not None
    return security, ts, body


def _signed(key: KeyPair, **kw: object) -> etree._Element:
    env = parse_xml(ENVELOPE)
    security, ts, body = _parts(env)
    sig = sign_references(security, [(ts, "TS-1"), (body, "Body-1")], key, id_attr_qname=WSU_ID, **kw)  # type: ignore[arg-type]
    assert sig.getparent() is security and security.index(sig) == 1
    return parse_xml(to_bytes(env))


def _sig(env: etree._Element) -> etree._Element:
    sig = env.find(f".//{{{DS}}}Signature")
    assert sig is not None
    return sig


def test_round_trip_two_references(rsa3072: KeyPair, ec256: KeyPair) -> None:
    env = _signed(rsa3072)
    _, ts, body = _parts(env)
    assert (
        verify_references(_sig(env), [ts, body], [ec256.certificate, rsa3072.certificate], id_attr_qname=WSU_ID)
        == rsa3072.certificate
    )
    assert [r.get("URI") for r in _sig(env).iter(f"{{{DS}}}Reference")] == ["#TS-1", "#Body-1"]


def test_order_of_expected_does_not_matter(ec256: KeyPair) -> None:
    env = _signed(ec256)
    _, ts, body = _parts(env)
    verify_references(_sig(env), [body, ts], [ec256.certificate], id_attr_qname=WSU_ID)


def test_custom_key_info(ec256: KeyPair) -> None:
    str_el = etree.Element(f"{{{WSSE}}}SecurityTokenReference")
    env = _signed(ec256, key_info=str_el)
    key_info = _sig(env).find(f"{{{DS}}}KeyInfo")
    assert key_info is not None and key_info[0].tag == f"{{{WSSE}}}SecurityTokenReference"
    _, ts, body = _parts(env)
    verify_references(_sig(env), [ts, body], [ec256.certificate], id_attr_qname=WSU_ID)


def test_body_altered(ec256: KeyPair) -> None:
    env = _signed(ec256)
    _, ts, body = _parts(env)
    etree.SubElement(body[0], "{urn:example:eid}Extra")
    with pytest.raises(BadSignature):
        verify_references(_sig(env), [ts, body], [ec256.certificate], id_attr_qname=WSU_ID)


def test_signed_by_another_key(ec256: KeyPair, ec256_attacker: KeyPair) -> None:
    env = _signed(ec256_attacker)
    _, ts, body = _parts(env)
    with pytest.raises(UntrustedKey):
        verify_references(_sig(env), [ts, body], [ec256.certificate], id_attr_qname=WSU_ID)


def test_unsigned_body_expected(ec256: KeyPair) -> None:
    """Only the timestamp is signed, the caller expects the body to be covered too."""
    env = parse_xml(ENVELOPE)
    security, ts, body = _parts(env)
    sign_references(security, [(ts, "TS-1")], ec256, id_attr_qname=WSU_ID)
    body.set(WSU_ID, "Body-1")
    env = parse_xml(to_bytes(env))
    _, ts, body = _parts(env)
    with pytest.raises(ReferenceMismatch):
        verify_references(_sig(env), [ts, body], [ec256.certificate], id_attr_qname=WSU_ID)


def test_extra_reference_not_expected(ec256: KeyPair) -> None:
    env = _signed(ec256)
    _, ts, _body = _parts(env)
    with pytest.raises(ReferenceMismatch):
        verify_references(_sig(env), [ts], [ec256.certificate], id_attr_qname=WSU_ID)


def test_wrapping_signed_body_moved_to_header(ec256: KeyPair) -> None:
    """XSW for SOAP: the signed body moves into the header, an evil body (same Id) takes its place."""
    env = _signed(ec256)
    security, ts, body = _parts(env)
    evil = copy.deepcopy(body)
    evil[0][0].tag = "{urn:example:eid}EvilOperations"
    env.replace(body, evil)
    security.append(body)
    with pytest.raises(DuplicateId):
        verify_references(_sig(env), [ts, evil], [ec256.certificate], id_attr_qname=WSU_ID)


def test_wrapping_evil_body_with_new_id(ec256: KeyPair) -> None:
    env = _signed(ec256)
    security, ts, body = _parts(env)
    evil = copy.deepcopy(body)
    evil.set(WSU_ID, "Body-2")
    env.replace(body, evil)
    security.append(body)
    with pytest.raises(ReferenceMismatch):
        verify_references(_sig(env), [ts, evil], [ec256.certificate], id_attr_qname=WSU_ID)


def test_enveloped_transform_refused_for_detached(rsa3072: KeyPair) -> None:
    env = parse_xml(ENVELOPE)
    security, ts, body = _parts(env)
    ts.set(WSU_ID, "TS-1")
    body.set(WSU_ID, "Body-1")
    raw_sign(
        security,
        rsa3072,
        [("#TS-1", (A.EXC_C14N,)), ("#Body-1", (A.ENVELOPED, A.EXC_C14N))],
        register=[ts, body],
        id_attr=WSU_ID,
    )
    env = parse_xml(to_bytes(env))
    _, ts, body = _parts(env)
    with pytest.raises(ForbiddenTransform):
        verify_references(_sig(env), [ts, body], [rsa3072.certificate], id_attr_qname=WSU_ID)


def test_reference_by_other_id_attribute(rsa3072: KeyPair) -> None:
    """The reference resolves through a plain Id attribute instead of wsu:Id: not what the caller expects."""
    env = parse_xml(ENVELOPE)
    security, ts, body = _parts(env)
    ts.set(WSU_ID, "TS-1")
    body.set("Id", "Body-1")
    raw_sign(
        security,
        rsa3072,
        [("#TS-1", (A.EXC_C14N,)), ("#Body-1", (A.EXC_C14N,))],
        register=[ts, (body, "Id")],
        id_attr=WSU_ID,
    )
    env = parse_xml(to_bytes(env))
    _, ts, body = _parts(env)
    with pytest.raises(ReferenceMismatch):
        verify_references(_sig(env), [ts, body], [rsa3072.certificate], id_attr_qname=WSU_ID)
