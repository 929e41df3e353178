"""HTTP-Redirect and HTTP-POST bindings."""

from __future__ import annotations

import base64
import html
import re
import zlib
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from saml import bindings as b
from saml import dsig
from saml import messages as m
from saml.algorithms import RSA_SHA256
from saml.errors import BindingError, XmlSecurityError
from saml.keys import KeyPair
from saml.validate import verify_authn_request
from saml.xml import qname, to_bytes

from .conftest import ACS, NOW, SP

IDP_SSO = "https://idp.example.de/sso"


def _request() -> m.AuthnRequest:
    return m.AuthnRequest(
        issuer=SP, issue_instant=NOW, destination=IDP_SSO, acs_url=ACS, protocol_binding=m.BINDING_HTTP_POST
    )


def _query(url: str) -> str:
    return urlsplit(url).query


@pytest.mark.parametrize("key_name", ["idp_key", "sp_key"])
def test_redirect_signed_round_trip(request: pytest.FixtureRequest, key_name: str) -> None:
    key: KeyPair = request.getfixturevalue(key_name)
    req = _request()
    url = b.redirect_url(IDP_SSO, m.build_authn_request(req), relay_state="state 1/ä", key=key)
    assert url.startswith(IDP_SSO + "?SAMLRequest=")
    assert re.search(r"&RelayState=[^&]+&SigAlg=[^&]+&Signature=[^&]+$", url)
    msg = b.parse_redirect(_query(url), trusted=[key.certificate], require_signature=True)
    assert msg.signed and msg.param == "SAMLRequest" and msg.relay_state == "state 1/ä"
    assert msg.sig_alg == b.default_signature_algorithm(key)
    # The IdP then checks the request itself, trusting the binding's signature.
    parsed = verify_authn_request(
        msg.element, trusted=[key.certificate], destination=IDP_SSO, binding_signed=msg.signed, now=NOW
    )
    assert parsed == req


def test_redirect_decoded_first_then_verified_with_the_senders_certificates(sp_key: KeyPair, idp_key: KeyPair) -> None:
    """The IdP path: decode without trust, read the Issuer, verify with that sender's keys — one decode."""
    url = b.redirect_url(IDP_SSO, m.build_authn_request(_request()), relay_state="st", key=sp_key)
    decoded = b.decode_redirect(_query(url))
    assert not decoded.signed and m.parse_authn_request(decoded.element).issuer == SP
    verified = b.verify_redirect(decoded, trusted=[sp_key.certificate], require_signature=True)
    assert verified.signed and verified.element is decoded.element and verified.relay_state == "st"
    with pytest.raises(b.BindingSignatureInvalid):
        b.verify_redirect(decoded, trusted=[idp_key.certificate], require_signature=True)
    tampered = b.decode_redirect(_query(url).replace("RelayState=st", "RelayState=su"))
    with pytest.raises(b.BindingSignatureInvalid):
        b.verify_redirect(tampered, trusted=[sp_key.certificate], require_signature=False)
    unsigned = b.decode_redirect(_query(b.redirect_url(IDP_SSO, m.build_authn_request(_request()))))
    assert not b.verify_redirect(unsigned, trusted=[sp_key.certificate], require_signature=False).signed
    with pytest.raises(b.MissingBindingSignature):
        b.verify_redirect(unsigned, trusted=[sp_key.certificate], require_signature=True)


def test_redirect_rsa_pss_signature(sp_key: KeyPair) -> None:
    from saml.algorithms import RSA_PSS_SHA256

    url = b.redirect_url(IDP_SSO, m.build_authn_request(_request()), key=sp_key, sig_alg=RSA_PSS_SHA256)
    assert b.parse_redirect(_query(url), trusted=[sp_key.certificate], require_signature=True).signed


def test_redirect_unsigned_and_destination_with_query(idp_key: KeyPair) -> None:
    url = b.redirect_url(IDP_SSO + "?tenant=1", m.build_authn_request(_request()), param="SAMLRequest")
    assert url.startswith(IDP_SSO + "?tenant=1&SAMLRequest=")
    msg = b.parse_redirect(_query(url), trusted=[idp_key.certificate], require_signature=False)
    assert not msg.signed and msg.relay_state is None
    with pytest.raises(b.MissingBindingSignature):
        b.parse_redirect(_query(url), trusted=[idp_key.certificate], require_signature=True)


