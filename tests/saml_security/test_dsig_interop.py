"""Signatures made by other implementations verify; those we make verify elsewhere."""

from __future__ import annotations

import pytest
from lxml import etree
from signxml.signer import XMLSigner
from signxml.verifier import XMLVerifier

from saml import algorithms as A
from saml.dsig import ForbiddenTransform, sign_enveloped, verify_enveloped
from saml.keys import KeyPair, key_pair_to_pem
from saml.xml import parse_xml, to_bytes

from .conftest import RESPONSE, raw_sign

EC = A.EXC_C14N


@pytest.mark.parametrize("method", ["rsa-sha256", "sha256-rsa-MGF1"])
def test_signxml_signed_rsa_verifies(rsa3072: KeyPair, method: str) -> None:
    _, cert = key_pair_to_pem(rsa3072)
    signer = XMLSigner(signature_algorithm=method, digest_algorithm="sha256", c14n_algorithm=EC)
    signed = signer.sign(
        etree.fromstring(RESPONSE), key=rsa3072.private_key, cert=cert.decode(), reference_uri="#_resp1"
    )
    doc = parse_xml(etree.tostring(signed))
    assert verify_enveloped(doc, [rsa3072.certificate]) is doc


def test_signxml_signed_ecdsa_verifies(ec256: KeyPair) -> None:
    _, cert = key_pair_to_pem(ec256)
    signer = XMLSigner(signature_algorithm="ecdsa-sha256", digest_algorithm="sha256", c14n_algorithm=EC)
    signed = signer.sign(etree.fromstring(RESPONSE), key=ec256.private_key, cert=cert.decode(), reference_uri="#_resp1")
    doc = parse_xml(etree.tostring(signed))
    assert verify_enveloped(doc, [ec256.certificate]) is doc


@pytest.mark.parametrize("algorithm", [None, A.RSA_PSS_SHA256])
def test_our_signature_verifies_in_signxml(response: etree._Element, rsa3072: KeyPair, algorithm: str | None) -> None:
    sign_enveloped(response, rsa3072, algorithm=algorithm, insert_after=response[0])
    result = XMLVerifier().verify(to_bytes(response), x509_cert=rsa3072.certificate, id_attribute="ID")
    assert result.signed_xml is not None and result.signed_xml.get("ID") == "_resp1"  # type: ignore[union-attr]


def test_our_ecdsa_signature_verifies_in_signxml(response: etree._Element, ec256: KeyPair) -> None:
    sign_enveloped(response, ec256, insert_after=response[0])
    result = XMLVerifier().verify(to_bytes(response), x509_cert=ec256.certificate, id_attribute="ID")
    assert result.signed_xml is not None  # type: ignore[union-attr]


def test_inclusive_namespaces_prefix_list_accepted(response: etree._Element, rsa3072: KeyPair) -> None:
    """OpenSAML/Shibboleth write ec:InclusiveNamespaces PrefixList="xs"; that is exclusive C14N too."""
    inc = etree.Element(f"{{{EC}}}InclusiveNamespaces", PrefixList="xs saml", nsmap={"ec": EC})
    raw_sign(response, rsa3072, [("#_resp1", (A.ENVELOPED, EC))], register=[response], transform_children={EC: inc})
    doc = parse_xml(to_bytes(response))
    assert doc.find(".//{*}InclusiveNamespaces") is not None
    assert verify_enveloped(doc, [rsa3072.certificate]) is doc


def test_exclusive_c14n_with_comments_transform(rsa3072: KeyPair) -> None:
    response = parse_xml(RESPONSE)
    raw_sign(response, rsa3072, [("#_resp1", (A.ENVELOPED, A.EXC_C14N_WITH_COMMENTS))], register=[response])
    doc = parse_xml(to_bytes(response))
    with pytest.raises(ForbiddenTransform):
        verify_enveloped(doc, [rsa3072.certificate])
