"""AuthnRequest handling at the gateway's SSO endpoint.

Refusals before a trustworthy ACS URL is known must end on a citizen page (never a redirect or a POST
to an address from the request); refusals after it go to the service as a signed SAML error Response.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from eid_gateway.identity import Attribute, LevelOfAssurance
from saml import AuthnRequest, NameIDPolicy, build_authn_request, parse_response, verify_enveloped
from saml.messages import (
    BINDING_HTTP_REDIRECT,
    NAMEID_TRANSIENT,
    STATUS_INVALID_NAMEID_POLICY,
    STATUS_NO_AUTHN_CONTEXT,
    STATUS_NO_PASSIVE,
    STATUS_REQUEST_DENIED,
    STATUS_REQUESTER,
    STATUS_RESPONDER,
    STATUS_UNSUPPORTED_BINDING,
    RequestedAuthnContext,
)
from saml.xml import qname

from .conftest import Harness
from .helpers import (
    OPEN_ACS,
    OPEN_ENTITY,
    SP_ACS,
    SP_ACS_2,
    authn_request,
    get_raw,
    post_fields,
    redirect_query,
    saml_response_of,
    stale,
)

EVIL_ACS = "https://evil.example.net/acs"


async def _redirect(h: Harness, request: AuthnRequest, *, signed: bool = True, relay_state: str | None = "rs-1") -> Any:
    return await get_raw(h.client, "/saml/sso", redirect_query(request, h.keys.sp if signed else None, relay_state))


def _assert_citizen_page(status: int, body: str, headers: object, *, title: str) -> None:
    assert status == 400
    assert title in body
    assert "SAMLResponse" not in body and "<form" not in body
    assert "Location" not in headers  # type: ignore[operator]


def _error_status(h: Harness, body: str, acs: str = SP_ACS) -> tuple[str, str | None, str | None]:
    action, element, relay_state = saml_response_of(body)
    assert action == acs
    verified = verify_enveloped(element, [h.config.keys.saml_signing.certificate])
    response = parse_response(verified)
    assert response.destination == acs
    assert response.issuer == h.config.saml_idp.entity_id
    assert [c for c in verified if c.tag in (qname("saml", "Assertion"), qname("saml", "EncryptedAssertion"))] == []
    return response.status.code, response.status.sub_code, relay_state


# --- accepted ---------------------------------------------------------------------------------------------


async def test_signed_redirect_request_begins_the_flow(harness: Harness) -> None:
    request = authn_request()
    resp = await _redirect(harness, request)
    assert resp.status == 303
    assert resp.headers["Location"] == "/signin/test-ref"
    [begun] = harness.flows.begun
    assert begun.service.id == "portal"
    assert begun.frontend == "saml"
    assert begun.state["request_id"] == request.id
    assert begun.state["acs_url"] == SP_ACS
    assert begun.state["relay_state"] == "rs-1"
    assert begun.state["binding"] == BINDING_HTTP_REDIRECT
    assert begun.eid_request.required == {Attribute.FAMILY_NAMES, Attribute.GIVEN_NAMES}
    assert begun.eid_request.optional == {Attribute.DATE_OF_BIRTH, Attribute.ADDRESS, Attribute.PSEUDONYM}
    assert begun.eid_request.level_of_assurance is LevelOfAssurance.HIGH


async def test_signed_post_request_begins_the_flow(harness: Harness) -> None:
    request = authn_request(acs_url=SP_ACS_2)
    resp = await harness.client.post("/saml/sso", data=post_fields(request, harness.keys.sp), allow_redirects=False)
    assert resp.status == 303
    [begun] = harness.flows.begun
    assert begun.state["acs_url"] == SP_ACS_2
    assert begun.state["binding"].endswith("HTTP-POST")


async def test_absent_acs_url_means_the_first_registered(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(acs_url=None))
    assert resp.status == 303
    assert harness.flows.begun[0].state["acs_url"] == SP_ACS


async def test_acs_index_selects_a_registered_url(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(acs_url=None, acs_index=1))
    assert resp.status == 303
    assert harness.flows.begun[0].state["acs_url"] == SP_ACS_2


async def test_unsigned_request_accepted_only_where_the_service_switched_signatures_off(harness: Harness) -> None:
    request = authn_request(OPEN_ENTITY, acs_url=OPEN_ACS)
    resp = await _redirect(harness, request, signed=False)
    assert resp.status == 303
    assert harness.flows.begun[0].service.id == "open"


async def test_requested_attribute_extension_narrows_the_release(harness: Harness) -> None:
    ext = etree.Element(
        qname("md", "RequestedAttribute"),
        Name="urn:eid-gateway:attribute:given_names",
        nsmap={"md": "urn:oasis:names:tc:SAML:2.0:metadata"},
    )
    ext2 = etree.Element(
        qname("md", "RequestedAttribute"),
        Name="urn:eid-gateway:attribute:nationality",
        nsmap={"md": "urn:oasis:names:tc:SAML:2.0:metadata"},
    )
    resp = await _redirect(harness, authn_request(extensions=(ext, ext2)))
    assert resp.status == 303
    [begun] = harness.flows.begun
    # nationality is not in the registration: asking for it does not widen the release
    assert begun.state["released"] == "given_names"
    assert begun.eid_request.required == {Attribute.GIVEN_NAMES}
    assert begun.eid_request.optional == frozenset()


# --- citizen pages: no trustworthy ACS yet ---------------------------------------------------------------


async def test_unknown_service_gets_a_page_not_a_redirect(harness: Harness) -> None:
    request = authn_request("https://unknown.example.net/saml", acs_url=EVIL_ACS)
    resp = await _redirect(harness, request)
    body = await resp.text()
    _assert_citizen_page(resp.status, body, resp.headers, title="Unbekannter Dienst")
    assert EVIL_ACS not in body
    assert harness.flows.begun == []


async def test_error_page_speaks_english_when_asked(harness: Harness) -> None:
    request = authn_request("https://unknown.example.net/saml")
    resp = await harness.client.post(
        "/saml/sso", data=post_fields(request, harness.keys.sp), headers={"Accept-Language": "en-GB,en;q=0.9"}
    )
    body = await resp.text()
    assert resp.status == 400
    assert "<h2>Unknown service</h2>" in body and 'lang="en"' in body
    assert "Unbekannter Dienst" not in body  # one language per page (issue 16)


async def test_unsigned_redirect_request_is_refused(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(), signed=False)
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="nicht vertrauenswürdig")
    assert harness.flows.begun == []


async def test_unsigned_post_request_is_refused(harness: Harness) -> None:
    resp = await harness.client.post("/saml/sso", data=post_fields(authn_request(), None))
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="nicht vertrauenswürdig")


async def test_redirect_signature_by_another_key_is_refused(harness: Harness) -> None:
    query = redirect_query(authn_request(), harness.keys.other)
    resp = await get_raw(harness.client, "/saml/sso", query)
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="nicht vertrauenswürdig")


async def test_post_signature_by_another_key_is_refused(harness: Harness) -> None:
    resp = await harness.client.post("/saml/sso", data=post_fields(authn_request(), harness.keys.other))
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="nicht vertrauenswürdig")


async def test_redirect_signature_is_checked_over_the_raw_query(harness: Harness) -> None:
    """Decoding '%3A' to ':' in SigAlg means the same to a URL parser but not to the signature."""
    query = redirect_query(authn_request(), harness.keys.sp)
    assert "SigAlg=http%3A%2F%2F" in query
    altered = query.replace("SigAlg=http%3A%2F%2F", "SigAlg=http:%2F%2F")
    resp = await get_raw(harness.client, "/saml/sso", altered)
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="nicht vertrauenswürdig")


async def test_changed_relay_state_breaks_the_redirect_signature(harness: Harness) -> None:
    query = redirect_query(authn_request(), harness.keys.sp, relay_state="a")
    resp = await get_raw(harness.client, "/saml/sso", query.replace("RelayState=a", "RelayState=b"))
    assert resp.status == 400
    assert harness.flows.begun == []


async def test_unregistered_acs_url_is_never_used(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(acs_url=EVIL_ACS))
    body = await resp.text()
    _assert_citizen_page(resp.status, body, resp.headers, title="Unbekannte Rücksprungadresse")
    assert EVIL_ACS not in body


async def test_acs_url_must_match_exactly(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(acs_url=SP_ACS + "/"))
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="Unbekannte Rücksprungadresse")


async def test_acs_index_out_of_range_is_refused(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(acs_url=None, acs_index=7))
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="Unbekannte Rücksprungadresse")


async def test_garbage_request_gets_a_page(harness: Harness) -> None:
    resp = await get_raw(harness.client, "/saml/sso", "SAMLRequest=not-deflate%21")
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="Ungültige Anmeldeanfrage")
    resp = await harness.client.post("/saml/sso", data={"RelayState": "x"})
    assert resp.status == 400


async def test_request_with_doctype_is_refused_before_any_lookup(harness: Harness) -> None:
    import base64

    xml = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]>' + etree.tostring(build_authn_request(authn_request()))
    resp = await harness.client.post("/saml/sso", data={"SAMLRequest": base64.b64encode(xml).decode()})
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="Ungültige Anmeldeanfrage")


# --- SAML error responses: the ACS is known and registered ------------------------------------------------


async def test_replayed_request_id_gets_an_error_response(harness: Harness) -> None:
    query = redirect_query(authn_request(), harness.keys.sp)
    first = await get_raw(harness.client, "/saml/sso", query)
    assert first.status == 303
    again = await get_raw(harness.client, "/saml/sso", query)
    assert again.status == 200
    code, sub, relay_state = _error_status(harness, await again.text())
    assert (code, sub) == (STATUS_REQUESTER, STATUS_REQUEST_DENIED)
    assert relay_state == "rs-1"
    assert len(harness.flows.begun) == 1


async def test_replay_is_detected_across_bindings(harness: Harness) -> None:
    request = authn_request()
    assert (await _redirect(harness, request)).status == 303
    resp = await harness.client.post("/saml/sso", data=post_fields(request, harness.keys.sp))
    assert _error_status(harness, await resp.text())[:2] == (STATUS_REQUESTER, STATUS_REQUEST_DENIED)


async def test_stale_issue_instant_gets_an_error_response(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(issue_instant=stale().replace(microsecond=0)))
    assert resp.status == 200
    code, sub, _ = _error_status(harness, await resp.text())
    assert (code, sub) == (STATUS_REQUESTER, STATUS_REQUEST_DENIED)
    assert harness.flows.begun == []


async def test_future_issue_instant_gets_an_error_response(harness: Harness) -> None:
    from datetime import timedelta

    from .helpers import now

    resp = await _redirect(harness, authn_request(issue_instant=(now() + timedelta(minutes=10)).replace(microsecond=0)))
    assert _error_status(harness, await resp.text())[:2] == (STATUS_REQUESTER, STATUS_REQUEST_DENIED)


async def test_wrong_destination_gets_an_error_response(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(destination="https://other-idp.example.de/sso"))
    assert _error_status(harness, await resp.text())[:2] == (STATUS_REQUESTER, STATUS_REQUEST_DENIED)


async def test_passive_request_gets_no_passive(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(is_passive=True))
    assert _error_status(harness, await resp.text())[:2] == (STATUS_RESPONDER, STATUS_NO_PASSIVE)


async def test_transient_name_id_policy_begins_the_flow(harness: Harness) -> None:
    """Refused before issue 15; now answered with a one-time NameID (tests/frontends/test_transient_name_id.py)."""
    resp = await _redirect(harness, authn_request(name_id_policy=NameIDPolicy(format=NAMEID_TRANSIENT)))
    assert resp.status == 303
    assert harness.flows.begun[0].state["name_id_format"] == NAMEID_TRANSIENT


async def test_name_id_policy_for_another_service_is_refused(harness: Harness) -> None:
    policy = NameIDPolicy(format=NAMEID_TRANSIENT, sp_name_qualifier="https://other.example.de/saml")
    resp = await _redirect(harness, authn_request(name_id_policy=policy))
    assert _error_status(harness, await resp.text())[:2] == (STATUS_REQUESTER, STATUS_INVALID_NAMEID_POLICY)


async def test_redirect_response_binding_is_unsupported(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(protocol_binding=BINDING_HTTP_REDIRECT))
    assert _error_status(harness, await resp.text())[:2] == (STATUS_REQUESTER, STATUS_UNSUPPORTED_BINDING)


async def test_level_of_assurance_must_be_offered(harness: Harness) -> None:
    too_high = RequestedAuthnContext(("urn:example:loa:ultra",), "exact")
    resp = await _redirect(harness, authn_request(requested_authn_context=too_high))
    assert _error_status(harness, await resp.text())[:2] == (STATUS_REQUESTER, STATUS_NO_AUTHN_CONTEXT)
    minimum = RequestedAuthnContext((LevelOfAssurance.SUBSTANTIAL.value,), "minimum")
    resp = await _redirect(harness, authn_request(requested_authn_context=minimum))
    assert resp.status == 303


async def test_error_response_keeps_no_relay_state_when_none_was_sent(harness: Harness) -> None:
    resp = await _redirect(harness, authn_request(is_passive=True), relay_state=None)
    _, _, relay_state = _error_status(harness, await resp.text())
    assert relay_state is None


async def test_acs_url_changed_after_signing_is_refused(harness: Harness) -> None:
    """Signature wrapping / tampering: the service signed SP_ACS, the attacker swapped in another URL."""
    import base64

    fields = post_fields(authn_request(), harness.keys.sp)
    xml = base64.b64decode(fields["SAMLRequest"]).replace(SP_ACS.encode(), SP_ACS_2.encode())
    fields["SAMLRequest"] = base64.b64encode(xml).decode()
    resp = await harness.client.post("/saml/sso", data=fields)
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="nicht vertrauenswürdig")
    assert harness.flows.begun == []


async def test_oversized_relay_state_is_refused(harness: Harness) -> None:
    query = redirect_query(authn_request(), harness.keys.sp, relay_state="a")
    resp = await get_raw(harness.client, "/saml/sso", query.replace("RelayState=a", "RelayState=" + "x" * 81))
    _assert_citizen_page(resp.status, await resp.text(), resp.headers, title="Ungültige Anmeldeanfrage")
