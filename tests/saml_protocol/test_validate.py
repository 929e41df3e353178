"""ResponseValidator: round trips, each protocol check, and the signature-wrapping catalogue.

Every attack test is named after the attack and asserts the specific exception type it must raise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta

import pytest
from lxml import etree

from saml import dsig
from saml import messages as m
from saml import validate as v
from saml.errors import MessageError
from saml.keys import KeyPair
from saml.validate import ResponseValidator
from saml.xml import parse_xml, qname, to_bytes

from .conftest import ACS, IDP, NOW, SP, Factory, Parts

MakeValidator = Callable[..., ResponseValidator]
A = qname("saml", "Assertion")
SIG = qname("ds", "Signature")


def _assertion(resp: etree._Element) -> etree._Element:
    a = resp.find(A)
    assert a is not None
    return a


def _evil_copy(original: etree._Element, *, keep_signature: bool) -> etree._Element:
    """A copy of the assertion with another subject (and ID): what the attacker wants to be read."""
    evil = copy.deepcopy(original)
    evil.set("ID", m.new_id())
    name_id = evil.find(f"{qname('saml', 'Subject')}/{qname('saml', 'NameID')}")
    assert name_id is not None
    name_id.text = "admin@city.de"
    if not keep_signature:
        for sig in evil.findall(SIG):
            evil.remove(sig)
    return evil


def _unsigned(el: etree._Element) -> etree._Element:
    """A copy of ``el`` without its enveloped Signature."""
    stripped = copy.deepcopy(el)
    stripped.remove(stripped.find(SIG))  # type: ignore[arg-type]
    return stripped


def _hide_in_extensions(resp: etree._Element, el: etree._Element) -> None:
    """Put ``el`` into a samlp:Extensions right after the Response's Issuer."""
    ext = etree.Element(qname("samlp", "Extensions"))
    ext.append(el)
    resp.find(qname("saml", "Issuer")).addnext(ext)  # type: ignore[union-attr]


def _evil_in_place(factory: Factory) -> tuple[etree._Element, etree._Element, etree._Element]:
    """(response, original, evil): the signed assertion replaced by an evil copy carrying its signature."""
    resp = factory.response_element()
    original = _assertion(resp)
    evil = _evil_copy(original, keep_signature=True)
    resp.replace(original, evil)
    return resp, original, evil


def _cloned_response(factory: Factory) -> tuple[etree._Element, etree._Element, etree._Element]:
    """(original, evil, signature): a Response signed as a whole, and its clone under a new ID whose
    assertion is an evil copy, still carrying the original's Response signature (XSW1, XSW2)."""
    original = factory.response_element(sign_assertion=False, sign_response=True)
    evil = copy.deepcopy(original)
    evil.set("ID", m.new_id())
    evil.replace(_assertion(evil), _evil_copy(_assertion(evil), keep_signature=False))
    sig = evil.find(SIG)
    assert sig is not None
    return original, evil, sig


def _xml(el: etree._Element) -> bytes:
    return to_bytes(el)


# ------------------------------------------------------------------------------------------ round trips ---


def test_signed_assertion_round_trip(factory: Factory, make_validator: MakeValidator) -> None:
    result = make_validator().validate(factory.response(), now=NOW)
    assert result.name_id == m.NameID("user@city.de", m.NAMEID_TRANSIENT, sp_name_qualifier=SP)
    assert result.in_response_to == Parts().request_id
    assert result.session_index == "_s1"
    assert result.authn_instant == NOW
    assert result.authn_context == m.AC_SMARTCARD_PKI
    assert result.attributes == {
        "urn:oid:2.5.4.42": ["ERIKA"],
        "urn:oid:0.9.2342.19200300.100.1.3": ["a@x.de", "b@x.de"],
    }
    assert (result.response_signed, result.assertion_signed, result.encrypted) == (False, True, False)


def test_signed_and_encrypted_assertion_round_trip(factory: Factory, make_validator: MakeValidator) -> None:
    xml = factory.response(encrypt=True, sign_response=True)
    assert b"user@city.de" not in xml and b"EncryptedAssertion" in xml
    result = make_validator(require_signed_response=True).validate(xml, now=NOW)
    assert result.name_id.value == "user@city.de"
    assert (result.response_signed, result.assertion_signed, result.encrypted) == (True, True, True)


