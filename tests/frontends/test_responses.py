"""What the service receives: the signed (and, where registered, encrypted) Response built by
``finish``, and the signed error Responses built by ``fail`` — each checked with the SP-side validator
of the ``saml`` toolkit, the way a city service checks them."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import make_mocked_request
from lxml import etree

from eid_gateway.core.port import FailureKind
from eid_gateway.frontends.base import FlowContext
from eid_gateway.identity import Identity, Place
from saml import InMemoryRequestStore, ResponseValidator, parse_response, verify_enveloped
from saml.messages import (
    NAMEID_PERSISTENT,
    STATUS_AUTHN_FAILED,
    STATUS_REQUEST_DENIED,
    STATUS_RESPONDER,
)
from saml.validate import DecryptionNotConfigured, StatusError
from saml.xml import qname

from . import helpers
from .conftest import Harness
from .helpers import SP_ACS, SP_ENTITY, form_of, saml_response_of

ERIKA = replace(
    helpers.ERIKA,
    address=Place(street="HEIDESTRASSE 17", city="KÖLN", country="D", zip_code="51147"),
    nationality="D",
    authenticated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
)
PSEUDONYM = "pseudonymforportal"


def _flow(
    h: Harness,
    service_id: str = "portal",
    acs: str = SP_ACS,
    released: str | None = None,
    relay_state: str | None = "rs-9",
) -> FlowContext:
    service = h.config.services.by_id(service_id)
    assert service is not None and service.saml is not None
    state = {
        "request_id": "_req1",
        "acs_url": acs,
        "relay_state": relay_state or "",
        "has_relay_state": "1" if relay_state is not None else "",
        "binding": "post",
        "released": released if released is not None else ",".join(sorted(a.value for a in service.allowed_attributes)),
    }
    return FlowContext("ref", service, state, "de")


def _validator(h: Harness, entity: str = SP_ENTITY, acs: str = SP_ACS, **kw: object) -> ResponseValidator:
    store = InMemoryRequestStore()
    store.add("_req1", expires_at=datetime.now(UTC) + timedelta(minutes=5))
    certs = [h.config.keys.saml_signing.certificate]
    return ResponseValidator(
        sp_entity_id=entity,
        acs_url=acs,
        idp_entity_id=h.config.saml_idp.entity_id,
        idp_certs=certs,
        request_store=store,
        require_signed_response=True,
        **kw,
    )  # type: ignore[arg-type]


async def _finish(h: Harness, flow: FlowContext, identity: Identity = ERIKA) -> str:
    request = make_mocked_request("GET", "/eid/refresh/ref")
    response = await h.frontend.finish(request, flow, identity, PSEUDONYM)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.body  # type: ignore[attr-defined]
    assert isinstance(body, bytes)
    return body.decode("utf-8")


async def test_finish_posts_a_response_the_service_accepts(harness: Harness) -> None:
    page = await _finish(harness, _flow(harness))
    action, fields = form_of(page)
    assert action == SP_ACS
    assert fields["RelayState"] == "rs-9"
    result = _validator(harness).validate(base64.b64decode(fields["SAMLResponse"]))
    assert result.response_signed and result.assertion_signed and not result.encrypted
    assert result.in_response_to == "_req1"
    assert result.name_id.value == PSEUDONYM
    assert result.name_id.format == NAMEID_PERSISTENT
    assert result.name_id.sp_name_qualifier == SP_ENTITY
    assert result.authn_context == "http://eidas.europa.eu/LoA/high"
    assert result.authn_instant == ERIKA.authenticated_at
    assert result.attributes == {
        "urn:eid-gateway:attribute:given_names": ["ERIKA"],
        "urn:eid-gateway:attribute:family_names": ["MUSTERMANN"],
        "urn:eid-gateway:attribute:date_of_birth": ["1964-08-12"],
        "urn:eid-gateway:attribute:address": [
            '{"city":"KÖLN","country":"D","street":"HEIDESTRASSE 17","zip_code":"51147"}'
        ],
        "urn:eid-gateway:attribute:pseudonym": [PSEUDONYM],
    }
    bearer = result.assertion.subject.confirmations[0]
    assert bearer.recipient == SP_ACS and bearer.in_response_to == "_req1"
    assert bearer.not_on_or_after is not None
    lifetime = bearer.not_on_or_after - result.assertion.issue_instant
    assert lifetime == timedelta(minutes=5)
    assert result.assertion.conditions is not None
    assert result.assertion.conditions.audience_restrictions == ((SP_ENTITY,),)


async def test_finish_releases_only_what_the_request_narrowed_to(harness: Harness) -> None:
    page = await _finish(harness, _flow(harness, released="family_names"))
    _, fields = form_of(page)
    result = _validator(harness).validate(base64.b64decode(fields["SAMLResponse"]))
    assert set(result.attributes) == {"urn:eid-gateway:attribute:family_names"}
    assert "ERIKA" not in base64.b64decode(fields["SAMLResponse"]).decode()


async def test_finish_never_releases_beyond_the_registration(harness: Harness) -> None:
    # nationality is on the card and in the (tampered) flow state, but not in the registration
    page = await _finish(harness, _flow(harness, released="family_names,nationality"))
    _, fields = form_of(page)
    assert b"nationality" not in base64.b64decode(fields["SAMLResponse"])


async def test_finish_encrypts_for_a_service_that_registered_a_certificate(harness: Harness) -> None:
    acs = "https://sealed.example.de/acs"
    page = await _finish(harness, _flow(harness, "sealed", acs))
    _, fields = form_of(page)
    xml = base64.b64decode(fields["SAMLResponse"])
    assert b"ERIKA" not in xml and b"EncryptedAssertion" in xml
    entity = "https://sealed.example.de/saml"
    with pytest.raises(DecryptionNotConfigured):
        _validator(harness, entity, acs).validate(xml)
    result = _validator(harness, entity, acs, decryption_keys=[harness.keys.sp_enc]).validate(xml)
    assert result.encrypted and result.assertion_signed
    assert result.attributes["urn:eid-gateway:attribute:given_names"] == ["ERIKA"]


@pytest.mark.parametrize(
    ("sid", "transport", "digest"),
    [
        ("sealed", "http://www.w3.org/2009/xmlenc11#rsa-oaep", "http://www.w3.org/2001/04/xmlenc#sha256"),
        ("sealed-1-0", "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", "http://www.w3.org/2000/09/xmldsig#sha1"),
    ],
)
async def test_finish_wraps_the_key_as_the_service_registered(
    harness: Harness, sid: str, transport: str, digest: str
) -> None:
    host = "sealed.example.de" if sid == "sealed" else "sealed-1-0.example.de"
    acs = f"https://{host}/acs"
    page = await _finish(harness, _flow(harness, sid, acs))
    _, fields = form_of(page)
    xml = base64.b64decode(fields["SAMLResponse"])
    root = etree.fromstring(xml)
    methods = root.findall(
        ".//{http://www.w3.org/2001/04/xmlenc#}EncryptedKey/{http://www.w3.org/2001/04/xmlenc#}EncryptionMethod"
    )
    assert [m.get("Algorithm") for m in methods] == [transport]
    assert [d.get("Algorithm") for d in methods[0] if d.tag == "{http://www.w3.org/2000/09/xmldsig#}DigestMethod"] == [
        digest
    ]
    data = root.find(
        ".//{http://www.w3.org/2001/04/xmlenc#}EncryptedData/{http://www.w3.org/2001/04/xmlenc#}EncryptionMethod"
    )
    assert data is not None and data.get("Algorithm") == "http://www.w3.org/2009/xmlenc11#aes256-gcm"
    result = _validator(harness, f"https://{host}/saml", acs, decryption_keys=[harness.keys.sp_enc]).validate(xml)
    assert result.encrypted and result.attributes["urn:eid-gateway:attribute:given_names"] == ["ERIKA"]


async def test_finish_refuses_an_acs_url_no_longer_registered(harness: Harness) -> None:
    with pytest.raises(RuntimeError):
        await _finish(harness, _flow(harness, acs="https://evil.example.net/acs"))


@pytest.mark.parametrize(
    ("failure", "sub_code"),
    [
        (FailureKind.CANCELLED, STATUS_REQUEST_DENIED),
        (FailureKind.WRONG_PIN, STATUS_AUTHN_FAILED),
        (FailureKind.CARD_BLOCKED, STATUS_AUTHN_FAILED),
        (FailureKind.DOCUMENT_INVALID, STATUS_AUTHN_FAILED),
        (FailureKind.TIMEOUT, STATUS_AUTHN_FAILED),
        (FailureKind.SERVER_ERROR, None),
    ],
)
async def test_fail_sends_a_signed_status(harness: Harness, failure: FailureKind, sub_code: str | None) -> None:
    request = make_mocked_request("POST", "/eid/return/ref")
    response = await harness.frontend.fail(request, _flow(harness, relay_state=None), failure)
    body = response.body  # type: ignore[attr-defined]
    action, element, relay_state = saml_response_of(body.decode())
    assert action == SP_ACS and relay_state is None
    verified = verify_enveloped(element, [harness.config.keys.saml_signing.certificate])
    parsed = parse_response(verified)
    assert (parsed.status.code, parsed.status.sub_code) == (STATUS_RESPONDER, sub_code)
    assert parsed.status.message == failure.value
    assert parsed.in_response_to == "_req1"
    assert verified.find(qname("saml", "Assertion")) is None
    # the service's validator reports the status (and uses up the pending request)
    with pytest.raises(StatusError) as info:
        _validator(harness).validate(base64.b64decode(form_of(body.decode())[1]["SAMLResponse"]))
    assert info.value.status.sub_code == sub_code
