"""The staff dashboard in a real headless Chromium: live updates through server-sent events with the
gateway's CSP in force, a plain self-refreshing table without JavaScript, times in the staff browser's
zone with "vor N s" and a live "Stand", no sideways scrolling at 360 px, and axe-core without
violations in German and English."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from e2e.test_accessibility import AXE, Report

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json
from eid_gateway.kiosks import create_kiosk_app
from eid_gateway.web.middlewares import security_headers
from helpers.chromium import BROWSER_MARKS
from helpers.ports import free_port

from .conftest import STAFF_PASSWORD, STAFF_USER, TOKENS, make_settings, post_scene, scene_settings

pytestmark = BROWSER_MARKS


async def serve(settings):
    app = web.Application()
    app.add_subapp("/kiosks/", create_kiosk_app(settings))
    app.on_response_prepare.append(security_headers([], hsts=False))
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def server():
    runner, base = await serve(make_settings(heartbeat=5))
    yield base
    await runner.cleanup()


@pytest.fixture
async def scene_server():
    """Five kiosks: two readers with a comfort reader and a garbled card, a refused credential, a clean
    stop, one never seen, pcscd down."""
    runner, base = await serve(scene_settings())
    await post_scene(base)
    yield base
    await runner.cleanup()


async def staff_context(browser, base, **options):
    """A browser context signed in through the staff login page (its session cookie in the jar)."""
    ctx = await browser.new_context(**options)
    page = await ctx.new_page()
    await page.goto(f"{base}/kiosks/login")
    await page.fill("#name", STAFF_USER)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r".*/kiosks/dashboard\?lang=\w+$"))
    await page.close()
    return ctx


async def staff_pages(browser, base):
    """A signed-in staff page in German and in English, each at 1280 and 360 px: (lang, width, page); each
    page's context is closed when the next is asked for."""
    for lang, locale in (("de", "de-DE"), ("en", "en-GB")):
        for width in (1280, 360):
            ctx = await staff_context(browser, base, locale=locale, viewport={"width": width, "height": 800})
            yield lang, width, await ctx.new_page()
            await ctx.close()


async def post_state(base, kiosk, state, seq):
    snap = KioskSnapshot(ServiceState.OK, (ReaderStatus("Lesegerät Platz 1", state),))
    async with aiohttp.ClientSession() as s:
        r = await s.post(
            f"{base}/kiosks/api/v1/kiosks/{kiosk}/state",
            json={"instance": "browser-test", "seq": seq, "status": snapshot_to_json(snap)},
            headers={"Authorization": f"Bearer {TOKENS[kiosk]}"},
        )
        assert r.status == 200


async def test_dashboard_updates_live_under_csp(server, chromium):
    await post_state(server, "mitte-1", ReaderState.EMPTY, 1)
    ctx = await staff_context(chromium, server, locale="de-DE")
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
    assert "noch keine Meldung" in await page.locator("#kiosk-nord-2 td.status").inner_text()
    assert "Bürgerbüro Nord <Platz 2>" in await page.locator("#kiosk-nord-2 th").inner_text()
    assert violations == []
    await ctx.close()


async def test_dashboard_without_javascript_is_a_refreshing_table(server, chromium):
    ctx = await staff_context(chromium, server, java_script_enabled=False, locale="de-DE")
    page = await ctx.new_page()
    await page.goto(f"{server}/kiosks/dashboard")
    assert "noch keine Meldung" in await page.locator("#kiosk-mitte-1 td.status").inner_text()
    await post_state(server, "mitte-1", ReaderState.ID_CARD, 1)
    # the <noscript> refresh reloads the page (5 s with this heartbeat): wait for the new table
    await page.locator("#kiosk-mitte-1 .badge.status-id_card").wait_for(timeout=15000)
    await ctx.close()


async def test_dashboard_sends_a_browser_without_sign_in_to_the_login_page(server, chromium):
    ctx = await chromium.new_context(locale="de-DE")
    page = await ctx.new_page()
    await page.goto(f"{server}/kiosks/dashboard")
    assert page.url == f"{server}/kiosks/login?lang=de"
    assert await page.locator("h1").inner_text() == "Anmeldung für Mitarbeitende"
    assert await page.locator("#kiosks").count() == 0
    await ctx.close()


async def test_times_in_the_staff_browsers_zone_with_age_and_a_live_stand(server, chromium):
    await post_state(server, "mitte-1", ReaderState.EMPTY, 1)
    ctx = await staff_context(chromium, server, locale="de-DE", timezone_id="Asia/Tokyo")
    page = await ctx.new_page()
    await page.goto(f"{server}/kiosks/dashboard")
    await page.locator("#live").wait_for(state="visible")
    seen = page.locator("#kiosk-mitte-1 td.seen time")
    iso = await seen.get_attribute("datetime")
    tokyo = datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Tokyo"))
    assert tokyo.strftime("%H:%M:%S") in await seen.inner_text()  # not the server's zone, not UTC
    ago = page.locator("#kiosk-mitte-1 td.seen .ago")
    assert re.fullmatch(r" \(vor \d+ s\)", await ago.inner_text())
    # "Stand" follows the open stream: it moves on by itself, and so does "vor N s"
    first = await page.locator("#generated").get_attribute("datetime")
    await page.wait_for_function(
        "first => Date.parse(document.getElementById('generated').dateTime) >= Date.parse(first) + 2000",
        arg=first,
        timeout=10_000,
    )
    await page.wait_for_function(
        "() => /vor [2-9]\\d* s|vor \\d{2,} s/.test(document.querySelector('#kiosk-mitte-1 td.seen .ago').textContent)",
        timeout=10_000,
    )
    # a live change brings a new row with its times localized too
    await post_state(server, "mitte-1", ReaderState.ID_CARD, 2)
    await page.locator("#kiosk-mitte-1 .badge.status-id_card").wait_for(timeout=5000)
    assert re.fullmatch(r" \(vor \d+ s\)", await page.locator("#kiosk-mitte-1 td.changed .ago").inner_text())
    await ctx.close()


@pytest.mark.parametrize("lang", ["de", "en"])
async def test_no_sideways_scrolling_at_360_px(scene_server, chromium, lang):
    ctx = await staff_context(
        chromium, scene_server, locale={"de": "de-DE", "en": "en-GB"}[lang], viewport={"width": 360, "height": 740}
    )
    page = await ctx.new_page()
    await page.goto(f"{scene_server}/kiosks/dashboard?lang={lang}")
    await page.locator("#live").wait_for(state="visible")
    # every <details> opened: the technical codes must fit too
    await page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    width, inner = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{width} px wide at {inner} px"
    assert await page.locator("#kiosk-sued-3 .badge.status-offline").is_visible()
    await ctx.close()


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: ./dev test runs npm ci in tests/rp_node")
async def test_axe_finds_no_violations_on_the_dashboard(scene_server, chromium):
    report = Report()
    async for lang, width, page in staff_pages(chromium, scene_server):
        await page.goto(f"{scene_server}/kiosks/dashboard?lang={lang}")
        await page.locator("#live").wait_for(state="visible")
        await page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        await report.check(page, f"dashboard {lang} {width}px")
    report.assert_clean(pages=4)
