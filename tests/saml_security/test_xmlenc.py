"""Encrypted assertions: round trips, algorithm refusal before decryption, wrong keys, tampering."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from saml import algorithms as A
from saml.dsig import sign_enveloped, verify_enveloped
from saml.keys import KeyPair, generate_key_pair
from saml.xml import parse_xml, to_bytes
from saml.xmlenc import (
    DecryptionFailed,
    ForbiddenEncryptionAlgorithm,
    MalformedEncryptedData,
    NoDecryptionKey,
    UnsupportedRecipient,
    decrypt_assertion,
    encrypt_assertion,
    encrypt_element,
)

from .conftest import SAML

XENC = "http://www.w3.org/2001/04/xmlenc#"
ENC_ASSERTION = f"{{{SAML}}}EncryptedAssertion"


def _encrypted_response(response: etree._Element, recipient: KeyPair, **kw: object) -> etree._Element:
    assertion = response.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    wrapper = encrypt_assertion(assertion, recipient.certificate, **kw)  # type: ignore[arg-type]
    assert wrapper.getparent() is response and wrapper.tag == ENC_ASSERTION
    assert response.find(f"{{{SAML}}}Assertion") is None
    return parse_xml(to_bytes(response))


def _enc(doc: etree._Element) -> etree._Element:
    found = doc.find(ENC_ASSERTION)
    assert found is not None
    return found


@pytest.mark.parametrize("data_algorithm", [A.AES128_GCM, A.AES256_GCM])
@pytest.mark.parametrize("key_transport", [A.RSA_OAEP, A.RSA_OAEP_MGF1P])
def test_round_trip(response: etree._Element, rsa3072: KeyPair, data_algorithm: str, key_transport: str) -> None:
    doc = _encrypted_response(response, rsa3072, data_algorithm=data_algorithm, key_transport=key_transport)
    assert b"citizen-4711" not in to_bytes(doc)
    methods = [m.get("Algorithm") for m in doc.iter(f"{{{XENC}}}EncryptionMethod")]
    assert methods == [data_algorithm, key_transport]
    assertion = decrypt_assertion(_enc(doc), [rsa3072])
    assert assertion.getparent() is doc and doc.index(assertion) == 1
    assert assertion.findtext(f".//{{{SAML}}}NameID") == "citizen-4711"
    assert doc.find(ENC_ASSERTION) is None


def test_oaep_parameters_written(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _encrypted_response(response, rsa3072)
    method = doc.find(f".//{{{XENC}}}EncryptedKey/{{{XENC}}}EncryptionMethod")
    assert method is not None and method.get("Algorithm") == A.RSA_OAEP
    assert [c.get("Algorithm") for c in method] == [A.SHA256, A.MGF1_SHA256]


def test_signed_assertion_survives_encryption(response: etree._Element, rsa3072: KeyPair, ec256: KeyPair) -> None:
    assertion = response.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    sign_enveloped(assertion, ec256, insert_after=assertion[0])
    doc = _encrypted_response(response, rsa3072)
    decrypted = decrypt_assertion(_enc(doc), [ec256, rsa3072])  # EC key skipped for key transport
    assert verify_enveloped(decrypted, [ec256.certificate]) is decrypted


def test_detached_assertion(rsa3072: KeyPair) -> None:
    assertion = etree.fromstring(
        f'<saml:Assertion xmlns:saml="{SAML}" ID="_x"><saml:Issuer>i</saml:Issuer></saml:Assertion>'.encode()
    )
    wrapper = encrypt_assertion(assertion, rsa3072.certificate)
    assert wrapper.getparent() is None
    result = decrypt_assertion(parse_xml(to_bytes(wrapper)), [rsa3072])
    assert result.get("ID") == "_x" and result.getparent() is None


def test_encrypt_element_returns_encrypted_data(response: etree._Element, rsa3072: KeyPair) -> None:
    name_id = response.find(f".//{{{SAML}}}NameID")
    assert name_id is not None
    data = encrypt_element(name_id, rsa3072.certificate)
    assert data.tag == f"{{{XENC}}}EncryptedData"
    assert data.find(f".//{{{XENC}}}EncryptedKey") is not None
    assert response.find(f".//{{{SAML}}}NameID") is None


@pytest.mark.parametrize("cbc", [A.AES128_CBC, A.AES256_CBC])
def test_cbc_encrypted_assertion_refused_before_decryption(
    response: etree._Element, rsa3072: KeyPair, cbc: str
) -> None:
    doc = _encrypted_response(response, rsa3072, data_algorithm=cbc, policy=A.LEGACY_POLICY)
    with pytest.raises(ForbiddenEncryptionAlgorithm):
        decrypt_assertion(_enc(doc), [])  # refused before any key is even looked at
    with pytest.raises(ForbiddenEncryptionAlgorithm):
        decrypt_assertion(_enc(doc), [rsa3072])
    # Only an explicit legacy policy opens it.
    assert decrypt_assertion(_enc(doc), [rsa3072], policy=A.LEGACY_POLICY).tag == f"{{{SAML}}}Assertion"


def test_rsa_1_5_key_transport_refused_before_decryption(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _encrypted_response(response, rsa3072, key_transport=A.RSA_1_5, policy=A.LEGACY_POLICY)
    with pytest.raises(ForbiddenEncryptionAlgorithm):
        decrypt_assertion(_enc(doc), [])
    with pytest.raises(ForbiddenEncryptionAlgorithm):
        decrypt_assertion(_enc(doc), [rsa3072])
    assert decrypt_assertion(_enc(doc), [rsa3072], policy=A.LEGACY_POLICY).tag == f"{{{SAML}}}Assertion"


def test_we_do_not_encrypt_with_legacy_algorithms(response: etree._Element, rsa3072: KeyPair) -> None:
    assertion = response.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    with pytest.raises(ForbiddenEncryptionAlgorithm):
        encrypt_assertion(assertion, rsa3072.certificate, data_algorithm=A.AES128_CBC)
    with pytest.raises(ForbiddenEncryptionAlgorithm):
        encrypt_assertion(assertion, rsa3072.certificate, key_transport=A.RSA_1_5)
    assert response.find(f"{{{SAML}}}Assertion") is assertion


def test_unknown_algorithm_refused(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _encrypted_response(response, rsa3072)
    doc.find(f".//{{{XENC}}}EncryptionMethod").set("Algorithm", "urn:example:rot13")  # type: ignore[union-attr]
    with pytest.raises(ForbiddenEncryptionAlgorithm):
        decrypt_assertion(_enc(doc), [rsa3072])


def test_oaep_with_md5_digest_refused(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _encrypted_response(response, rsa3072)
    digest = doc.find(
        f".//{{{XENC}}}EncryptedKey/{{{XENC}}}EncryptionMethod/{{http://www.w3.org/2000/09/xmldsig#}}DigestMethod"
    )
    assert digest is not None
    digest.set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#md5")
    with pytest.raises(ForbiddenEncryptionAlgorithm):
        decrypt_assertion(_enc(doc), [rsa3072])


def test_decryption_with_wrong_key(response: etree._Element, rsa3072: KeyPair, rsa3072_attacker: KeyPair) -> None:
    doc = _encrypted_response(response, rsa3072)
    with pytest.raises(NoDecryptionKey):
        decrypt_assertion(_enc(doc), [rsa3072_attacker])
    assert _enc(doc) is not None  # the document is left as it was


@pytest.mark.parametrize(
    ("offset", "flip"),
    [
        (-1, 0x01),  # the last byte belongs to the GCM authentication tag
        (20, 0x80),  # a byte of the ciphertext body
    ],
    ids=["gcm_tag", "body"],
)
def test_tampered_ciphertext(response: etree._Element, rsa3072: KeyPair, offset: int, flip: int) -> None:
    doc = _encrypted_response(response, rsa3072)
    value = _enc(doc).find(f"{{{XENC}}}EncryptedData/{{{XENC}}}CipherData/{{{XENC}}}CipherValue")
    assert value is not None and value.text
    raw = bytearray(base64.b64decode(value.text))
    raw[offset] ^= flip
    value.text = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionFailed):
        decrypt_assertion(_enc(doc), [rsa3072])


def test_cipher_reference_refused(response: etree._Element, rsa3072: KeyPair) -> None:
    doc = _encrypted_response(response, rsa3072)
    cipher_data = _enc(doc).find(f"{{{XENC}}}EncryptedData/{{{XENC}}}CipherData")
    assert cipher_data is not None
    cipher_data.clear()
    etree.SubElement(cipher_data, f"{{{XENC}}}CipherReference", URI="file:///etc/passwd")
    with pytest.raises(MalformedEncryptedData):
        decrypt_assertion(_enc(doc), [rsa3072])


def test_encrypted_content_not_an_assertion(rsa3072: KeyPair) -> None:
    wrapper = etree.Element(ENC_ASSERTION, nsmap={"saml": SAML})
    other = etree.SubElement(wrapper, "{urn:example}Other")
    encrypt_element(other, rsa3072.certificate)
    with pytest.raises(MalformedEncryptedData):
        decrypt_assertion(parse_xml(to_bytes(wrapper)), [rsa3072])


def test_comment_truncation_inside_encrypted_name_id(rsa3072: KeyPair) -> None:
    """Comments in decrypted content are dropped like the parser drops them: the NameID stays whole."""
    assertion = etree.fromstring(
        f'<saml:Assertion xmlns:saml="{SAML}" ID="_c"><saml:Subject><saml:NameID>user@city.de<!---->.evil.com'
        f"</saml:NameID></saml:Subject></saml:Assertion>".encode()
    )
    wrapper = encrypt_assertion(assertion, rsa3072.certificate)
    result = decrypt_assertion(parse_xml(to_bytes(wrapper)), [rsa3072])
    name_id = result.find(f".//{{{SAML}}}NameID")
    assert name_id is not None and len(name_id) == 0 and name_id.text == "user@city.de.evil.com"


def test_ec_recipient_refused(response: etree._Element, ec256: KeyPair) -> None:
    assertion = response.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    with pytest.raises(UnsupportedRecipient):
        encrypt_assertion(assertion, ec256.certificate)


def test_weak_rsa_recipient_refused(response: etree._Element, rsa2048: KeyPair) -> None:
    assertion = response.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    with pytest.raises(UnsupportedRecipient):
        encrypt_assertion(assertion, rsa2048.certificate)


def test_rsa4096_recipient(response: etree._Element) -> None:
    key = generate_key_pair("rsa-4096")
    doc = _encrypted_response(response, key)
    assert decrypt_assertion(_enc(doc), [key]).get("ID") == "_assert1"


def test_ecdh_es_key_agreement_refused(response: etree._Element, rsa3072: KeyPair) -> None:
    """An EncryptedKey wrapped with kw-aes256 under an ECDH-ES AgreementMethod is not key transport."""
    doc = _encrypted_response(response, rsa3072)
    method = doc.find(f".//{{{XENC}}}EncryptedKey/{{{XENC}}}EncryptionMethod")
    assert method is not None
    method.clear()
    method.set("Algorithm", A.KW_AES256)
    key_info = doc.find(f".//{{{XENC}}}EncryptedKey/{{http://www.w3.org/2000/09/xmldsig#}}KeyInfo")
    assert key_info is not None
    etree.SubElement(key_info, f"{{{XENC}}}AgreementMethod", Algorithm=A.ECDH_ES)
    with pytest.raises(ForbiddenEncryptionAlgorithm):
        decrypt_assertion(_enc(doc), [rsa3072])
