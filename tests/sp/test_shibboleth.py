"""Issue 15: Debian's Shibboleth SP 3 (shibd + mod_shib, 3.4.1 in Debian 12) as a SAML service of the
gateway, set up with docs/integrations/shibboleth/, through a whole sign-in with the eID-Server simulator
(encrypted assertions, both key transports the gateway writes) and through the cancel path."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from lxml import etree

from eid_gateway.frontends.saml_idp import KEY_TRANSPORTS
from eid_gateway.identity import SAML_NAMES, Attribute
from eid_gateway.pseudonym import derive_pseudonym
from eid_gateway.simulator.identities import stable_restricted_id
from helpers.gateway import Browser, Page, Servers, ausweisapp, tc_token_url_of
from saml import algorithms as alg
from saml.bindings import decode_redirect

from .shibboleth import ATTRIBUTE_MAP, ShibbolethSp, StartShibboleth, start_shibboleth, tls_browser  # noqa: F401

NS = {
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "map": "urn:mace:shibboleth:2.0:attribute-map",
}
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


def environment_of(page: Page) -> dict[str, str]:
    """The echo script's ``NAME=value`` lines."""
    assert page.status == 200, page.text
    return dict(line.split("=", 1) for line in page.text.splitlines() if "=" in line)


def saml_response_of(page: Page) -> etree._Element:
    """The SAML Response on the gateway's POST binding page."""
    [form] = page.forms()
    [value] = [i.value for i in form.inputs if i.name == "SAMLResponse"]
    return etree.fromstring(base64.b64decode(value))


async def open_start_page(browser: Browser, sp: ShibbolethSp) -> Page:
    """The protected URL -> mod_shib's signed AuthnRequest (Redirect binding) -> the gateway's start page."""
    browser.history.clear()
    start = await browser.get(sp.protected_url)
    assert start.status == 200 and start.url.startswith(sp.gateway.origin + "/signin/"), sp.logs()
    [sso] = [u for u in browser.history if urlsplit(u).path == "/saml/sso"]
    query = urlsplit(sso).query
    assert parse_qs(query)["SigAlg"] == [alg.RSA_SHA256]  # signed without being told: the gateway's
    request = decode_redirect(query).element  # metadata says WantAuthnRequestsSigned
    assert request.findtext("saml:Issuer", namespaces=NS) == sp.entity_id
    assert request.get("AssertionConsumerServiceURL") == sp.acs_url
    assert "Bürgerportal (Shibboleth)" in start.text
    return start


def with_key_transport(key_transport: str | None) -> Callable[[str], str]:
    """``None``: the registration as ``service add`` wrote it; else that line changed (a measurement)."""

    def edit(block: str) -> str:
        chosen = 'key_transport = "rsa-oaep"\n'  # Shibboleth's metadata lists XML Enc 1.1 rsa-oaep
        assert chosen in block, block
        return block if key_transport is None else block.replace(chosen, f'key_transport = "{key_transport}"\n')

    return edit


@pytest.mark.parametrize("key_transport", [None, "rsa-oaep-mgf1p"], ids=["service-add", "rsa-oaep-mgf1p"])
async def test_sign_in_through_shibboleth(
    start_shibboleth: StartShibboleth, tls_browser: Browser, servers: Servers, key_transport: str | None
) -> None:
    """Encrypted assertion -> shibd decrypts it, maps every attribute with the docs' attribute-map.xml ->
    the application sees them as environment variables. Registered by ``service add`` (rsa-oaep of XML
    Enc 1.1, chosen from its md:EncryptionMethod list), and once with rsa-oaep-mgf1p (the gateway's default
    for metadata naming none): Shibboleth decrypts both."""
    sp = await start_shibboleth(edit_registration=with_key_transport(key_transport))
    start = await open_start_page(tls_browser, sp)
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    assert "ResultMajor=ok" in step.next_url

    # the refresh -> the gateway's POST binding page to the ACS, the assertion encrypted to the SP
    post = await tls_browser.get(step.next_url)
    assert post.forms()[0].action == sp.acs_url
    response = saml_response_of(post)
    assert response.find("saml:Assertion", NS) is None
    [method] = response.findall("saml:EncryptedAssertion//xenc:EncryptedKey/xenc:EncryptionMethod", NS)
    [service] = [s for s in sp.gateway.config.services.services if s.id == sp.service_id]
    assert service.saml is not None
    transport, oaep_digest = KEY_TRANSPORTS[service.saml.key_transport]
    assert method.get("Algorithm") == transport
    digest = method.find("ds:DigestMethod", NS)
    assert digest is not None and digest.get("Algorithm") == oaep_digest
    if key_transport is not None:
        assert method.get("Algorithm") == alg.RSA_OAEP_MGF1P
    [data_method] = response.findall("saml:EncryptedAssertion/xenc:EncryptedData/xenc:EncryptionMethod", NS)
    assert data_method.get("Algorithm") in (alg.AES128_GCM, alg.AES256_GCM)

    # the ACS (shibd decrypts, checks, makes a session) -> the protected page
    tls_browser.history.clear()
    page = await tls_browser.submit(post)
    assert tls_browser.history == [sp.protected_url], sp.logs()
    env = environment_of(page)
    pseudonym = derive_pseudonym(
        sp.gateway.config.keys.pseudonym_secret, sp.service_id, stable_restricted_id("erika").id
    )
    assert env["family_names"] == "MUSTERMANN", env
    assert env["given_names"] == "ERIKA"
    assert env["date_of_birth"] == "1964-08-12"
    assert json.loads(env["place_of_birth"]) == {"freetext": "BERLIN"}
    assert json.loads(env["address"]) == {
        "city": "KÖLN",
        "country": "D",
        "street": "HEIDESTRASSE 17",
        "zip_code": "51147",
    }
    assert env["pseudonym"] == pseudonym
    idp = sp.gateway.config.saml_idp.entity_id
    # the persistent NameID, with its qualifiers (the Apache CGI environment spells "persistent-id" so)
    assert env["persistent_id"] == f"{idp}!{sp.entity_id}!{pseudonym}"
    assert env["REMOTE_USER"] == pseudonym
    assert env["Shib_Identity_Provider"] == idp
    assert env["Shib_AuthnContext_Class"] == "http://eidas.europa.eu/LoA/high"
    # registered for these only: nothing else of the card reaches the application
    released = {a.value for a in Attribute} & set(env)
    assert released == {"family_names", "given_names", "date_of_birth", "place_of_birth", "address", "pseudonym"}

    # signed in: the protected page again needs no trip to the gateway
    tls_browser.history.clear()
    again = await tls_browser.get(sp.protected_url)
    assert environment_of(again)["pseudonym"] == pseudonym and tls_browser.history == [sp.protected_url]