def test_signed_response_with_unsigned_assertion(factory: Factory, make_validator: MakeValidator) -> None:
    xml = factory.response(sign_assertion=False, sign_response=True)
    result = make_validator(require_signed_response=True, require_signed_assertion=False).validate(xml, now=NOW)
    assert (result.response_signed, result.assertion_signed) == (True, False)
    with pytest.raises(dsig.MissingSignature, match="Assertion is not signed"):
        make_validator().validate(xml, now=NOW)


def test_validator_from_metadata_and_config_checks(idp_key: KeyPair) -> None:
    from saml.metadata import Endpoint, EntityDescriptor, IDPSSODescriptor, KeyDescriptor

    md = EntityDescriptor(
        IDP,
        idp=IDPSSODescriptor(
            (Endpoint(m.BINDING_HTTP_POST, "https://idp/sso"),), keys=(KeyDescriptor(idp_key.certificate, "signing"),)
        ),
    )
    validator = ResponseValidator.from_metadata(md, sp_entity_id=SP, acs_url=ACS)
    assert validator.idp_certs == (idp_key.certificate,) and validator.idp_entity_id == IDP
    with pytest.raises(ValueError, match="at least one"):
        ResponseValidator(
            sp_entity_id=SP,
            acs_url=ACS,
            idp_entity_id=IDP,
            idp_certs=[idp_key.certificate],
            require_signed_assertion=False,
        )


def test_encrypted_assertion_without_decryption_key(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.DecryptionNotConfigured):
        make_validator(decryption_keys=()).validate(factory.response(encrypt=True), now=NOW)


def test_plain_assertion_when_encryption_required(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.DecryptionNotConfigured, match="not encrypted"):
        make_validator(require_encrypted_assertion=True).validate(factory.response(), now=NOW)


# ---------------------------------------------------------------------------------------- protocol checks ---


def test_status_error_carries_the_codes(factory: Factory, make_validator: MakeValidator) -> None:
    p = Parts(status=m.Status(m.STATUS_RESPONDER, m.STATUS_AUTHN_FAILED, "cancelled by user"))
    validator = make_validator()
    with pytest.raises(v.StatusError) as info:
        validator.validate(factory.response(p), now=NOW)
    assert info.value.status.code == m.STATUS_RESPONDER
    assert info.value.status.sub_code == m.STATUS_AUTHN_FAILED
    assert m.STATUS_AUTHN_FAILED in str(info.value)
    # the error answer used up the request
    assert not validator.request_store.consume(p.request_id or "", now=NOW)


def test_expired_assertion(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.Expired):
        make_validator().validate(factory.response(), now=NOW + timedelta(minutes=6, seconds=1))


def test_clock_skew_tolerated(factory: Factory, make_validator: MakeValidator) -> None:
    make_validator().validate(factory.response(), now=NOW + timedelta(minutes=5, seconds=59))


def test_not_yet_valid_assertion(factory: Factory, make_validator: MakeValidator) -> None:
    p = Parts(not_before=NOW + timedelta(minutes=3))
    with pytest.raises(v.NotYetValid):
        make_validator().validate(factory.response(p), now=NOW)


def test_wrong_audience(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.AudienceMismatch):
        make_validator().validate(factory.response(Parts(audience="https://other.example/sp")), now=NOW)


def test_wrong_destination(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.DestinationMismatch):
        make_validator().validate(factory.response(Parts(destination=ACS + "/other")), now=NOW)


def test_signed_response_without_destination(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.DestinationMismatch, match="no Destination"):
        make_validator().validate(factory.response(Parts(destination=None), sign_response=True), now=NOW)


def test_wrong_recipient(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.RecipientMismatch):
        make_validator().validate(factory.response(Parts(recipient="https://evil.example/acs")), now=NOW)


def test_wrong_issuer(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.IssuerMismatch):
        make_validator().validate(
            factory.response(Parts(issuer="https://evil.example/idp", response_issuer=None)), now=NOW
        )
    with pytest.raises(v.IssuerMismatch):
        make_validator().validate(factory.response(Parts(response_issuer="https://evil.example/idp")), now=NOW)


