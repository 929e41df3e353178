"""The minimal inputs behind the undeclared exceptions the parser fuzzing found, one test each: every one
of them escaped as ValueError / OverflowError / a foreign error type before, and is now refused with the
parser's declared error type."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from eid_gateway.backends.saml_interface import SamlInterfaceError, parse_request_extension, result_from_attributes
from eid_gateway.eidserver import datagroups
from eid_gateway.eidserver.cardsecurity import CardSecurityError, parse_card_security
from eid_gateway.frontends.oidc.claims import ClaimsParameterError, parse_claims_parameter
from eid_gateway.kiosks.api import BadMessage, parse_json_body
from eid_gateway.kiosks.auth import parse_basic
from saml import messages as m
from saml.dsig import sign_enveloped, verify_enveloped
from saml.errors import MessageError, MetadataError, SignatureError
from saml.keys import KeyPair, generate_key_pair
from saml.metadata import parse_duration, parse_metadata
from saml.xml import parse_xml, qname, to_bytes
from tr03110.cvc import Chat, CvcFormatError, parse_certificate_description, parse_cvc
from tr03110.security_infos import SecurityInfosError, parse_security_infos

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: A DER length field of eight octets whose value does not fit a machine word: inside an outer value,
#: pyasn1 raises a bare OverflowError for it instead of a PyAsn1Error (pyasn1 issue #107; still so in 0.6.5).
HUGE_LENGTH = b"\x88" + b"\xff" * 8


# --- SAML --------------------------------------------------------------------------------------------------


def _signed_assertion() -> tuple[etree._Element, KeyPair]:
    key = generate_key_pair("ec-p256", "regression")
    el = m.build_assertion(
        m.Assertion(issuer="https://idp.example", id="_a1", issue_instant=NOW, subject=m.Subject(m.NameID("n")))
    )
    sign_enveloped(el, key)
    return el, key


def test_non_ascii_digest_value_is_a_bad_signature() -> None:
    """A DigestValue holding "é" made base64 raise ValueError (not binascii.Error) on the failure path."""
    el, key = _signed_assertion()
    digest = el.find(f".//{qname('ds', 'DigestValue')}")
    assert digest is not None
    digest.text = "\u00e9"
    with pytest.raises(SignatureError):
        verify_enveloped(parse_xml(to_bytes(el)), [key.certificate])


def test_non_ascii_keyinfo_certificate_is_only_a_hint() -> None:
    """KeyInfo only orders several trusted keys; an unreadable certificate in it is skipped, not a crash."""
    el, key = _signed_assertion()
    cert = el.find(f".//{qname('ds', 'X509Certificate')}")
    assert cert is not None
    cert.text = "\u00e9"
    other = generate_key_pair("ec-p256", "another trusted key")
    verified = verify_enveloped(parse_xml(to_bytes(el)), [other.certificate, key.certificate])
    assert verified.get("ID") == "_a1"


@pytest.mark.parametrize("text", ["P99999999999999999Y", "PT" + "1" + "0" * 400 + "S", "P" + "9" * 5000 + "D"])
def test_cache_duration_out_of_range(text: str) -> None:
    with pytest.raises(MetadataError):
        parse_duration(text)


def test_instant_before_year_one_in_utc() -> None:
    with pytest.raises(MessageError, match="out of range"):
        m.parse_datetime("0001-01-01T00:00:00+01:00")
    doc = (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x" '
        'validUntil="0001-01-01T00:00:00+01:00"/>'
    )
    with pytest.raises(MetadataError):
        parse_metadata(doc.encode(), now=NOW)


@pytest.mark.parametrize("index", ["\u00b2", "9" * 5000, "65536"])
def test_acs_index_must_be_an_ascii_unsigned_short(index: str) -> None:
    """ "²".isdigit() is True, but int("²") raises ValueError; 5000 digits exceed int()'s limit."""
    doc = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Version="2.0" '
        f'IssueInstant="2026-03-01T12:00:00Z" AssertionConsumerServiceIndex="{index}">'
        "<saml:Issuer>https://sp.example</saml:Issuer></samlp:AuthnRequest>"
    )
    with pytest.raises(MessageError):
        m.parse_authn_request(parse_xml(doc.encode()))
    metadata = (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x">'
        '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'<md:AssertionConsumerService Binding="b" Location="https://sp.example/acs" index="{index}"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )
    with pytest.raises(MetadataError):
        parse_metadata(metadata.encode(), now=NOW)


