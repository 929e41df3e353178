"""The demo city service as a relying party: it trusts only what verifies against the gateway's
metadata, and tells the citizen clearly when something is wrong."""

from __future__ import annotations

import base64

from eid_gateway.app import create_demo_only_app
from eid_gateway.frontends.saml_idp import build_success_response
from eid_gateway.identity import Attribute, Identity
from helpers.gateway import Browser, Gateway, StartGateway
from saml import generate_key_pair, to_bytes


async def _post_to_acs(browser: Browser, gw: Gateway, xml: bytes, relay_state: str = "de") -> tuple[int, str]:
    resp = await browser.session.post(
        gw.url("/demo/acs"),
        data={
            "SAMLResponse": base64.b64encode(xml).decode("ascii"),
            "RelayState": relay_state,
        },
    )
    return resp.status, await resp.text()


def _forged_response(gw: Gateway, request_id: str, *, key_kind: str = "rsa-3072") -> bytes:
    """A well-formed Response for the demo, signed by a key that is not in the gateway's metadata."""
    demo = gw.config.services.by_id("demo")
    assert demo is not None and demo.saml is not None
    element = build_success_response(
        idp_entity_id=gw.config.saml_idp.entity_id,
        key=generate_key_pair(key_kind),
        settings=demo.saml,
        acs_url=demo.saml.acs_urls[0],
        request_id=request_id,
        identity=Identity(given_names="MALLORY", family_names="FORGED"),
        pseudonym="forged",
        released=frozenset({Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES}),
    )
    return to_bytes(element)


async def test_demo_refuses_a_response_signed_by_another_key(start_gateway: StartGateway, browser: Browser) -> None:
    gw = await start_gateway()
    login = await browser.get_no_follow(gw.url("/demo/login"))
    assert login.status == 302
    status, text = await _post_to_acs(browser, gw, _forged_response(gw, "_unknown"))
    assert status == 400
    assert "abgelehnt" in text and "signature_untrusted" in text
    assert "MALLORY" not in text


async def test_demo_refuses_unsolicited_and_garbage(start_gateway: StartGateway, browser: Browser) -> None:
    gw = await start_gateway()
    status, text = await _post_to_acs(browser, gw, b"<not-saml/>", relay_state="en")
    assert status == 400 and "failed verification" in text
    resp = await browser.session.post(gw.url("/demo/acs"), data={"RelayState": "de"})
    assert resp.status == 400 and "keine Anmeldeantwort" in await resp.text()
    resp = await browser.session.post(gw.url("/demo/acs"), data={"SAMLResponse": "%%%"})
    assert resp.status == 400


async def test_demo_start_page_in_english(start_gateway: StartGateway, browser: Browser) -> None:
    gw = await start_gateway()
    page = await browser.get(gw.url("/demo/?lang=en"))
    assert page.status == 200
    assert "Sign in with the online ID" in page.text and 'lang="en"' in page.text
    assert "<script" not in page.text
    # the gateway's one design: its stylesheets, the operator's brand; no stylesheet of the demo's own
    assert '<link rel="stylesheet" href="/static/style.css">' in page.text and "/static/brand.css" in page.text
    assert "Stadt Düren (Demo)" in page.text and "Anmeldeantwort" not in page.text


async def test_demo_without_a_reachable_gateway(start_gateway: StartGateway, browser: Browser) -> None:
    """The demo served alone: the gateway's metadata URL answers 404, so no request is ever sent."""
    gw = await start_gateway(app_factory=create_demo_only_app)
    page = await browser.get(gw.url("/demo/login"))
    assert page.status == 502
    assert "nicht erreichbar" in page.text
    assert not any("/saml/sso" in u for u in browser.history)


async def test_demo_trusts_metadata_only_from_the_pinned_signer(start_gateway: StartGateway) -> None:
    import dataclasses

    import aiohttp
    import pytest

    from eid_gateway.demo.app import demo_settings
    from eid_gateway.demo.sp import GatewayMetadata, MetadataUnavailable

    gw = await start_gateway()
    good = demo_settings(gw.config)
    wrong = dataclasses.replace(good, metadata_signers=(generate_key_pair("ec-p256").certificate,))
    other_idp = dataclasses.replace(good, idp_entity_id="https://other-idp.example.de/metadata")
    async with aiohttp.ClientSession() as http:
        entity = await GatewayMetadata(good, http).get()
        assert entity.signed and entity.entity_id == gw.config.saml_idp.entity_id
        with pytest.raises(MetadataUnavailable, match="metadata_signature_invalid"):
            await GatewayMetadata(wrong, http).get()
        with pytest.raises(MetadataUnavailable, match="expected IdP"):
            await GatewayMetadata(other_idp, http).get()
