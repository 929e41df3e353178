"""What the gateway's SAML HTTP-POST page carries to the service, read the way a service reads it, and
what the demo service then shows.

The demo's result pages show SAML statuses and the level of assurance in words; a test about the
protocol checks the values on the wire here (signature verified with the gateway's certificate, the
assertion decrypted with the service's key) and the words on the page separately.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Protocol

from cryptography import x509
from lxml import etree

from saml import KeyPair, decrypt_assertion, parse_assertion, parse_response, parse_xml, verify_enveloped
from saml.messages import Status
from saml.xml import qname


class Page(Protocol):
    """An HTML page as the test browsers hold it (helpers.gateway.Page, eid_gateway.smoke_test.Page)."""

    def doc(self) -> Any: ...


def read_saml_response(value: str, trusted: Sequence[x509.Certificate]) -> etree._Element:
    """The signed ``samlp:Response`` of a ``SAMLResponse`` form value (base64), its signature verified."""
    return verify_enveloped(parse_xml(base64.b64decode(value, validate=True)), trusted)


def saml_response_on(post_page: Page, trusted: Sequence[x509.Certificate]) -> etree._Element:
    """The signed ``samlp:Response`` in the page's one form (its ``SAMLResponse`` field), verified."""
    [form] = post_page.doc().forms
    [value] = [str(i.value) for i in form.inputs if i.name == "SAMLResponse"]
    return read_saml_response(value, trusted)


def status_on(post_page: Page, trusted: Sequence[x509.Certificate]) -> Status:
    """The Response's ``samlp:Status`` (codes as URNs)."""
    return parse_response(saml_response_on(post_page, trusted)).status


def authn_context_on(post_page: Page, trusted: Sequence[x509.Certificate], key: KeyPair) -> str | None:
    """The ``AuthnContextClassRef`` of the one assertion, decrypted with the service's ``key``; the
    assertion's own signature is verified as well."""
    response = saml_response_on(post_page, trusted)
    [encrypted] = response.findall(qname("saml", "EncryptedAssertion"))
    assertion = parse_assertion(verify_enveloped(decrypt_assertion(encrypted, [key]), trusted))
    [statement] = assertion.authn_statements
    return statement.class_ref


def demo_status_line(result: Page) -> str:
    """The one detail line of the demo service's error page: "Status: <top-level code>: <second-level
    code>" in words (eid_gateway.demo.pages.status_words)."""
    [line] = result.doc().xpath('//*[@id="main"]//li')
    return " ".join(line.text_content().split())