def test_acs_index_still_read() -> None:
    doc = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Version="2.0" '
        'IssueInstant="2026-03-01T12:00:00Z" AssertionConsumerServiceIndex="65535">'
        "<saml:Issuer>https://sp.example</saml:Issuer></samlp:AuthnRequest>"
    )
    assert m.parse_authn_request(parse_xml(doc.encode())).acs_index == 65535


# --- DER: pyasn1's OverflowError -----------------------------------------------------------------------------


def test_huge_der_length_in_cv_certificate_parts() -> None:
    with pytest.raises(CvcFormatError):  # 7F21 { 7F4E { profile 00, CAR with the huge length } }
        parse_cvc(b"\x7f\x21\x11\x7f\x4e\x0e\x5f\x29\x01\x00\x42" + HUGE_LENGTH)
    with pytest.raises(CvcFormatError):  # 7F4C { OID with the huge length }
        Chat.decode(b"\x7f\x4c\x0a\x06" + HUGE_LENGTH)
    with pytest.raises(CvcFormatError):
        parse_certificate_description(b"\x30\x0a\x06" + HUGE_LENGTH)


def test_huge_der_length_in_security_infos() -> None:
    with pytest.raises(SecurityInfosError):  # SET { SEQUENCE { OID with the huge length } }
        parse_security_infos(b"\x31\x0c\x30\x0a\x06" + HUGE_LENGTH)
    with pytest.raises(CardSecurityError):
        parse_card_security(b"\x30\x0a\x06" + HUGE_LENGTH)


def test_huge_der_length_in_a_data_group() -> None:
    with pytest.raises(datagroups.DataGroupError):
        datagroups.decode(2, b"\x62\x03\x13" + HUGE_LENGTH + b"D")


def test_data_group_date_the_date_parser_refuses() -> None:
    """DG3 "2029103/" decoded fine as DER, then parse_lenient_date raised its own InvalidValueError."""
    with pytest.raises(datagroups.DataGroupError):
        datagroups.decode(3, b"\x63\x0a\x12\x08" + b"2029103/")


# --- JSON --------------------------------------------------------------------------------------------------


def test_deeply_nested_kiosk_body() -> None:
    """json.loads raises RecursionError (not ValueError) for "[[[[...": the kiosk API answered 500."""
    with pytest.raises(BadMessage):
        parse_json_body(b"[" * 10_000)


def test_non_ascii_basic_auth_header() -> None:
    """b64decode raises a plain ValueError for non-ASCII text: the staff dashboard answered 500."""
    assert parse_basic("Basic \u00e9") is None


def test_deeply_nested_oidc_claims_parameter() -> None:
    with pytest.raises(ClaimsParameterError):
        parse_claims_parameter("[" * 4000)


# --- eID-Server SAML interface ------------------------------------------------------------------------------


def test_deeply_nested_place_attribute() -> None:
    with pytest.raises(SamlInterfaceError):
        result_from_attributes({"DocumentValidity": ["valid"], "PlaceOfBirth": ["[" * 5000]})


@pytest.mark.parametrize("age", ["\u00b2", "9" * 5000])
def test_requested_age_must_be_ascii_digits(age: str) -> None:
    doc = (
        '<eid:AuthnRequestExtension xmlns:eid="http://bsi.bund.de/eID/" '
        'xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" Version="2"><eid:RequestedAttributes>'
        '<saml2:Attribute Name="AgeVerification" eid:RequiredAttribute="true">'
        f"<saml2:AttributeValue>{age}</saml2:AttributeValue></saml2:Attribute>"
        "</eid:RequestedAttributes></eid:AuthnRequestExtension>"
    )
    with pytest.raises(SamlInterfaceError):
        parse_request_extension(parse_xml(doc.encode()))
    assert parse_request_extension(parse_xml(doc.replace(age, "18").encode())).age == 18
