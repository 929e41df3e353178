"""Transient NameIDs for services that ask for them (mod_auth_mellon's generated metadata names no
NameIDFormat and its AuthnRequests ask for transient): a fresh random value per sign-in, not the
pseudonym. Persistent (the per-service pseudonym) stays the default for no policy, ``unspecified`` and
``persistent``. Each sign-in goes through the real SSO endpoint, and the answer is built from the state
the frontend handed to the flow, then checked with the toolkit's SP-side validator."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import make_mocked_request

from eid_gateway.frontends.base import FlowContext
from eid_gateway.identity import Attribute
from eid_gateway.services import Service
from saml import InMemoryRequestStore, NameIDPolicy, ResponseValidator, ValidatedResponse, parse_metadata
from saml.messages import (
    NAMEID_EMAIL,
    NAMEID_PERSISTENT,
    NAMEID_TRANSIENT,
    NAMEID_UNSPECIFIED,
    STATUS_INVALID_NAMEID_POLICY,
    STATUS_REQUESTER,
)

from .conftest import Harness, make_service
from .helpers import ERIKA, SP_ACS, SP_ENTITY, authn_request, form_of, get_raw, redirect_query, saml_response_of

PSEUDONYM = "pseudonym-of-erika-for-portal"
PSEUDONYM_ATTRIBUTE = "urn:eid-gateway:attribute:pseudonym"


async def _sign_in(h: Harness, policy: NameIDPolicy | None, service: Service | None = None) -> ValidatedResponse:
    """One sign-in: the AuthnRequest through /saml/sso, then ``finish`` with the state it produced."""
    request = authn_request(name_id_policy=policy)
    resp = await get_raw(h.client, "/saml/sso", redirect_query(request, h.keys.sp))
    assert resp.status == 303, await resp.text()
    begun = h.flows.begun[-1]
    flow = FlowContext("ref", service or begun.service, begun.state, "de")
    answer = await h.frontend.finish(make_mocked_request("GET", "/eid/refresh/ref"), flow, ERIKA, PSEUDONYM)
    body = answer.body  # type: ignore[attr-defined]
    assert isinstance(body, bytes)
    _, fields = form_of(body.decode("utf-8"))
    store = InMemoryRequestStore()
    store.add(request.id, expires_at=datetime.now(UTC) + timedelta(minutes=5))
    validator = ResponseValidator(
        sp_entity_id=SP_ENTITY,
        acs_url=SP_ACS,
        idp_entity_id=h.config.saml_idp.entity_id,
        idp_certs=[h.config.keys.saml_signing.certificate],
        request_store=store,
        require_signed_response=True,
    )
    return validator.validate(base64.b64decode(fields["SAMLResponse"]))


async def test_transient_asked_for_gives_a_fresh_random_name_id_each_sign_in(harness: Harness) -> None:
    transient = NameIDPolicy(format=NAMEID_TRANSIENT, allow_create=True)
    first = await _sign_in(harness, transient)
    second = await _sign_in(harness, transient)
    for result in (first, second):
        assert result.name_id.format == NAMEID_TRANSIENT
        assert result.name_id.value != PSEUDONYM
        assert PSEUDONYM not in result.name_id.value
        assert re.fullmatch(r"_[0-9a-f]{40}", result.name_id.value)  # 160 random bits
        assert result.name_id.sp_name_qualifier == SP_ENTITY
    assert first.name_id.value != second.name_id.value


async def test_the_pseudonym_attribute_is_still_released_to_a_service_registered_for_it(harness: Harness) -> None:
    result = await _sign_in(harness, NameIDPolicy(format=NAMEID_TRANSIENT))
    assert result.attributes[PSEUDONYM_ATTRIBUTE] == [PSEUDONYM]
    assert result.attributes["urn:eid-gateway:attribute:family_names"] == ["MUSTERMANN"]


async def test_a_service_not_registered_for_the_pseudonym_never_sees_it(harness: Harness) -> None:
    """Transient is the way for such a service to get a NameID at all without the pseudonym."""
    no_pseudonym = make_service(harness.keys, attributes=frozenset({Attribute.FAMILY_NAMES, Attribute.GIVEN_NAMES}))
    result = await _sign_in(harness, NameIDPolicy(format=NAMEID_TRANSIENT), service=no_pseudonym)
    assert result.name_id.format == NAMEID_TRANSIENT
    assert PSEUDONYM_ATTRIBUTE not in result.attributes
    assert set(result.attributes) == {"urn:eid-gateway:attribute:family_names", "urn:eid-gateway:attribute:given_names"}
    assert PSEUDONYM not in str(result.attributes) and result.name_id.value != PSEUDONYM


@pytest.mark.parametrize(
    "policy",
    [None, NameIDPolicy(), NameIDPolicy(format=NAMEID_UNSPECIFIED), NameIDPolicy(format=NAMEID_PERSISTENT)],
    ids=["no-policy", "no-format", "unspecified", "persistent"],
)
async def test_persistent_pseudonym_stays_the_default(harness: Harness, policy: NameIDPolicy | None) -> None:
    result = await _sign_in(harness, policy)
    assert result.name_id.format == NAMEID_PERSISTENT
    assert result.name_id.value == PSEUDONYM


async def test_other_name_id_formats_are_still_refused(harness: Harness) -> None:
    request = authn_request(name_id_policy=NameIDPolicy(format=NAMEID_EMAIL))
    resp = await get_raw(harness.client, "/saml/sso", redirect_query(request, harness.keys.sp))
    _, element, _ = saml_response_of(await resp.text())
    status = element.find("{urn:oasis:names:tc:SAML:2.0:protocol}Status")
    assert status is not None
    codes = [c.get("Value") for c in status.iter("{urn:oasis:names:tc:SAML:2.0:protocol}StatusCode")]
    assert codes == [STATUS_REQUESTER, STATUS_INVALID_NAMEID_POLICY]
    assert harness.flows.begun == []


def test_metadata_offers_persistent_first_and_transient(harness: Harness) -> None:
    entity = parse_metadata(
        harness.frontend.metadata_xml(), trusted=[harness.config.keys.saml_signing.certificate], require_signature=True
    )
    assert entity.idp is not None
    assert entity.idp.name_id_formats == (NAMEID_PERSISTENT, NAMEID_TRANSIENT)
