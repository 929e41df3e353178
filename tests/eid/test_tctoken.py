"""TC Token (TR-03124): building, our XSD, parsing, and the refresh URL."""

from __future__ import annotations

from importlib import resources

import pytest
from lxml import etree

from eid_gateway.eid.errors import TcTokenError
from eid_gateway.eid.tctoken import (
    CONTENT_TYPE,
    ErrorTcToken,
    TcToken,
    build_error_tc_token,
    build_tc_token,
    communication_error_url,
    parse_tc_token,
    refresh_url,
    validate_tc_token,
)
from helpers.eid_samples import TC_TOKEN as TOKEN


def _schema() -> etree.XMLSchema:
    xsd = resources.files("eid_gateway.eid").joinpath("tctoken.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd))


def test_content_type() -> None:
    assert CONTENT_TYPE == "text/xml; charset=utf-8"


def test_build_order_and_schema() -> None:
    data = build_tc_token(TOKEN)
    root = etree.fromstring(data)
    assert root.tag == "TCTokenType" and etree.QName(root).namespace is None
    assert [c.tag for c in root] == [
        "ServerAddress",
        "SessionIdentifier",
        "RefreshAddress",
        "CommunicationErrorAddress",
        "Binding",
        "PathSecurity-Protocol",
        "PathSecurity-Parameters",
    ]
    assert root.findtext("Binding") == "urn:liberty:paos:2006-08"
    assert root.findtext("PathSecurity-Protocol") == "urn:ietf:rfc:4279"
    assert root.findtext("PathSecurity-Parameters/PSK") == TOKEN.psk
    assert _schema().validate(root)  # the XSD itself, independent of our validate function
    assert parse_tc_token(data) == TOKEN


def test_attached_model_without_psk() -> None:
    token = TcToken(TOKEN.server_address, TOKEN.session_identifier, TOKEN.refresh_address)
    data = build_tc_token(token)
    root = etree.fromstring(data)
    assert root.find("PathSecurity-Protocol") is None and root.find("PathSecurity-Parameters") is None
    assert parse_tc_token(data) == token


def test_error_token() -> None:
    data = build_error_tc_token("https://gateway.example.de/eid/error?ref=x")
    root = etree.fromstring(data)
    assert [c.tag for c in root] == ["CommunicationErrorAddress"]
    assert _schema().validate(root)
    assert parse_tc_token(data) == ErrorTcToken("https://gateway.example.de/eid/error?ref=x")


def test_hand_written_token_validates() -> None:
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<TCTokenType>
  <ServerAddress>https://eid.example.de:443/eidserver/paos</ServerAddress>
  <SessionIdentifier>1A2B3C4D5E6F7A8B9C0D</SessionIdentifier>
  <RefreshAddress>https://service.example.de/refresh?id=42</RefreshAddress>
  <Binding>urn:liberty:paos:2006-08</Binding>
  <PathSecurity-Protocol>urn:ietf:rfc:4279</PathSecurity-Protocol>
  <PathSecurity-Parameters><PSK>4BC1A0B5F2E3D4C5B6A79880</PSK></PathSecurity-Parameters>
</TCTokenType>"""
    token = parse_tc_token(data)
    assert isinstance(token, TcToken) and token.psk == "4BC1A0B5F2E3D4C5B6A79880"


def _doc(*children: str, root: str = "TCTokenType") -> bytes:
    return f"<{root}>{''.join(children)}</{root}>".encode()


SA = "<ServerAddress>https://e/paos</ServerAddress>"
SI = "<SessionIdentifier>abc</SessionIdentifier>"
RA = "<RefreshAddress>https://g/r</RefreshAddress>"
CE = "<CommunicationErrorAddress>https://g/e</CommunicationErrorAddress>"
BI = "<Binding>urn:liberty:paos:2006-08</Binding>"
PP = "<PathSecurity-Protocol>urn:ietf:rfc:4279</PathSecurity-Protocol>"
PS = "<PathSecurity-Parameters><PSK>00ff</PSK></PathSecurity-Parameters>"


@pytest.mark.parametrize(
    "doc",
    [
        _doc(SI, SA, RA, BI),  # order
        _doc(SA, SI, RA),  # no Binding
        _doc(SA, SI, RA, "<Binding>urn:ietf:rfc:2616</Binding>"),  # other binding
        _doc(SA, SI, RA, BI, "<PathSecurity-Protocol>urn:ietf:rfc:5246</PathSecurity-Protocol>", PS),
        _doc(SA, SI, RA, BI, PP, "<PathSecurity-Parameters><PSK>0ff</PSK></PathSecurity-Parameters>"),  # odd hex
        _doc(SA, SI, RA, BI, PP, "<PathSecurity-Parameters><PSK>zz</PSK></PathSecurity-Parameters>"),
        _doc(SA, SI, RA, BI, PP),  # protocol without parameters
        _doc(SA, SI, RA, BI, PS),  # parameters without protocol
        _doc(SA, "<SessionIdentifier></SessionIdentifier>", RA, BI),
        _doc("<ServerAddress>ftp://e/paos</ServerAddress>", SI, RA, BI),
        _doc(SA, SI, RA, BI, "<Extra/>"),
        _doc(CE, SA, SI, RA, BI),
        _doc(),
        _doc(SA, SI, RA, BI, root='TCTokenType xmlns="urn:x"'),
        _doc(SA, SI, RA, BI, root="TCToken"),
        b'<!DOCTYPE t [<!ENTITY x "y">]><TCTokenType>&x;</TCTokenType>',
        b"<TCTokenType><ServerAddress>",
    ],
)
def test_invalid_tokens_refused(doc: bytes) -> None:
    with pytest.raises(TcTokenError):
        validate_tc_token(doc)


def test_minimal_valid_token_accepted() -> None:
    validate_tc_token(_doc(SA, SI, RA, BI))
    validate_tc_token(_doc(SA, SI, RA, CE, BI, PP, PS))


def test_https_required_on_request() -> None:
    http_token = TcToken("http://127.0.0.1:8080/paos", "abc", "http://127.0.0.1:8080/r")
    data = build_tc_token(http_token)
    assert parse_tc_token(data) == http_token  # loopback tests
    with pytest.raises(TcTokenError):
        validate_tc_token(data, require_https=True)
    validate_tc_token(build_tc_token(TOKEN), require_https=True)


def test_build_refuses_invalid_token() -> None:
    with pytest.raises(TcTokenError):
        build_tc_token(TcToken("https://e/paos", "abc", "https://g/r", psk="xyz"))


@pytest.mark.parametrize(
    ("address", "major", "minor", "expected"),
    [
        ("https://g/r", "ok", None, "https://g/r?ResultMajor=ok"),
        ("https://g/r?ref=abc", "ok", None, "https://g/r?ref=abc&ResultMajor=ok"),
        ("https://g/r?ref=a%2Fb&x=1", "ok", None, "https://g/r?ref=a%2Fb&x=1&ResultMajor=ok"),
        ("https://g/r?ref=abc#top", "ok", None, "https://g/r?ref=abc&ResultMajor=ok#top"),
        (
            "https://g/r?ref=abc",
            "error",
            "cancellationByUser",
            "https://g/r?ref=abc&ResultMajor=error&ResultMinor=cancellationByUser",
        ),
        ("https://g/r", "http://www.bsi.bund.de/ecard/api/1.1/resultmajor#ok", None, "https://g/r?ResultMajor=ok"),
    ],
)
def test_refresh_url(address: str, major: str, minor: str | None, expected: str) -> None:
    assert refresh_url(address, major, minor) == expected


@pytest.mark.parametrize(
    ("major", "minor"), [("ok", "cancellationByUser"), ("error", None), ("error", "wrongPin"), ("warning", None)]
)
def test_refresh_url_refuses_nonsense(major: str, minor: str | None) -> None:
    with pytest.raises(ValueError):
        refresh_url("https://g/r", major, minor)


def test_communication_error_url() -> None:
    assert communication_error_url("https://g/e?ref=1") == (
        "https://g/e?ref=1&ResultMajor=error&ResultMinor=communicationError"
    )
