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


def _verify(env: etree._Element, *trusted: KeyPair, expected: list[etree._Element] | None = None) -> object:
    """verify_references over the envelope's signature, by default expecting the timestamp and the body."""
    if expected is None:
        _, ts, body = _parts(env)
        expected = [ts, body]
    return verify_references(_sig(env), expected, [k.certificate for k in trusted], id_attr_qname=WSU_ID)


def _raw_signed(key: KeyPair, body_transforms: tuple[str, ...], body_id_attr: str = WSU_ID) -> etree._Element:
    """The envelope signed with unrestricted xmlsec: the timestamp (wsu:Id TS-1) and the body (Body-1 in
    ``body_id_attr``, with ``body_transforms``), reparsed."""
    env = parse_xml(ENVELOPE)
    security, ts, body = _parts(env)
    ts.set(WSU_ID, "TS-1")
    body.set(body_id_attr, "Body-1")
    references = [("#TS-1", (A.EXC_C14N,)), ("#Body-1", body_transforms)]
    raw_sign(security, key, references, register=[ts, (body, body_id_attr)], id_attr=WSU_ID)
    return parse_xml(to_bytes(env))


def test_round_trip_two_references(rsa3072: KeyPair, ec256: KeyPair) -> None:
    env = _signed(rsa3072)
    assert _verify(env, ec256, rsa3072) == rsa3072.certificate
    assert [r.get("URI") for r in _sig(env).iter(f"{{{DS}}}Reference")] == ["#TS-1", "#Body-1"]


def test_order_of_expected_does_not_matter(ec256: KeyPair) -> None:
    env = _signed(ec256)
    _, ts, body = _parts(env)
    _verify(env, ec256, expected=[body, ts])


def test_custom_key_info(ec256: KeyPair) -> None:
    str_el = etree.Element(f"{{{WSSE}}}SecurityTokenReference")
    env = _signed(ec256, key_info=str_el)
    key_info = _sig(env).find(f"{{{DS}}}KeyInfo")
    assert key_info is not None and key_info[0].tag == f"{{{WSSE}}}SecurityTokenReference"
    _verify(env, ec256)


def test_body_altered(ec256: KeyPair) -> None:
    env = _signed(ec256)
    _, _, body = _parts(env)
    etree.SubElement(body[0], "{urn:example:eid}Extra")
    with pytest.raises(BadSignature):
        _verify(env, ec256)


def test_signed_by_another_key(ec256: KeyPair, ec256_attacker: KeyPair) -> None:
    env = _signed(ec256_attacker)
    with pytest.raises(UntrustedKey):
        _verify(env, ec256)


def test_unsigned_body_expected(ec256: KeyPair) -> None:
    """Only the timestamp is signed, the caller expects the body to be covered too."""
    env = parse_xml(ENVELOPE)
    security, ts, body = _parts(env)
    sign_references(security, [(ts, "TS-1")], ec256, id_attr_qname=WSU_ID)
    body.set(WSU_ID, "Body-1")
    with pytest.raises(ReferenceMismatch):
        _verify(parse_xml(to_bytes(env)), ec256)


def test_extra_reference_not_expected(ec256: KeyPair) -> None:
    env = _signed(ec256)
    _, ts, _body = _parts(env)
    with pytest.raises(ReferenceMismatch):
        _verify(env, ec256, expected=[ts])


@pytest.mark.parametrize(
    ("evil_id", "error"),
    [
        # XSW for SOAP: the signed body moves into the header, an evil body (same Id) takes its place
        (None, DuplicateId),
        ("Body-2", ReferenceMismatch),  # the same with a new Id on the evil body
    ],
)
def test_wrapping_signed_body_moved_to_header(ec256: KeyPair, evil_id: str | None, error: type[Exception]) -> None:
    env = _signed(ec256)
    security, ts, body = _parts(env)
    evil = copy.deepcopy(body)
    if evil_id is None:
        evil[0][0].tag = "{urn:example:eid}EvilOperations"
    else:
        evil.set(WSU_ID, evil_id)
    env.replace(body, evil)
    security.append(body)
    with pytest.raises(error):
        _verify(env, ec256, expected=[ts, evil])


def test_enveloped_transform_refused_for_detached(rsa3072: KeyPair) -> None:
    with pytest.raises(ForbiddenTransform):
        _verify(_raw_signed(rsa3072, (A.ENVELOPED, A.EXC_C14N)), rsa3072)


def test_reference_by_other_id_attribute(rsa3072: KeyPair) -> None:
    """The reference resolves through a plain Id attribute instead of wsu:Id: not what the caller expects."""
    with pytest.raises(ReferenceMismatch):
        _verify(_raw_signed(rsa3072, (A.EXC_C14N,), body_id_attr="Id"), rsa3072)