def test_redirect_tampered_query_refused(idp_key: KeyPair) -> None:
    url = b.redirect_url(IDP_SSO, m.build_authn_request(_request()), relay_state="abc", key=idp_key)
    tampered = _query(url).replace("RelayState=abc", "RelayState=abd")
    with pytest.raises(b.BindingSignatureInvalid):
        b.parse_redirect(tampered, trusted=[idp_key.certificate], require_signature=True)


def test_redirect_signature_by_untrusted_key_refused(idp_key: KeyPair, other_key: KeyPair) -> None:
    url = b.redirect_url(IDP_SSO, m.build_authn_request(_request()), key=other_key)
    with pytest.raises(b.BindingSignatureInvalid):
        b.parse_redirect(_query(url), trusted=[idp_key.certificate], require_signature=True)


def test_redirect_signature_over_reordered_params_refused(idp_key: KeyPair) -> None:
    encoded = quote(base64.b64encode(b._deflate(to_bytes(m.build_authn_request(_request())))).decode(), safe="")
    sig_alg = quote(b.default_signature_algorithm(idp_key), safe="")
    reordered = f"RelayState=xyz&SigAlg={sig_alg}&SAMLRequest={encoded}"
    signature = dsig.sign_bytes(idp_key, reordered.encode(), b.default_signature_algorithm(idp_key))
    query = reordered + "&Signature=" + quote(base64.b64encode(signature).decode(), safe="")
    with pytest.raises(b.BindingSignatureInvalid):
        b.parse_redirect(query, trusted=[idp_key.certificate], require_signature=True)


def test_redirect_verifies_raw_encoding_not_a_reencoding(idp_key: KeyPair) -> None:
    """A sender that encodes with lower-case hex escapes signs those octets; we verify exactly those."""
    encoded = base64.b64encode(b._deflate(to_bytes(m.build_authn_request(_request())))).decode()
    raw_value = re.sub(r"%[0-9A-F]{2}", lambda mo: mo.group(0).lower(), quote(encoded, safe=""))
    alg = b.default_signature_algorithm(idp_key)
    signed = f"SAMLRequest={raw_value}&SigAlg={quote(alg, safe='').lower()}"
    signature = dsig.sign_bytes(idp_key, signed.encode(), alg)
    query = signed + "&Signature=" + quote(base64.b64encode(signature).decode(), safe="")
    assert b.parse_redirect(query, trusted=[idp_key.certificate], require_signature=True).signed


def test_redirect_sigalg_outside_policy_refused(sp_key: KeyPair) -> None:
    url = b.redirect_url(IDP_SSO, m.build_authn_request(_request()), key=sp_key, sig_alg=RSA_SHA256)
    query = _query(url).replace(
        quote(RSA_SHA256, safe=""), quote("http://www.w3.org/2000/09/xmldsig#rsa-sha1", safe="")
    )
    with pytest.raises(b.BindingSignatureInvalid, match="not an allowed"):
        b.parse_redirect(query, trusted=[sp_key.certificate], require_signature=True)


def test_redirect_oversize_inflate_refused() -> None:
    bomb = b"<a>" + b" " * (b.MAX_INFLATED_BYTES + 10) + b"</a>"
    value = quote(base64.b64encode(b._deflate(bomb)).decode(), safe="")
    with pytest.raises(b.InflateLimitExceeded, match="more than 102400 bytes"):
        b.parse_redirect(f"SAMLRequest={value}", trusted=None, require_signature=False)


