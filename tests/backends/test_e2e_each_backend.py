"""The same end-to-end sign-in tests against each backend kind behind the one EidServer port:
``simulator`` (embedded, TR-03130 over loopback HTTP), ``tr03130`` (the simulator's eID-Interface over
mutual TLS) and ``saml`` (the simulator's SAML interface over mutual TLS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eid_gateway.identity import LevelOfAssurance
from helpers.gateway import Browser, Servers, ausweisapp, deliver, open_start_page, tc_token_url_of
from helpers.saml_post import authn_context_on
from saml.messages import STATUS_AUTHN_FAILED, STATUS_REQUEST_DENIED

from .harness import Setup, return_with_error, start_gateway_with

KINDS = ["simulator", "tr03130", "saml"]


async def start(kind: str, servers: Servers, directory: Path) -> Setup:
    if kind == "simulator":
        return await start_gateway_with(servers, directory, eid_lines=['kind = "simulator"'])
    return await start_gateway_with(servers, directory, kind=kind)


@pytest.mark.parametrize("kind", KINDS)
async def test_erika_signs_in(kind: str, browser: Browser, servers: Servers, tmp_path: Path) -> None:
    setup = await start(kind, servers, tmp_path / "gw")
    assert setup.gateway.config.eid_server.kind == kind
    start_page = await open_start_page(browser, setup.gateway)
    step = await ausweisapp(servers, tc_token_url_of(start_page), identity="erika")
    assert "ResultMajor=ok" in step.next_url
    post_page = await browser.get(step.next_url)
    # the level of assurance on the wire: the assertion's AuthnContextClassRef (decrypted with the demo's key)
    gw = setup.gateway
    assert gw.config.demo.key is not None
    assert (
        authn_context_on(post_page, [gw.config.keys.saml_signing.certificate], gw.config.demo.key)
        == LevelOfAssurance.HIGH.value
        == "http://eidas.europa.eu/LoA/high"
    )
    result = await deliver(browser, post_page)
    rows = {str(r.findtext("th")): str(r.findtext("td")) for r in result.doc().iter("tr")}
    assert rows["Familienname"] == "MUSTERMANN" and rows["Vornamen"] == "ERIKA"
    assert rows["Geburtsdatum"] == "12.08.1964"
    assert rows["Anschrift"] == "HEIDESTRASSE 17, 51147 KÖLN, D"
    assert rows["Vertrauensniveau"] == "hoch (eIDAS)"  # and in words at the service
    assert rows["Angemeldet über"] == "SAML 2.0"
    async with browser.session.get(setup.gateway.url("/readyz")) as resp:
        assert resp.status == 200 and (await resp.json())["eid_server"] == "ok"
    # the refresh is single-use whatever the backend
    assert (await browser.get(step.next_url)).status == 410


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("options", "title", "sub_code"),
    [
        ({"cancel": True}, "Anmeldung abgebrochen", STATUS_REQUEST_DENIED),
        ({"pin": "000000"}, "PIN falsch", STATUS_AUTHN_FAILED),
        ({"identity": "blocked"}, "gesperrt", STATUS_AUTHN_FAILED),
    ],
    ids=["cancel", "wrong-pin", "card-blocked"],
)
async def test_card_step_failures(
    kind: str, options: dict[str, object], title: str, sub_code: str, browser: Browser, servers: Servers, tmp_path: Path
) -> None:
    setup = await start(kind, servers, tmp_path / "gw")
    start_page = await open_start_page(browser, setup.gateway)
    step = await ausweisapp(servers, tc_token_url_of(start_page), **options)
    assert "ResultMajor=error" in step.next_url
    failure = await browser.get(step.next_url)
    assert title in failure.text
    result = await return_with_error(browser, setup.gateway, failure, sub_code)
    assert "MUSTERMANN" not in result.text
