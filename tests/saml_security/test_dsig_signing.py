"""Signatures over a subtree of a larger document must still verify after the document is re-parsed.

The risky part of signing inside a document is canonicalising a subtree (inherited namespace
declarations, a default namespace, ``xml:`` attributes on ancestors); these documents put each of those
around the signed element, and the verifier must accept the result after a round trip through bytes.
"""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from saml import algorithms as A
from saml.dsig import (
    sign_enveloped,
    sign_references,
    verify_bytes,
    verify_enveloped,
    verify_references,
)
from saml.errors import SignatureError
from saml.keys import KeyPair
from saml.xml import parse_xml, to_bytes

from .conftest import DS

WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSU_ID = f"{{{WSU}}}Id"

NESTED = b"""<outer xmlns="urn:example:default" xmlns:a="urn:example:a" xmlns:unused="urn:example:unused"
    xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xml:lang="de" xml:space="preserve">
  <a:wrapper a:flag="1">
    <saml:Assertion ID="_inner" Version="2.0"><saml:Issuer>urn:issuer</saml:Issuer>
      <a:payload>text  with   spaces &amp; entities &lt;kept&gt;</a:payload>
      <plain attr="v">default namespace inherited from the root</plain>
    </saml:Assertion>
  </a:wrapper>
  <a:sibling/>
</outer>"""

SAML_ASSERTION = "{urn:oasis:names:tc:SAML:2.0:assertion}Assertion"


@pytest.mark.parametrize("algorithm", [A.RSA_SHA256, A.RSA_PSS_SHA256])
def test_enveloped_subtree_in_namespace_rich_document_verifies(rsa3072: KeyPair, algorithm: str) -> None:
    doc = parse_xml(NESTED)
    inner = doc.find(f".//{SAML_ASSERTION}")
    assert inner is not None
    sign_enveloped(inner, rsa3072, algorithm=algorithm, insert_after=inner[0])
    again = parse_xml(to_bytes(doc))
    target = again.find(f".//{SAML_ASSERTION}")
    assert target is not None
    assert verify_enveloped(target, [rsa3072.certificate]) is target


def test_references_in_namespace_rich_document_verify(ec256: KeyPair) -> None:
    doc = parse_xml(NESTED)
    inner = doc.find(f".//{SAML_ASSERTION}")
    sibling = doc.find("{urn:example:a}sibling")
    assert inner is not None and sibling is not None
    sign_references(doc, [(inner, "R-1"), (sibling, "R-2")], ec256, id_attr_qname=WSU_ID)
    again = parse_xml(to_bytes(doc))
    targets = [again.find(f".//{SAML_ASSERTION}"), again.find("{urn:example:a}sibling")]
    assert all(t is not None for t in targets)
    signature = again.find(f"{{{DS}}}Signature")
    assert signature is not None
    assert verify_references(signature, targets, [ec256.certificate], id_attr_qname=WSU_ID) == ec256.certificate


def test_signature_value_is_over_the_canonical_signed_info(ec256: KeyPair) -> None:
    """The written SignatureValue checks out with the certificate's key over exclusive-C14N SignedInfo."""
    doc = parse_xml(NESTED)
    inner = doc.find(f".//{SAML_ASSERTION}")
    assert inner is not None
    sig = sign_enveloped(inner, ec256, insert_after=inner[0])
    info, value = sig[0], sig[1]
    octets = etree.tostring(info, method="c14n", exclusive=True, with_comments=False)
    raw = base64.b64decode(value.text or "")
    assert verify_bytes([ec256.certificate], octets, raw, A.ECDSA_SHA256) == ec256.certificate


def test_content_c14n_refuses_is_a_signature_error_and_leaves_no_signature(ec256: KeyPair) -> None:
    """A relative namespace URI cannot be canonicalised: the caller gets a SignatureError, as from xmlsec."""
    element = etree.fromstring(b'<r:a xmlns:r="relative/ns" ID="_x"><r:b/></r:a>')
    with pytest.raises(SignatureError):
        sign_enveloped(element, ec256)
    assert element.find(f"{{{DS}}}Signature") is None
