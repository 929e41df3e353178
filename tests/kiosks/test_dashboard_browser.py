"""The staff dashboard in a real headless Chromium: live updates through server-sent events with the
gateway's CSP in force, and a plain self-refreshing table without JavaScript."""

import aiohttp
import pytest
from aiohttp import web

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json
from eid_gateway.kiosks import create_kiosk_app
from eid_gateway.web.middlewares import security_headers

from helpers.chromium import ARGS, BROWSER_MARKS, CHROMIUM
from helpers.ports import free_port

from .conftest import STAFF_PASSWORD, STAFF_USER, TOKENS, make_settings

pytestmark = BROWSER_MARKS


@pytest.fixture
async def server():
    app = web.Application()
    app.add_subapp("/kiosks/", create_kiosk_app(make_settings(heartbeat=5)))
    app.on_response_prepare.append(security_headers([], hsts=False))
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def post_state(base, kiosk, state, seq):
    snap = KioskSnapshot(ServiceState.OK, (ReaderStatus("Lesegerät Platz 1", state),))
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{base}/kiosks/api/v1/kiosks/{kiosk}/state",
                         json={"instance": "browser-test", "seq": seq, "status": snapshot_to_json(snap)},
                         headers={"Authorization": f"Bearer {TOKENS[kiosk]}"})
        assert r.status == 200


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        await b.close()


async def test_dashboard_updates_live_under_csp(server, browser):
    await post_state(server, "mitte-1", ReaderState.EMPTY, 1)
    ctx = await browser.new_context(http_credentials={"username": STAFF_USER, "password": STAFF_PASSWORD})
    page = await ctx.new_page()
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(f"{server}/kiosks/dashboard")
    row = page.locator("#kiosk-mitte-1")
    assert "bereit (leer)" in await row.locator("td.status").inner_text()
    await page.locator("#live").wait_for(state="visible")  # the event stream is open
    await post_state(server, "mitte-1", ReaderState.ID_CARD, 2)
    await page.locator("#kiosk-mitte-1 .badge.status-id_card").wait_for(timeout=5000)
    assert "Ausweis erkannt" in await row.locator("td.status").inner_text()
    assert "Lesegerät Platz 1: Ausweis erkannt" in await row.locator("td.readers").inner_text()
    # the other kiosk never reported
    assert "unbekannt" in await page.locator("#kiosk-nord-2 td.status").inner_text()
    assert "Bürgerbüro Nord <Platz 2>" in await page.locator("#kiosk-nord-2 th").inner_text()
    assert violations == []
    await ctx.close()


async def test_dashboard_without_javascript_is_a_refreshing_table(server, browser):
    ctx = await browser.new_context(java_script_enabled=False,
                                    http_credentials={"username": STAFF_USER, "password": STAFF_PASSWORD})
    page = await ctx.new_page()
    await page.goto(f"{server}/kiosks/dashboard")
    assert "unbekannt" in await page.locator("#kiosk-mitte-1 td.status").inner_text()
    await post_state(server, "mitte-1", ReaderState.ID_CARD, 1)
    # the <noscript> refresh reloads the page (5 s with this heartbeat): wait for the new table
    await page.locator("#kiosk-mitte-1 .badge.status-id_card").wait_for(timeout=15000)
    await ctx.close()


async def test_dashboard_refuses_without_staff_credential(server, browser):
    ctx = await browser.new_context()
    resp = await ctx.request.get(f"{server}/kiosks/dashboard")
    assert resp.status == 401 and resp.headers["www-authenticate"].startswith("Basic")
    page = await ctx.new_page()
    with pytest.raises(Exception, match="ERR_INVALID_AUTH_CREDENTIALS"):  # no dialog in headless mode
        await page.goto(f"{server}/kiosks/dashboard")
    await ctx.close()