async def test_cancel_shows_shibboleths_error_page(start_shibboleth: StartShibboleth, tls_browser: Browser) -> None:
    """Cancelling on the start page: the gateway's error Response -> Shibboleth's error page naming the
    IdP's status; no loop into a fresh sign-in, no identity, no session."""
    sp = await start_shibboleth()
    start = await open_start_page(tls_browser, sp)
    tls_browser.history.clear()
    post = await tls_browser.submit(start)  # the start page's only form: "Abbrechen und zurück zum Dienst"
    assert post.forms()[0].action == sp.acs_url
    status = saml_response_of(post).find("samlp:Status/samlp:StatusCode", NS)
    assert status is not None and status.get("Value") == "urn:oasis:names:tc:SAML:2.0:status:Responder"

    page = await tls_browser.submit(post)
    assert tls_browser.history == [], tls_browser.history  # no redirect: no new AuthnRequest, no loop
    # Shibboleth's sessionError.html, with the HTTP status mod_shib gives every handler error
    assert page.status == 500, page.text
    assert "SAML response reported an IdP error." in page.text, page.text
    assert "RequestDenied" in page.text and "cancelled" in page.text
    assert "it-service@example.de" in page.text  # the excerpt's {{SUPPORT_CONTACT}}
    assert "MUSTERMANN" not in page.text
    # and the citizen is not signed in: the protected URL starts a new sign-in at the gateway
    await open_start_page(tls_browser, sp)


async def test_shibboleths_metadata_matches_the_registration(
    start_shibboleth: StartShibboleth, tls_browser: Browser
) -> None:
    """What Shibboleth publishes about itself (/Shibboleth.sso/Metadata) names its config dir's keys, and
    what ``eid-gateway service add`` registered from it: entity ID, the POST ACS URL, both certificates,
    and the key transport chosen from the ones it says it decrypts."""
    sp = await start_shibboleth()
    page = await tls_browser.get(sp.origin + "/Shibboleth.sso/Metadata")
    assert page.status == 200 and page.headers["Content-Type"].startswith("application/samlmetadata+xml")
    md = etree.fromstring(page.text.encode())
    assert md.get("entityID") == sp.entity_id
    [sso] = md.findall("md:SPSSODescriptor", NS)
    post_acs = [
        e.get("Location") for e in sso.findall("md:AssertionConsumerService", NS) if e.get("Binding") == HTTP_POST
    ]
    assert post_acs == [sp.acs_url]

    def cert(use: str) -> x509.Certificate:
        [b64] = [t.text for t in sso.findall(f"md:KeyDescriptor[@use='{use}']//ds:X509Certificate", NS)]
        assert b64 is not None
        return x509.load_der_x509_certificate(base64.b64decode(b64))

    signing = x509.load_pem_x509_certificate((sp.config_dir / "sp-signing-cert.pem").read_bytes())
    encryption = x509.load_pem_x509_certificate((sp.config_dir / "sp-encrypt-cert.pem").read_bytes())
    assert cert("signing") == signing and cert("encryption") == encryption
    methods = [m.get("Algorithm") for m in sso.findall("md:KeyDescriptor[@use='encryption']/md:EncryptionMethod", NS)]
    assert alg.RSA_OAEP in methods and alg.RSA_OAEP_MGF1P in methods, methods
    assert alg.AES256_GCM in methods

    [service] = [s for s in sp.gateway.config.services.services if s.id == sp.service_id]
    assert service.saml is not None
    assert (service.saml.entity_id, service.saml.acs_urls) == (sp.entity_id, (sp.acs_url,))
    assert service.saml.signing_certs == (signing,) and service.saml.encryption_cert == encryption
    assert service.saml.encrypt_assertions and service.saml.require_signed_requests
    assert service.saml.key_transport == "rsa-oaep"


def test_attribute_map_covers_every_gateway_attribute() -> None:
    """docs/integrations/shibboleth/attribute-map.xml maps every SAML attribute the gateway can send, under
    the gateway's own attribute name, and both NameID formats; nothing else."""
    doc = etree.parse(str(ATTRIBUTE_MAP))
    mapped = {a.get("name"): a.get("id") for a in doc.getroot().findall("map:Attribute", NS)}
    expected = {SAML_NAMES[a]: a.value for a in Attribute}
    expected |= {PERSISTENT: "persistent-id", TRANSIENT: "transient-id"}
    assert mapped == expected
