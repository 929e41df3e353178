"""The end-to-end sign-in with ``kind = "saml"``: the gateway as SAML SP of the eID-Server's SAML
interface (the simulator's), reached over mutual TLS; the same citizen flow and the same Identity."""

from __future__ import annotations

from pathlib import Path

from eid_gateway.eid.tctoken import TcToken, parse_tc_token
from helpers.gateway import Browser, Servers, ausweisapp, deliver, open_start_page, tc_token_url_of

from .harness import start_gateway_with


async def test_sign_in_over_the_saml_interface(browser: Browser, servers: Servers, tmp_path: Path) -> None:
    setup = await start_gateway_with(servers, tmp_path / "gw", kind="saml")
    gw = setup.gateway
    assert gw.config.eid_server.kind == "saml"
    start = await open_start_page(browser, gw)
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    token = parse_tc_token(step.tc_token)
    assert isinstance(token, TcToken)
    # the eID-Server's session, passed on: its ServerAddress and PSK, the gateway's RefreshAddress
    assert setup.simulator is not None
    assert token.server_address == setup.simulator.simulator.core.ecard_server_address
    assert token.psk and token.refresh_address.startswith(gw.origin + "/eid/refresh/")
    result = await deliver(browser, await browser.get(step.next_url))
    rows = {str(r.findtext("th")): str(r.findtext("td")) for r in result.doc().iter("tr")}
    assert rows["Familienname"] == "MUSTERMANN" and rows["Vornamen"] == "ERIKA"
    assert rows["Geburtsdatum"] == "12.08.1964"
    assert rows["Anschrift"] == "HEIDESTRASSE 17, 51147 KÖLN, D"
    assert len(rows["Pseudonym bei diesem Dienst"]) == 52
    async with browser.session.get(gw.url("/readyz")) as resp:
        body = await resp.json()
    assert resp.status == 200 and body["eid_server"] == "ok", body


async def test_pseudonym_is_the_same_over_both_interfaces(browser: Browser, servers: Servers, tmp_path: Path) -> None:
    """The same card gives the same pseudonym whichever interface the eID-Server is reached by."""
    seen = []
    for kind in ("tr03130", "saml"):
        setup = await start_gateway_with(servers, tmp_path / kind, kind=kind)
        start = await open_start_page(browser, setup.gateway)
        step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
        result = await deliver(browser, await browser.get(step.next_url))
        rows = {str(r.findtext("th")): str(r.findtext("td")) for r in result.doc().iter("tr")}
        seen.append(rows["Pseudonym bei diesem Dienst"])
    assert seen[0] == seen[1]
