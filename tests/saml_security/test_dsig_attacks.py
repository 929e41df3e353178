"""Attacks on enveloped XML signatures; each test is named after the attack and expects its error type."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import xmlsec
from lxml import etree

from saml import algorithms as A
from saml import dsig
from saml.errors import SignatureError
from saml.keys import KeyPair, WeakKeyError
from saml.xml import parse_xml, to_bytes

from .conftest import DS, SAML, raw_sign

ENV = (A.ENVELOPED, A.EXC_C14N)


def _signed(response: etree._Element, key: KeyPair, part: etree._Element | None = None) -> etree._Element:
    """The response, reparsed, after ``part`` (the response itself unless given) was signed enveloped."""
    target = response if part is None else part
    dsig.sign_enveloped(target, key, insert_after=target[0])
    return parse_xml(to_bytes(response))


def _raw_signed(response: etree._Element, key: KeyPair, *args: Any, **kwargs: Any) -> etree._Element:
    """The response, reparsed, after :func:`raw_sign` (any algorithm, transform, URI) put a signature in."""
    raw_sign(response, key, *args, **kwargs)
    return parse_xml(to_bytes(response))


def _assertion(doc: etree._Element) -> etree._Element:
    found = doc.find(f".//{{{SAML}}}Assertion")
    assert found is not None
    return found


def test_signature_removed(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _signed(response, rsa3072)
    doc.remove(doc[1])
    with pytest.raises(dsig.MissingSignature):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_signature_from_another_key(response: etree._Element, rsa3072: KeyPair, rsa3072_attacker: KeyPair) -> None:
    doc = _signed(response, rsa3072_attacker)
    with pytest.raises(dsig.UntrustedKey):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_keyinfo_with_attacker_self_signed_certificate(
    response: etree._Element, ec256: KeyPair, ec256_attacker: KeyPair
) -> None:
    # Genuine signature by the attacker, whose certificate (same subject name) travels in KeyInfo.
    dsig.sign_enveloped(response, ec256_attacker, insert_after=response[0], include_certificate=True)
    doc = parse_xml(to_bytes(response))
    assert doc.find(f".//{{{DS}}}X509Certificate") is not None
    with pytest.raises(dsig.UntrustedKey):
        dsig.verify_enveloped(doc, [ec256.certificate])


def test_content_altered_after_signing(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _signed(response, rsa3072)
    name_id = doc.find(f".//{{{SAML}}}NameID")
    assert name_id is not None
    name_id.text = "someone-else"
    with pytest.raises(dsig.BadSignature) as info:
        dsig.verify_enveloped(doc, [rsa3072.certificate])
    assert not isinstance(info.value, dsig.UntrustedKey)


def test_signature_value_altered(response: etree._Element, ec256: KeyPair) -> None:
    doc = _signed(response, ec256)
    value = doc.find(f".//{{{DS}}}SignatureValue")
    assert value is not None and value.text
    value.text = ("B" if value.text[0] == "A" else "A") + value.text[1:]
    with pytest.raises(dsig.UntrustedKey):  # content intact, signature not made by the trusted key
        dsig.verify_enveloped(doc, [ec256.certificate])


def test_wrapping_signed_element_moved_evil_in_place(response: etree._Element, rsa3072: KeyPair) -> None:
    """XSW: the signed assertion moves into an extension, an evil one (own ID) carries the signature."""
    doc = _signed(response, rsa3072, part=_assertion(response))
    original = _assertion(doc)
    evil = copy.deepcopy(original)
    evil.set("ID", "_evil")
    evil.find(f".//{{{SAML}}}NameID").text = "admin"  # type: ignore[union-attr]
    ext = etree.SubElement(doc, "{urn:oasis:names:tc:SAML:2.0:protocol}Extensions")
    doc.replace(original, evil)
    ext.append(original)
    # The signature copied into the evil assertion still points at "#_assert1".
    with pytest.raises(dsig.ReferenceMismatch):
        dsig.verify_enveloped(evil, [rsa3072.certificate])
    # And the original (now hidden in Extensions) still verifies, returning itself: never the evil one.
    assert dsig.verify_enveloped(original, [rsa3072.certificate]) is original


def test_wrapping_evil_element_reuses_signed_id(response: etree._Element, rsa3072: KeyPair) -> None:
    """XSW: the evil assertion takes the signed ID, the original stays in the document elsewhere."""
    doc = _signed(response, rsa3072, part=_assertion(response))
    original = _assertion(doc)
    evil = copy.deepcopy(original)
    evil.find(f".//{{{SAML}}}NameID").text = "admin"  # type: ignore[union-attr]
    doc.append(evil)
    with pytest.raises(dsig.DuplicateId):
        dsig.verify_enveloped(evil, [rsa3072.certificate])
    with pytest.raises(dsig.DuplicateId):
        dsig.verify_enveloped(original, [rsa3072.certificate])


def test_wrapping_original_in_signature_object(response: etree._Element, rsa3072: KeyPair) -> None:
    """XSW (ds:Object variant): the original hides inside the signature, the evil one takes its ID."""
    doc = _signed(response, rsa3072, part=_assertion(response))
    original = _assertion(doc)
    sig = original.find(f"{{{DS}}}Signature")
    assert sig is not None
    index = doc.index(original)
    evil = copy.deepcopy(original)
    evil.remove(evil.find(f"{{{DS}}}Signature"))  # type: ignore[arg-type]
    evil.find(f".//{{{SAML}}}NameID").text = "admin"  # type: ignore[union-attr]
    doc.remove(original)
    original.remove(sig)
    etree.SubElement(sig, f"{{{DS}}}Object").append(original)
    evil.insert(1, sig)
    doc.insert(index, evil)
    with pytest.raises(dsig.MalformedSignature):
        dsig.verify_enveloped(evil, [rsa3072.certificate])


def test_wrapping_evil_replaces_signed_same_id(response: etree._Element, rsa3072: KeyPair) -> None:
    """The evil assertion takes ID and signature, the original is gone: the digest no longer matches."""
    doc = _signed(response, rsa3072, part=_assertion(response))
    _assertion(doc).find(f".//{{{SAML}}}NameID").text = "admin"  # type: ignore[union-attr]
    with pytest.raises(dsig.BadSignature):
        dsig.verify_enveloped(_assertion(doc), [rsa3072.certificate])


def test_two_references(response: etree._Element, rsa3072: KeyPair) -> None:
    assertion = _assertion(response)
    doc = _raw_signed(
        response, rsa3072, [("#_resp1", ENV), ("#_assert1", (A.EXC_C14N,))], register=[response, assertion]
    )
    with pytest.raises(dsig.ReferenceMismatch):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_reference_to_another_element(response: etree._Element, rsa3072: KeyPair) -> None:
    """The response carries a genuine signature, but it covers the assertion, not the response."""
    assertion = _assertion(response)
    doc = _raw_signed(response, rsa3072, [("#_assert1", (A.EXC_C14N,))], register=[assertion])
    with pytest.raises(dsig.ReferenceMismatch):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_empty_reference_uri(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _raw_signed(response, rsa3072, [("", ENV)])
    with pytest.raises(dsig.ReferenceMismatch):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_xpointer_reference_uri(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _raw_signed(response, rsa3072, [("#xpointer(id('_resp1'))", ENV)], register=[response])
    with pytest.raises(dsig.ReferenceMismatch):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_signature_not_direct_child(response: etree._Element, rsa3072: KeyPair) -> None:
    """A valid signature over the response, hidden one level down, does not sign the response."""
    assertion = _assertion(response)
    raw_sign(assertion, rsa3072, [("#_resp1", (A.EXC_C14N,))], register=[response])
    doc = parse_xml(to_bytes(response))
    with pytest.raises(dsig.MissingSignature):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_two_signatures(response: etree._Element, rsa3072: KeyPair) -> None:
    dsig.sign_enveloped(response, rsa3072)
    doc = _raw_signed(response, rsa3072, [("#_resp1", ENV)], register=[response], position=2)
    with pytest.raises(dsig.MultipleSignatures):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_xslt_transform(response: etree._Element, rsa3072: KeyPair) -> None:
    xsl = etree.fromstring(
        b'<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0">'
        b'<xsl:template match="/"><x/></xsl:template></xsl:stylesheet>'
    )
    references = [("#_resp1", (A.ENVELOPED, A.XSLT, A.EXC_C14N))]
    doc = _raw_signed(response, rsa3072, references, register=[response], transform_children={A.XSLT: xsl})
    with pytest.raises(dsig.ForbiddenTransform):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_xpath_transform(response: etree._Element, rsa3072: KeyPair) -> None:
    xpath = etree.Element(f"{{{DS}}}XPath")
    xpath.text = "not(ancestor-or-self::*[local-name()='NameID'])"
    references = [("#_resp1", (A.ENVELOPED, A.XPATH, A.EXC_C14N))]
    doc = _raw_signed(response, rsa3072, references, register=[response], transform_children={A.XPATH: xpath})
    # The XPath excluded the NameID from the digest: with the transform honoured, this would verify.
    doc.find(f".//{{{SAML}}}NameID").text = "admin"  # type: ignore[union-attr]
    with pytest.raises(dsig.ForbiddenTransform):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


@pytest.mark.parametrize(
    ("transforms", "options", "error"),
    [
        pytest.param((A.ENVELOPED,), {}, dsig.ForbiddenTransform, id="missing_exclusive_c14n_transform"),
        pytest.param(ENV, {"c14n": A.C14N}, dsig.ForbiddenAlgorithm, id="inclusive_c14n_refused"),
        pytest.param(ENV, {"digest": A.SHA1}, dsig.ForbiddenAlgorithm, id="sha1_digest"),
    ],
)
def test_weak_canonicalization_or_digest(
    response: etree._Element,
    rsa3072: KeyPair,
    transforms: tuple[str, ...],
    options: dict[str, str],
    error: type[Exception],
) -> None:
    doc = _raw_signed(response, rsa3072, [("#_resp1", transforms)], register=[response], **options)
    with pytest.raises(error):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_rsa_sha1_signature(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _raw_signed(response, rsa3072, [("#_resp1", ENV)], register=[response], signature_method=A.RSA_SHA1)
    with pytest.raises(dsig.ForbiddenAlgorithm):
        dsig.verify_enveloped(doc, [rsa3072.certificate])
    with pytest.raises(dsig.ForbiddenAlgorithm):  # not even the legacy policy accepts SHA-1
        dsig.verify_enveloped(doc, [rsa3072.certificate], policy=A.LEGACY_POLICY)


def test_hmac_signature_method(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _raw_signed(response, rsa3072, [("#_resp1", ENV)], register=[response])
    doc.find(f".//{{{DS}}}SignatureMethod").set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256")  # type: ignore[union-attr]
    with pytest.raises(dsig.ForbiddenAlgorithm):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_rsa1024_key(response: etree._Element, rsa1024: KeyPair) -> None:
    doc = _raw_signed(response, rsa1024, [("#_resp1", ENV)], register=[response])
    with pytest.raises(WeakKeyError):
        dsig.verify_enveloped(doc, [rsa1024.certificate])
    with pytest.raises(WeakKeyError):
        dsig.verify_enveloped(doc, [rsa1024.certificate], policy=A.LEGACY_POLICY)


def test_rsa2048_key_refused_by_default(response: etree._Element, rsa2048: KeyPair) -> None:
    doc = _raw_signed(response, rsa2048, [("#_resp1", ENV)], register=[response])
    with pytest.raises(WeakKeyError):
        dsig.verify_enveloped(doc, [rsa2048.certificate])
    assert dsig.verify_enveloped(doc, [rsa2048.certificate], policy=A.LEGACY_POLICY) is doc


def test_we_do_not_sign_with_weak_keys_or_sha1(response: etree._Element, rsa2048: KeyPair, rsa3072: KeyPair) -> None:
    with pytest.raises(WeakKeyError):
        dsig.sign_enveloped(response, rsa2048)
    with pytest.raises(dsig.ForbiddenAlgorithm):
        dsig.sign_enveloped(response, rsa3072, algorithm=A.RSA_SHA1)
    with pytest.raises(dsig.ForbiddenAlgorithm):
        dsig.sign_enveloped(response, rsa3072, digest=A.SHA1)
    with pytest.raises(dsig.ForbiddenAlgorithm):
        dsig.sign_enveloped(response, rsa3072, algorithm=A.ECDSA_SHA256)  # does not fit an RSA key
    assert not any(etree.QName(c).localname == "Signature" for c in response)


def test_weak_curve_policy(response: etree._Element, ec256: KeyPair) -> None:
    doc = _signed(response, ec256)
    strict = dataclasses.replace(A.DEFAULT_POLICY, min_ec_bits=384)
    with pytest.raises(WeakKeyError):
        dsig.verify_enveloped(doc, [ec256.certificate], policy=strict)


def test_duplicated_id_attributes(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _signed(response, rsa3072)
    etree.SubElement(doc, "{urn:example:ext}Other", ID="_resp1")
    with pytest.raises(dsig.DuplicateId):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_duplicated_id_in_other_id_attribute_name(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _signed(response, rsa3072)
    etree.SubElement(doc, "{urn:example:ext}Other", Id="_resp1")
    with pytest.raises(dsig.DuplicateId):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_element_without_id(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _signed(response, rsa3072)
    del doc.attrib["ID"]
    with pytest.raises(dsig.ReferenceMismatch):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_signature_object_element(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _signed(response, rsa3072)
    etree.SubElement(doc[1], f"{{{DS}}}Object").text = "x"
    with pytest.raises(dsig.MalformedSignature):
        dsig.verify_enveloped(doc, [rsa3072.certificate])


def test_no_trusted_keys(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _signed(response, rsa3072)
    with pytest.raises(dsig.UntrustedKey):
        dsig.verify_enveloped(doc, [])


def test_every_error_is_a_signature_error() -> None:
    for exc in (
        dsig.BadSignature,
        dsig.DuplicateId,
        dsig.ForbiddenAlgorithm,
        dsig.ForbiddenTransform,
        dsig.MalformedSignature,
        dsig.MissingSignature,
        dsig.MultipleSignatures,
        dsig.ReferenceMismatch,
        dsig.UntrustedKey,
        WeakKeyError,
    ):
        assert issubclass(exc, SignatureError)
    assert xmlsec  # raw xmlsec is what builds the attacker documents above
