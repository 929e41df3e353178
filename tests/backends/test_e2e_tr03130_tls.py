"""The end-to-end sign-in with the gateway configured as in production (``kind = "tr03130"``): the
eID-Server (the simulator) reached over real mutual TLS on loopback, certificates from the dev PKI."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.gateway import Browser, Servers, ausweisapp, deliver, open_start_page, tc_token_url_of

from .harness import return_with_error, start_gateway_with


async def test_sign_in_over_mutual_tls(browser: Browser, servers: Servers, tmp_path: Path) -> None:
    setup = await start_gateway_with(servers, tmp_path / "gw")
    gw = setup.gateway
    assert gw.config.eid_server.kind == "tr03130" and gw.config.eid_server.url.startswith("https://")
    start = await open_start_page(browser, gw)
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    assert "ResultMajor=ok" in step.next_url
    result = await deliver(browser, await browser.get(step.next_url))
    rows = {str(r.findtext("th")): str(r.findtext("td")) for r in result.doc().iter("tr")}
    assert rows["Familienname"] == "MUSTERMANN" and rows["Vornamen"] == "ERIKA"
    # readiness: getServerInfo over the same mutual TLS connection
    async with browser.session.get(gw.url("/readyz")) as resp:
        body = await resp.json()
    assert resp.status == 200 and body["eid_server"] == "ok" and "simulator" in body["eid_server_version"]


async def test_wrong_client_certificate_gives_a_clear_error(
    browser: Browser, servers: Servers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The eID-Server does not accept the gateway's client certificate: the citizen sees the
    technical-error page, the service gets a Responder error, the operator a log line naming the cause,
    and /readyz reports the eID-Server unavailable."""
    setup = await start_gateway_with(servers, tmp_path / "gw", trust_other_client=True)
    gw = setup.gateway
    start = await open_start_page(browser, gw)
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    assert "/eid/error/" in step.next_url  # useID failed: the TC Token names only the error address
    failure = await browser.get(step.next_url)
    assert "Technischer Fehler" in failure.text
    await return_with_error(browser, gw, failure, None)  # Responder, no second-level code: not the card
    messages = [r.getMessage() for r in caplog.records]
    assert any("refused our client certificate" in m for m in messages)
    async with browser.session.get(gw.url("/readyz")) as resp:
        body = await resp.json()
    assert resp.status == 503 and body["eid_server"].startswith("error: EidTlsError")
