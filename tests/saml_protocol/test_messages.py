"""Builders and strict parsers of the message layer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from saml import messages as m
from saml.errors import MessageError
from saml.xml import parse_xml, qname, to_bytes

from .conftest import ACS, FULL_AUTHN_REQUEST, IDP, NOW, SP, Factory, Parts


def reparse(el: etree._Element) -> etree._Element:
    return parse_xml(to_bytes(el))


def test_new_id_is_an_ncname_with_at_least_128_random_bits() -> None:
    ids = {m.new_id() for _ in range(1000)}
    assert len(ids) == 1000
    for i in ids:
        assert i.startswith("_") and len(i) - 1 >= 32
        int(i[1:], 16)


def test_authn_request_round_trip_keeps_every_field() -> None:
    ext = etree.Element("{urn:example:ext}Hint")
    ext.text = "kiosk"
    req = replace(FULL_AUTHN_REQUEST, extensions=(ext,))
    parsed = m.parse_authn_request(reparse(m.build_authn_request(req)))
    assert parsed.extensions[0].tag == "{urn:example:ext}Hint" and parsed.extensions[0].text == "kiosk"
    assert m.AuthnRequest(**{**parsed.__dict__, "extensions": ()}) == m.AuthnRequest(
        **{**req.__dict__, "extensions": ()}
    )


def test_assertion_round_trip(factory: Factory) -> None:
    a = factory.assertion(Parts())
    parsed = m.parse_assertion(reparse(m.build_assertion(a)))
    assert parsed == a
    assert parsed.attribute_map()["urn:oid:0.9.2342.19200300.100.1.3"] == ["a@x.de", "b@x.de"]
    assert parsed.subject.name_id.sp_name_qualifier == SP


def test_response_and_status_round_trip() -> None:
    r = m.Response(
        issuer=IDP,
        issue_instant=NOW,
        destination=ACS,
        in_response_to="_r1",
        status=m.Status(m.STATUS_RESPONDER, m.STATUS_AUTHN_FAILED, "cancelled"),
    )
    assert m.parse_response(reparse(m.build_response(r))) == r


def test_logout_round_trip() -> None:
    lr = m.LogoutRequest(
        issuer=SP,
        name_id=m.NameID("abc", m.NAMEID_TRANSIENT),
        issue_instant=NOW,
        destination="https://idp/slo",
        session_indexes=("_s1", "_s2"),
        reason=m.LOGOUT_REASON_USER,
        not_on_or_after=NOW + timedelta(minutes=1),
    )
    assert m.parse_logout_request(reparse(m.build_logout_request(lr))) == lr
    resp = m.LogoutResponse(issuer=IDP, in_response_to=lr.id, issue_instant=NOW, status=m.Status(m.STATUS_SUCCESS))
    assert m.parse_logout_response(reparse(m.build_logout_response(resp))) == resp


def test_datetime_parsing_is_aware_and_refuses_zoneless() -> None:
    assert m.parse_datetime("2026-03-01T13:00:00.123456789+01:00") == datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert m.format_datetime(NOW) == "2026-03-01T12:00:00Z"
    with pytest.raises(MessageError, match="time zone"):
        m.parse_datetime("2026-03-01T12:00:00")
    with pytest.raises(MessageError):
        m.parse_datetime("2026-02-30T12:00:00Z")


def _assertion_xml(factory: Factory) -> bytes:
    return to_bytes(m.build_assertion(factory.assertion(Parts())))


def test_name_id_with_child_element_is_refused(factory: Factory) -> None:
    xml = _assertion_xml(factory).replace(
        b"user@city.de</saml:NameID>", b"user@city.de<saml:Foo>x</saml:Foo>.evil.com</saml:NameID>"
    )
    with pytest.raises(MessageError, match="NameID must contain only text"):
        m.parse_assertion(parse_xml(xml))


def test_name_id_comment_yields_the_whole_text(factory: Factory) -> None:
    xml = _assertion_xml(factory).replace(b"user@city.de<", b"user@city.de<!---->.evil.com<")
    assert m.parse_assertion(parse_xml(xml)).subject.name_id.value == "user@city.de.evil.com"


def test_missing_issuer_is_refused(factory: Factory) -> None:
    el = m.build_assertion(factory.assertion(Parts()))
    el.remove(el[0])
    with pytest.raises(MessageError, match="lacks an Issuer"):
        m.parse_assertion(reparse(el))


@pytest.mark.parametrize(
    ("child", "message"),
    [("Subject", "exactly one Subject"), ("Conditions", "at most one")],
    ids=["two_subjects", "two_conditions"],
)
def test_a_repeated_child_is_refused(factory: Factory, child: str, message: str) -> None:
    el = m.build_assertion(factory.assertion(Parts()))
    original = el.find(qname("saml", child))
    assert original is not None
    original.addnext(etree.fromstring(etree.tostring(original)))
    with pytest.raises(MessageError, match=message):
        m.parse_assertion(reparse(el))


def test_missing_id_and_wrong_version_are_refused() -> None:
    el = m.build_response(m.Response(issuer=IDP))
    del el.attrib["ID"]
    with pytest.raises(MessageError, match="ID"):
        m.parse_response(reparse(el))
    el = m.build_response(m.Response(issuer=IDP))
    el.set("Version", "1.1")
    with pytest.raises(MessageError, match="Version 2.0"):
        m.parse_response(reparse(el))


def test_response_without_status_is_refused() -> None:
    el = m.build_response(m.Response(issuer=IDP))
    el.remove(el.find(qname("samlp", "Status")))  # type: ignore[arg-type]
    with pytest.raises(MessageError, match="exactly one Status"):
        m.parse_response(reparse(el))


def test_extensions_in_saml_namespace_are_refused() -> None:
    req = m.build_authn_request(m.AuthnRequest(issuer=SP, extensions=(etree.Element(qname("saml", "Issuer")),)))
    with pytest.raises(MessageError, match="foreign namespace"):
        m.parse_authn_request(reparse(req))


def test_wrong_root_is_refused() -> None:
    with pytest.raises(MessageError, match="expected AuthnRequest"):
        m.parse_authn_request(m.build_response(m.Response(issuer=IDP)))
