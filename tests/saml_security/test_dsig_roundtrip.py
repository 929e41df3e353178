"""Sign/verify round trips for every algorithm the policy allows, over a parsed (re-read) document."""

from __future__ import annotations

import pytest
from lxml import etree

from saml import algorithms as A
from saml.dsig import has_signature, sign_enveloped, verify_enveloped
from saml.keys import KeyPair, generate_key_pair
from saml.xml import parse_xml, to_bytes

from .conftest import SAML


def _sign_and_reparse(response: etree._Element, key: KeyPair, **kw: object) -> etree._Element:
    sign_enveloped(response, key, insert_after=response[0], **kw)  # type: ignore[arg-type]
    return parse_xml(to_bytes(response))


@pytest.mark.parametrize(
    "algorithm", [A.RSA_SHA256, A.RSA_SHA384, A.RSA_SHA512, A.RSA_PSS_SHA256, A.RSA_PSS_SHA384, A.RSA_PSS_SHA512]
)
def test_rsa3072_round_trip(response: etree._Element, rsa3072: KeyPair, algorithm: str) -> None:
    doc = _sign_and_reparse(response, rsa3072, algorithm=algorithm)
    sig = doc[1]
    assert sig.tag == "{http://www.w3.org/2000/09/xmldsig#}Signature"  # right after saml:Issuer
    assert sig.find(".//{*}SignatureMethod").get("Algorithm") == algorithm  # type: ignore[union-attr]
    assert verify_enveloped(doc, [rsa3072.certificate]) is doc


@pytest.mark.parametrize("digest", [A.SHA256, A.SHA384, A.SHA512])
def test_digest_variants(response: etree._Element, ec256: KeyPair, digest: str) -> None:
    doc = _sign_and_reparse(response, ec256, digest=digest)
    assert verify_enveloped(doc, [ec256.certificate]) is doc


@pytest.mark.parametrize(
    ("kind", "algorithm"),
    [
        ("ec-p256", None),
        ("ec-p256", A.ECDSA_SHA512),
        ("ec-p384", A.ECDSA_SHA384),
        ("ec-bp256", A.ECDSA_SHA256),  # brainpoolP256r1: supported by the bundled libxmlsec1/OpenSSL
        ("ec-bp384", A.ECDSA_SHA384),
    ],
)
def test_ecdsa_round_trip(response: etree._Element, kind: str, algorithm: str | None) -> None:
    key = generate_key_pair(kind)
    doc = _sign_and_reparse(response, key, algorithm=algorithm)
    method = doc[1].find(".//{*}SignatureMethod").get("Algorithm")  # type: ignore[union-attr]
    assert method == (algorithm or A.ECDSA_SHA256)
    assert verify_enveloped(doc, [key.certificate]) is doc


def test_signed_assertion_inside_response(response: etree._Element, ec256: KeyPair) -> None:
    assertion = response.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    sign_enveloped(assertion, ec256, insert_after=assertion[0])
    sign_enveloped(response, ec256, insert_after=response[0])
    doc = parse_xml(to_bytes(response))
    assert verify_enveloped(doc, [ec256.certificate]) is doc
    inner = doc.find(f"{{{SAML}}}Assertion")
    assert inner is not None and verify_enveloped(inner, [ec256.certificate]) is inner


def test_pretty_printed_document_verifies(response: etree._Element, rsa3072: KeyPair) -> None:
    sign_enveloped(response, rsa3072)
    data = to_bytes(response)
    doc = parse_xml(data)
    assert verify_enveloped(doc, [rsa3072.certificate]) is doc
    assert has_signature(doc)
    # the first child is the Signature when no insert_after is given
    assert etree.QName(doc[0]).localname == "Signature"


def test_one_of_several_trusted_keys(
    response: etree._Element, rsa3072: KeyPair, ec256: KeyPair, rsa3072_attacker: KeyPair
) -> None:
    doc = _sign_and_reparse(response, rsa3072)
    trusted = [ec256.certificate, rsa3072_attacker.certificate, rsa3072.certificate]
    assert verify_enveloped(doc, trusted) is doc


def test_legacy_policy_allows_rsa2048(response: etree._Element, rsa2048: KeyPair) -> None:
    doc = _sign_and_reparse(response, rsa2048, policy=A.LEGACY_POLICY)
    assert verify_enveloped(doc, [rsa2048.certificate], policy=A.LEGACY_POLICY) is doc


def test_has_signature_only_direct_child(response: etree._Element, ec256: KeyPair) -> None:
    assertion = response.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    assert not has_signature(response)
    sign_enveloped(assertion, ec256)
    assert has_signature(assertion)
    assert not has_signature(response)


def test_wrong_trusted_keys_tried_first_without_key_info(response: etree._Element) -> None:
    """Without a KeyInfo hint every trusted key is tried; keys of another size or curve do not derail it."""
    signer, other_curve = generate_key_pair("ec-p256"), generate_key_pair("ec-p384")
    sign_enveloped(response, signer, include_certificate=False)
    doc = parse_xml(to_bytes(response))
    assert doc.find(".//{*}KeyInfo") is None
    assert verify_enveloped(doc, [other_curve.certificate, signer.certificate]) is doc


def test_sign_refuses_duplicate_id_in_document(response: etree._Element, ec256: KeyPair) -> None:
    from saml.dsig import DuplicateId

    assertion = response.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    dsig_ctx_doc = parse_xml(to_bytes(response))
    first = dsig_ctx_doc.find(f"{{{SAML}}}Assertion")
    assert first is not None
    sign_enveloped(first, ec256)
    twin = etree.SubElement(dsig_ctx_doc, f"{{{SAML}}}Assertion", ID="_assert1")
    with pytest.raises(DuplicateId):
        sign_enveloped(twin, ec256)
    assert not has_signature(twin)