def test_redirect_malformed_inputs() -> None:
    with pytest.raises(BindingError, match="exactly one of"):
        b.parse_redirect("RelayState=x", trusted=None, require_signature=False)
    with pytest.raises(BindingError, match="more than once"):
        b.parse_redirect("SAMLRequest=a&SAMLRequest=b", trusted=None, require_signature=False)
    with pytest.raises(BindingError, match="not valid base64"):
        b.parse_redirect("SAMLRequest=%%%", trusted=None, require_signature=False)
    with pytest.raises(BindingError, match="not raw DEFLATE"):
        b.parse_redirect(
            "SAMLRequest=" + quote(base64.b64encode(b"plain").decode()), trusted=None, require_signature=False
        )
    truncated = quote(base64.b64encode(b._deflate(b"<a>hello</a>")[:-3]).decode(), safe="")
    with pytest.raises(BindingError, match="truncated"):
        b.parse_redirect("SAMLRequest=" + truncated, trusted=None, require_signature=False)
    doctype = quote(base64.b64encode(b._deflate(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')).decode(), safe="")
    with pytest.raises(XmlSecurityError):
        b.parse_redirect("SAMLRequest=" + doctype, trusted=None, require_signature=False)
    with pytest.raises(b.BindingSignatureInvalid, match="without SigAlg"):
        b.parse_redirect("SAMLRequest=x&Signature=y", trusted=None, require_signature=False)


def test_relay_state_length_enforced() -> None:
    el = m.build_authn_request(_request())
    b.redirect_url(IDP_SSO, el, relay_state="x" * 80)
    with pytest.raises(b.RelayStateTooLong):
        b.redirect_url(IDP_SSO, el, relay_state="x" * 81)
    with pytest.raises(b.RelayStateTooLong):
        b.post_form(ACS, el, relay_state="ä" * 41)
    url = b.redirect_url(IDP_SSO, el)
    with pytest.raises(b.RelayStateTooLong):
        b.parse_redirect(_query(url) + "&RelayState=" + "y" * 81, trusted=None, require_signature=False)
    with pytest.raises(b.RelayStateTooLong):
        b.parse_post("PHgvPg==", "z" * 81)


def test_post_form_round_trip_without_inline_script(idp_key: KeyPair) -> None:
    resp = m.build_response(m.Response(issuer="https://idp", destination=ACS))
    relay = '"><script>alert(1)</script>'
    page = b.post_form(ACS + '?a=1&b="2"', resp, relay_state=relay).decode()
    assert "<script" not in page  # neither inline script nor the injected one
    assert 'action="https://service.stadt.example/saml/acs?a=1&amp;b=&quot;2&quot;"' in page
    assert "Continue / Weiter" in page and '<button type="submit">' in page
    value = re.search(r'name="SAMLResponse" value="([^"]+)"', page)
    relay_value = re.search(r'name="RelayState" value="([^"]+)"', page)
    assert value and relay_value
    assert html.unescape(relay_value.group(1)) == relay
    parsed = b.parse_post(html.unescape(value.group(1)), html.unescape(relay_value.group(1)))
    assert m.parse_response(parsed).destination == ACS


def test_post_form_external_script_hook() -> None:
    page = b.post_form(ACS, m.build_response(m.Response(issuer="x")), script_src="/static/autopost.js").decode()
    assert '<script src="/static/autopost.js" defer></script>' in page
    assert re.search(r"<script[^>]*>[^<]", page) is None  # no inline code
    assert f'id="{b.FORM_ID}"' in page and b.FORM_ID.encode() in b.AUTOSUBMIT_SCRIPT


def test_parse_post_errors() -> None:
    with pytest.raises(BindingError, match="not valid base64"):
        b.parse_post("not base64!")
    with pytest.raises(BindingError, match="longer than"):
        b.parse_post("A" * (b.MAX_POST_VALUE_CHARS + 1))
    with pytest.raises(XmlSecurityError):
        b.parse_post(base64.b64encode(b"<a><b></a>").decode())
    # base64 wrapped over lines, as some senders do, is fine
    wrapped = base64.encodebytes(to_bytes(m.build_response(m.Response(issuer="x")))).decode()
    assert "\n" in wrapped and b.parse_post(wrapped).tag == qname("samlp", "Response")


def test_redirect_response_param(idp_key: KeyPair) -> None:
    lr = m.build_logout_response(m.LogoutResponse(issuer="https://idp", in_response_to="_x"))
    url = b.redirect_url(SP, lr, param="SAMLResponse", key=idp_key)
    assert parse_qs(_query(url))["SAMLResponse"]
    msg = b.parse_redirect(_query(url), trusted=[idp_key.certificate], require_signature=True)
    assert msg.param == "SAMLResponse"
    assert m.parse_logout_response(msg.element).in_response_to == "_x"


def test_inflate_helper_roundtrip() -> None:
    data = b"<x>" + b"a" * 1000 + b"</x>"
    assert b._inflate(b._deflate(data), 2000) == data
    assert zlib.decompress(b._deflate(data), -15) == data