def test_replayed_assertion_id(factory: Factory, make_validator: MakeValidator) -> None:
    validator = make_validator(allow_unsolicited=True)
    xml = factory.response(Parts(request_id=None))
    validator.validate(xml, now=NOW)
    with pytest.raises(v.ReplayedAssertion):
        validator.validate(xml, now=NOW + timedelta(seconds=10))


def test_unsolicited_response_refused_by_default(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.UnsolicitedResponse):
        make_validator().validate(factory.response(Parts(request_id=None)), now=NOW)


def test_in_response_to_unknown(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.InResponseToMismatch):
        make_validator().validate(factory.response(Parts(request_id="_never_sent")), now=NOW)


def test_in_response_to_reused(factory: Factory, make_validator: MakeValidator) -> None:
    validator = make_validator()
    validator.validate(factory.response(), now=NOW)
    # a second, fresh and correctly signed response to the same request
    with pytest.raises(v.InResponseToMismatch):
        validator.validate(factory.response(), now=NOW)


def test_in_response_to_differs_between_response_and_assertion(factory: Factory, make_validator: MakeValidator) -> None:
    resp = factory.response_element()
    resp.set("InResponseTo", "_another_request")
    validator = make_validator()
    validator.request_store.add("_another_request", expires_at=NOW + timedelta(minutes=5))
    with pytest.raises(v.InResponseToMismatch, match="different requests"):
        validator.validate(_xml(resp), now=NOW)


def test_missing_bearer_confirmation(factory: Factory, make_validator: MakeValidator) -> None:
    a = factory.assertion(Parts())
    a = m.Assertion(
        **{**a.__dict__, "subject": m.Subject(a.subject.name_id, (m.SubjectConfirmation(method="urn:x:holder"),))}
    )
    el = m.build_assertion(a)
    m.sign_message(el, factory.idp_key)
    xml = factory.response(assertions=[el])
    with pytest.raises(v.NoBearerConfirmation):
        make_validator().validate(xml, now=NOW)


def test_response_issue_instant_in_future(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.NotYetValid):
        make_validator().validate(factory.response(), now=NOW - timedelta(minutes=5))


# ------------------------------------------------------------------------------------ attacks: signatures ---


def test_signature_removed(factory: Factory, make_validator: MakeValidator) -> None:
    resp = factory.response_element()
    a = _assertion(resp)
    a.remove(a.find(SIG))  # type: ignore[arg-type]
    with pytest.raises(dsig.MissingSignature):
        make_validator().validate(_xml(resp), now=NOW)
    with pytest.raises(dsig.MissingSignature, match="Response is not signed"):
        make_validator(require_signed_assertion=False, require_signed_response=True).validate(_xml(resp), now=NOW)


def test_signature_by_untrusted_key(factory: Factory, make_validator: MakeValidator, other_key: KeyPair) -> None:
    xml = factory.response(assertions=[factory.assertion_element(Parts(), key=other_key)])
    with pytest.raises(dsig.UntrustedKey):
        make_validator().validate(xml, now=NOW)


def test_tampered_signed_assertion(factory: Factory, make_validator: MakeValidator) -> None:
    xml = factory.response().replace(b"user@city.de", b"admin@city.de")
    with pytest.raises(dsig.BadSignature) as info:
        make_validator().validate(xml, now=NOW)
    assert not isinstance(info.value, dsig.UntrustedKey)


def test_two_assertions(factory: Factory, make_validator: MakeValidator) -> None:
    resp = factory.response_element()
    resp.append(factory.assertion_element(Parts()))
    with pytest.raises(v.AssertionCountError):
        make_validator().validate(_xml(resp), now=NOW)


def test_no_assertion(factory: Factory, make_validator: MakeValidator) -> None:
    with pytest.raises(v.AssertionCountError):
        make_validator().validate(factory.response(assertions=[]), now=NOW)


def test_comment_inside_name_id_yields_whole_text(factory: Factory, make_validator: MakeValidator) -> None:
    xml = factory.response(Parts(name_id="user@city.de.evil.com"))
    tampered = xml.replace(b"user@city.de.evil.com", b"user@city.de<!---->.evil.com")
    assert tampered != xml
    result = make_validator().validate(tampered, now=NOW)
    assert result.name_id.value == "user@city.de.evil.com"


