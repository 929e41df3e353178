"""The gateway's IdP metadata: stable URL, both signing keys for rollover, signed, with validity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eid_gateway.frontends.saml_idp import idp_metadata
from saml import generate_key_pair, parse_metadata
from saml.messages import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, NAMEID_PERSISTENT, NAMEID_TRANSIENT
from saml.metadata import MetadataSignatureInvalid, MetadataSignatureMissing

from .conftest import Harness
from .helpers import SSO_URL


async def _fetch(h: Harness) -> bytes:
    resp = await h.client.get("/saml/metadata")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/samlmetadata+xml"
    return await resp.read()


async def test_metadata_lists_current_and_next_signing_key(harness: Harness) -> None:
    keys = harness.config.keys
    assert keys.saml_signing_next is not None
    entity = parse_metadata(await _fetch(harness), trusted=[keys.saml_signing.certificate], require_signature=True)
    assert entity.signed
    assert entity.entity_id == harness.config.saml_idp.entity_id
    assert entity.idp is not None
    assert entity.idp.signing_certificates() == [keys.saml_signing.certificate, keys.saml_signing_next.certificate]
    assert entity.idp.want_authn_requests_signed is True
    assert entity.idp.sso_location(BINDING_HTTP_REDIRECT) == SSO_URL
    assert entity.idp.sso_location(BINDING_HTTP_POST) == SSO_URL
    assert entity.idp.name_id_formats == (NAMEID_PERSISTENT, NAMEID_TRANSIENT)


async def test_metadata_has_validity_and_cache_duration(harness: Harness) -> None:
    entity = parse_metadata(await _fetch(harness))
    assert entity.valid_until is not None and entity.cache_duration is not None
    now = datetime.now(UTC)
    assert now + timedelta(days=6) < entity.valid_until <= now + timedelta(days=7, minutes=1)
    assert entity.cache_duration == timedelta(hours=1)


async def test_metadata_does_not_verify_with_another_key(harness: Harness) -> None:
    other = generate_key_pair("ec-p256")
    with pytest.raises(MetadataSignatureInvalid):
        parse_metadata(await _fetch(harness), trusted=[other.certificate], require_signature=True)


async def test_tampered_metadata_fails_verification(harness: Harness) -> None:
    xml = await _fetch(harness)
    tampered = xml.replace(SSO_URL.encode(), b"https://evil.example.net/sso", 1)
    assert tampered != xml
    with pytest.raises(MetadataSignatureInvalid):
        parse_metadata(tampered, trusted=[harness.config.keys.saml_signing.certificate], require_signature=True)
    with pytest.raises(MetadataSignatureMissing):
        parse_metadata(xml, require_signature=True)


async def test_metadata_url_is_stable_and_cached(harness: Harness) -> None:
    first = await _fetch(harness)
    assert await _fetch(harness) == first  # rebuilt only when older than cacheDuration


def test_cli_metadata_matches_the_served_entity(base_config: object) -> None:
    from eid_gateway.config import GatewayConfig

    assert isinstance(base_config, GatewayConfig)
    entity = parse_metadata(
        idp_metadata(base_config), trusted=[base_config.keys.saml_signing.certificate], require_signature=True
    )
    assert entity.entity_id == base_config.saml_idp.entity_id
