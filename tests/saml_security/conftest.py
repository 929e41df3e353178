"""Keys and document builders for the XML-security tests.

Attacker documents are built with lxml and signed with raw python-xmlsec (no restrictions), so that a
refusal in a test comes from our checks and not from a broken signature.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from saml import algorithms as A
from saml.keys import KeyPair, certificate_builder, generate_key_pair

DS = "http://www.w3.org/2000/09/xmldsig#"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"

RESPONSE = (
    b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_resp1" Version="2.0" '
    b'IssueInstant="2026-11-25T10:00:00Z">\n'
    b"  <saml:Issuer>https://idp.example.de</saml:Issuer>\n"
    b'  <saml:Assertion ID="_assert1" Version="2.0" IssueInstant="2026-11-25T10:00:00Z">\n'
    b"    <saml:Issuer>https://idp.example.de</saml:Issuer>\n"
    b"    <saml:Subject><saml:NameID>citizen-4711</saml:NameID></saml:Subject>\n"
    b"  </saml:Assertion>\n"
    b"</samlp:Response>"
)


def rsa_key_pair(bits: int) -> KeyPair:
    """RSA key pair of any size (generate_key_pair only offers acceptable sizes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    now = datetime.datetime.now(datetime.UTC)
    cert = certificate_builder(
        f"rsa-{bits}", key.public_key(), not_before=now, not_after=now + datetime.timedelta(days=1)
    ).sign(key, hashes.SHA256())
    return KeyPair(key, cert)


@pytest.fixture(scope="session")
def rsa3072() -> KeyPair:
    return generate_key_pair("rsa-3072", "idp")


@pytest.fixture(scope="session")
def rsa3072_attacker() -> KeyPair:
    return generate_key_pair("rsa-3072", "idp")  # same subject name: only the key differs


@pytest.fixture(scope="session")
def ec256() -> KeyPair:
    return generate_key_pair("ec-p256", "idp-ec")


@pytest.fixture(scope="session")
def ec256_attacker() -> KeyPair:
    return generate_key_pair("ec-p256", "idp-ec")


@pytest.fixture(scope="session")
def rsa2048() -> KeyPair:
    return rsa_key_pair(2048)


@pytest.fixture(scope="session")
def rsa1024() -> KeyPair:
    return rsa_key_pair(1024)


@pytest.fixture
def response() -> etree._Element:
    from saml.xml import parse_xml

    return parse_xml(RESPONSE)


def raw_sign(
    parent: etree._Element,
    key: KeyPair,
    references: Sequence[tuple[str, Sequence[str]]],
    *,
    register: Sequence[etree._Element | tuple[etree._Element, str]] = (),
    id_attr: str = "ID",
    signature_method: str = A.RSA_SHA256,
    digest: str = A.SHA256,
    c14n: str = A.EXC_C14N,
    position: int = 1,
    key_info_cert: x509.Certificate | None = None,
    transform_children: dict[str, etree._Element] | None = None,
) -> etree._Element:
    """Sign with unrestricted python-xmlsec: any algorithm, transform, URI, placement."""
    sig = etree.Element(f"{{{DS}}}Signature", nsmap={"ds": DS})
    info = etree.SubElement(sig, f"{{{DS}}}SignedInfo")
    etree.SubElement(info, f"{{{DS}}}CanonicalizationMethod", Algorithm=c14n)
    etree.SubElement(info, f"{{{DS}}}SignatureMethod", Algorithm=signature_method)
    for uri, transforms in references:
        ref = etree.SubElement(info, f"{{{DS}}}Reference", URI=uri)
        tr = etree.SubElement(ref, f"{{{DS}}}Transforms")
        for t in transforms:
            el = etree.SubElement(tr, f"{{{DS}}}Transform", Algorithm=t)
            if transform_children and t in transform_children:
                el.append(transform_children[t])
        etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm=digest)
        etree.SubElement(ref, f"{{{DS}}}DigestValue")
    etree.SubElement(sig, f"{{{DS}}}SignatureValue")
    if key_info_cert is not None:
        from saml.keys import cert_b64

        ki = etree.SubElement(sig, f"{{{DS}}}KeyInfo")
        etree.SubElement(etree.SubElement(ki, f"{{{DS}}}X509Data"), f"{{{DS}}}X509Certificate").text = cert_b64(
            key_info_cert
        )
    parent.insert(position, sig)
    ctx = xmlsec.SignatureContext()
    for item in register:
        el, attr = item if isinstance(item, tuple) else (item, id_attr)
        if attr.startswith("{"):
            ns, _, local = attr[1:].partition("}")
            ctx.register_id(el, local, ns)
        else:
            ctx.register_id(el, attr)
    ctx.key = key.xmlsec_key
    ctx.sign(sig)
    return sig