def test_child_element_inside_name_id_refused(factory: Factory, make_validator: MakeValidator) -> None:
    # The IdP signed a NameID holding markup; reading only the leading text would be the truncation bug.
    a = factory.assertion_element(Parts(), sign=False)
    name_id = a.find(f"{qname('saml', 'Subject')}/{qname('saml', 'NameID')}")
    assert name_id is not None
    name_id.text = "user@city.de"
    etree.SubElement(name_id, "{urn:x}b").tail = ".evil.com"
    m.sign_message(a, factory.idp_key)
    with pytest.raises(MessageError, match="NameID must contain only text"):
        make_validator().validate(factory.response(assertions=[a]), now=NOW)


# ------------------------------------------------------------------------------ attacks: XSW catalogue ---


def test_xsw1_cloned_response_with_original_in_signature_object(
    factory: Factory, make_validator: MakeValidator
) -> None:
    original, evil, sig = _cloned_response(factory)
    obj = etree.SubElement(sig, qname("ds", "Object"))
    obj.append(_unsigned(original))
    with pytest.raises(dsig.MalformedSignature):
        make_validator(require_signed_response=True, require_signed_assertion=False).validate(_xml(evil), now=NOW)


def test_xsw2_cloned_response_with_original_before_detached_signature(
    factory: Factory, make_validator: MakeValidator
) -> None:
    original, evil, sig = _cloned_response(factory)
    sig.addprevious(_unsigned(original))
    with pytest.raises(dsig.ReferenceMismatch):
        make_validator(require_signed_response=True, require_signed_assertion=False).validate(_xml(evil), now=NOW)


@pytest.mark.parametrize(
    "keep_signature",
    [False, True],
    ids=["xsw3_evil_assertion_before_the_signed_one", "xsw5_copied_signature_with_original_after"],
)
def test_xsw3_xsw5_evil_assertion_before_the_signed_one(
    factory: Factory, make_validator: MakeValidator, keep_signature: bool
) -> None:
    """XSW3 puts an unsigned evil copy before the signed assertion, XSW5 one carrying the copied signature."""
    resp = factory.response_element()
    original = _assertion(resp)
    original.addprevious(_evil_copy(original, keep_signature=keep_signature))
    with pytest.raises(v.AssertionCountError):
        make_validator().validate(_xml(resp), now=NOW)


def test_xsw4_evil_assertion_wrapping_the_signed_one(factory: Factory, make_validator: MakeValidator) -> None:
    resp = factory.response_element()
    original = _assertion(resp)
    evil = _evil_copy(original, keep_signature=False)
    evil.append(original)  # moves the signed assertion inside the evil one
    resp.append(evil)
    with pytest.raises(dsig.MissingSignature):
        make_validator().validate(_xml(resp), now=NOW)


def test_xsw5b_copied_signature_with_original_hidden_in_extensions(
    factory: Factory, make_validator: MakeValidator
) -> None:
    resp, original, evil = _evil_in_place(factory)
    _hide_in_extensions(resp, original)
    with pytest.raises(dsig.ReferenceMismatch):
        make_validator().validate(_xml(resp), now=NOW)


@pytest.mark.parametrize(
    "unsigned",
    [False, True],
    ids=[
        "xsw6_original_assertion_inside_copied_signature_object",
        "xsw8_evil_assertion_with_signature_object_holding_original",
    ],
)
def test_xsw6_xsw8_original_assertion_inside_the_copied_signatures_object(
    factory: Factory, make_validator: MakeValidator, unsigned: bool
) -> None:
    """The evil assertion carries the copied signature; a ds:Object in it holds the original (XSW6) or the
    original without its signature (XSW8)."""
    resp, original, evil = _evil_in_place(factory)
    obj = etree.SubElement(evil.find(SIG), qname("ds", "Object"))  # type: ignore[arg-type]
    obj.append(_unsigned(original) if unsigned else original)
    with pytest.raises(dsig.MalformedSignature):
        make_validator().validate(_xml(resp), now=NOW)


def test_xsw7_evil_assertion_in_extensions_is_never_read(factory: Factory, make_validator: MakeValidator) -> None:
    resp = factory.response_element()
    original = _assertion(resp)
    _hide_in_extensions(resp, _evil_copy(original, keep_signature=False))
    result = make_validator().validate(_xml(resp), now=NOW)
    assert result.name_id.value == "user@city.de"  # the signed one, not the wrapped evil copy


