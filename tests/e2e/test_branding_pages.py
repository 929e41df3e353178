"""The operator's brand ([branding] of the demo config: "Stadt Düren (Demo)") on every kind of page a
citizen can see: the demo service's pages, the start page, the simulated card page, a failure, a message,
HTTP errors (404, 413, aiohttp's own 400 for an over-long request line) and the OIDC error page."""

from __future__ import annotations

import asyncio
from typing import Any

import lxml.html
from aiohttp import web

from eid_gateway.app import create_app
from eid_gateway.web.connections import ConnectionGuard, GuardedSite
from helpers.gateway import (
    Browser,
    Gateway,
    Servers,
    StartGateway,
    ausweisapp,
    open_start_page,
    sign_in,
    tc_token_url_of,
)
from helpers.ports import free_port

OPERATOR = "Stadt Düren (Demo)"


def assert_branded(html: str, gw: Gateway, what: str) -> None:
    """The header names the operator beside its logo, the brand stylesheet is linked, the footer links the
    operator's Impressum and Datenschutzerklärung."""
    doc = lxml.html.fromstring(html)
    assert [e.text_content() for e in doc.find_class("operator-name")] == [OPERATOR], what
    assert [img.get("src") for img in doc.iter("img") if "site-logo" in img.get("class", "")] == [
        "/static/operator-logo.svg"
    ], what
    assert "/static/brand.css" in [link.get("href") for link in doc.iter("link")], what
    footer = doc.find(".//footer")
    assert footer is not None, what
    links = {a.get("href") for a in footer.iter("a")}
    branding = gw.config.branding
    assert {branding.impressum_url, branding.privacy_url, branding.accessibility_url, branding.help_url} <= links, what


async def test_every_page_kind_carries_the_operators_brand(
    start_gateway: StartGateway, browser: Browser, servers: Servers
) -> None:
    gw = await start_gateway()
    pages: dict[str, str] = {}
    demo = await browser.get(gw.url("/demo/"))
    pages["demo start"] = demo.text
    pages["demo legal page"] = (await browser.get(gw.url("/demo/legal/impressum"))).text
    start = await open_start_page(browser, gw)
    pages["start"] = start.text
    [sim_link] = [u for u in start.links() if u.startswith("/eid-sim/client?")]
    card_page = await browser.get(gw.url(sim_link))
    assert card_page.status == 200
    pages["simulated card page"] = card_page.text
    step = await ausweisapp(servers, tc_token_url_of(start), cancel=True)
    failure = await browser.get(step.next_url)
    assert failure.status == 200 and "abgebrochen" in failure.text
    pages["failure"] = failure.text
    result = await sign_in(browser, servers, gw)
    assert result.status == 200 and "MUSTERMANN" in result.text
    pages["demo result"] = result.text
    missing = await browser.get(gw.url("/signin/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
    assert missing.status == 404
    pages["message (sign-in not found)"] = missing.text
    nowhere = await browser.get(gw.url("/nowhere"))
    assert nowhere.status == 404
    pages["404"] = nowhere.text
    async with browser.session.post(
        gw.url("/saml/sso"),
        data=b"x" * (gw.config.limits.max_body_bytes + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as resp:
        assert resp.status == 413
        pages["413"] = await resp.text()
    oidc = await browser.get(gw.url("/oidc/authorize?client_id=nobody&response_type=code&scope=openid"))
    assert oidc.status == 400
    pages["OIDC error page"] = oidc.text
    for what, html in pages.items():
        assert_branded(html, gw, what)


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_aiohttps_own_400_page_carries_the_brand(start_gateway: StartGateway) -> None:
    """A request aiohttp refuses before routing (over-long request line) is answered by the connection
    guard, which knows no application from the request: the brand comes from the served app."""
    captured: dict[str, Any] = {}

    def app_factory(config: Any) -> web.Application:
        captured["app"] = create_app(config)
        return web.Application()  # the fixture's server stays unused; the guarded one below serves

    gw = await start_gateway(app_factory=app_factory)
    runner = web.AppRunner(captured["app"], access_log=None)
    await runner.setup()
    port = free_port()
    try:
        guard = ConnectionGuard(gw.config.listen, gw.config.limits.trusted_proxies, hsts=False)
        await GuardedSite(runner, "127.0.0.1", port, guard).start()
        answer = await _raw(port, b"GET /signin/" + b"A" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    finally:
        await runner.cleanup()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"400", head
    assert_branded(body.decode("utf-8"), gw, "aiohttp's 400")