def test_xsw_duplicate_id_evil_assertion_takes_the_signed_id(factory: Factory, make_validator: MakeValidator) -> None:
    resp, original, evil = _evil_in_place(factory)
    evil.set("ID", original.get("ID") or "")
    _hide_in_extensions(resp, original)
    with pytest.raises(dsig.DuplicateId):
        make_validator().validate(_xml(resp), now=NOW)


def test_xsw_signature_copied_from_another_signed_assertion(factory: Factory, make_validator: MakeValidator) -> None:
    resp = factory.response_element()
    original = _assertion(resp)
    other = factory.assertion_element(Parts(name_id="someone@city.de"))
    evil = _evil_copy(original, keep_signature=False)
    sig = other.find(SIG)
    assert sig is not None
    evil.find(qname("saml", "Issuer")).addnext(sig)  # type: ignore[union-attr]
    resp.replace(original, evil)
    with pytest.raises(dsig.ReferenceMismatch):
        make_validator().validate(_xml(resp), now=NOW)


def test_xsw_signed_response_evil_assertion_appended(factory: Factory, make_validator: MakeValidator) -> None:
    resp = factory.response_element(sign_assertion=False, sign_response=True)
    resp.append(_evil_copy(_assertion(resp), keep_signature=False))
    with pytest.raises(dsig.BadSignature):
        make_validator(require_signed_response=True, require_signed_assertion=False).validate(_xml(resp), now=NOW)


def test_parse_once_document_with_doctype_refused(factory: Factory, make_validator: MakeValidator) -> None:
    from saml.errors import XmlSecurityError

    xml = b'<!DOCTYPE r [<!ENTITY e "x">]>' + factory.response()
    with pytest.raises(XmlSecurityError):
        make_validator().validate(xml, now=NOW)


def test_not_a_response(make_validator: MakeValidator) -> None:
    with pytest.raises(MessageError, match="not a samlp:Response"):
        make_validator().validate(b"<x/>", now=NOW)


# --------------------------------------------------------------------------------------- IdP side ---


def test_verify_authn_request_post_binding(other_key: KeyPair) -> None:
    sp_key = other_key
    req = m.AuthnRequest(issuer=SP, issue_instant=NOW, destination="https://idp/sso", acs_url=ACS)
    el = m.build_authn_request(req)
    m.sign_message(el, sp_key)
    xml = to_bytes(el)
    from saml.stores import InMemoryReplayCache

    cache = InMemoryReplayCache()
    kw = dict(
        trusted=[sp_key.certificate], destination="https://idp/sso", sp_entity_id=SP, acs_urls=[ACS], replay_cache=cache
    )
    parsed = v.verify_authn_request(parse_xml(xml), now=NOW, **kw)  # type: ignore[arg-type]
    assert parsed == req
    with pytest.raises(v.ReplayedRequest):
        v.verify_authn_request(parse_xml(xml), now=NOW, **kw)  # type: ignore[arg-type]
    with pytest.raises(v.Expired):
        v.verify_authn_request(parse_xml(xml), now=NOW + timedelta(minutes=7), **{**kw, "replay_cache": None})  # type: ignore[arg-type]
    with pytest.raises(v.DestinationMismatch):
        v.verify_authn_request(
            parse_xml(xml),
            now=NOW,
            **{
                **kw,
                "replay_cache": None,  # type: ignore[arg-type]
                "destination": "https://idp/other",
            },
        )
    with pytest.raises(v.AcsUrlMismatch):
        v.verify_authn_request(
            parse_xml(xml),
            now=NOW,
            **{
                **kw,
                "replay_cache": None,  # type: ignore[arg-type]
                "acs_urls": ["https://x/acs"],
            },
        )
    unsigned = m.build_authn_request(req)
    with pytest.raises(dsig.MissingSignature):
        v.verify_authn_request(parse_xml(to_bytes(unsigned)), now=NOW, **{**kw, "replay_cache": None})  # type: ignore[arg-type]
    tampered = xml.replace(ACS.encode(), b"https://evil.example/acs")
    with pytest.raises(dsig.BadSignature):
        v.verify_authn_request(parse_xml(tampered), now=NOW, **{**kw, "replay_cache": None})  # type: ignore[arg-type]
