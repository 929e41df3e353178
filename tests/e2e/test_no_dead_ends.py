"""Issue 16, no dead ends, in the real Chromium under the gateway's CSP.

* "Sign in with the AusweisApp" first asks AusweisApp's status endpoint (TR-03124-1,
  ``http://127.0.0.1:24727/eID-Client?Status``); when nothing answers, the page shows how to start or
  get AusweisApp instead of following the link to "This site can't be reached". AusweisApp's port is
  played by Playwright's network routing (refused or answering), so the test never depends on what runs
  on this machine's port 24727; the CSP (``connect-src``) is the real one, checked before any routing.
* On a phone (its User-Agent / ``Sec-CH-UA-Mobile``) the smartphone button is the primary one, first.
* ``ui_locales=en`` from the service gives English pages to a German browser, through the card page and
  an error page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from eid_gateway.flow import DESKTOP_CLIENT, MOBILE_CLIENT
from eid_gateway.web.middlewares import AUSWEISAPP_ORIGIN
from eid_gateway.web.navigation import AUSWEISAPP_DOWNLOAD_URL
from helpers.chromium import ARGS, BROWSER_MARKS, CHROMIUM
from helpers.gateway import Gateway, StartGateway

pytestmark = BROWSER_MARKS

#: What AusweisApp 2.x answers to ``?Status`` (TR-03124-1 2.2.3: "Name: ...", "Implementation-Version: ...").
STATUS_BODY = "Name: AusweisApp2\nImplementation-Title: AusweisApp2\nImplementation-Version: 2.2.2\n"


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield pw, browser
        finally:
            await browser.close()


async def _page(chromium: Any, **options: Any) -> tuple[Any, list[str]]:
    """A new page (German browser unless ``locale`` says otherwise) and the CSP violations it reports."""
    _, browser = chromium
    context = await browser.new_context(**{"locale": "de-DE", **options})
    page = await context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text or "Refused to" in m.text else None,
    )
    return page, violations


async def _play_ausweisapp(page: Any, answer: Callable[[Any], Awaitable[None]]) -> list[str]:
    """AusweisApp's port played by Playwright's routing for ``page``: each request there is answered by
    ``answer`` (a route) and its URL recorded in the returned list."""
    asked: list[str] = []

    async def handle(route: Any) -> None:
        asked.append(route.request.url)
        await answer(route)

    await page.route(f"{AUSWEISAPP_ORIGIN}/**", handle)
    return asked


async def _start_page(page: Any, gw: Gateway) -> None:
    await page.goto(gw.url("/demo/login"))
    await page.wait_for_url(f"{gw.origin}/signin/*")


def test_the_csp_lets_the_status_query_reach_ausweisapp_only() -> None:
    assert DESKTOP_CLIENT.startswith(AUSWEISAPP_ORIGIN + "/")


async def test_without_ausweisapp_the_page_shows_how_to_get_it(start_gateway: StartGateway, chromium: Any) -> None:
    gw = await start_gateway()
    page, violations = await _page(chromium)
    asked = await _play_ausweisapp(page, lambda route: route.abort("connectionrefused"))
    await _start_page(page, gw)
    assert not await page.is_visible("#ausweisapp-missing")  # nothing asked before the citizen clicks
    start_url = page.url
    await page.click("#signin-desktop")
    await page.wait_for_selector("#ausweisapp-missing", state="visible")
    assert page.url == start_url  # not "This site can't be reached"
    assert asked == [f"{DESKTOP_CLIENT}?Status"]
    notice = await page.inner_text("#ausweisapp-missing")
    assert "Die AusweisApp antwortet auf diesem Computer nicht" in notice and "Smartphone" in notice
    hrefs = await page.eval_on_selector_all("#ausweisapp-missing a", "els => els.map(e => e.href)")
    assert hrefs[0] == AUSWEISAPP_DOWNLOAD_URL and hrefs[1].startswith(DESKTOP_CLIENT + "?tcTokenURL=")
    assert await page.evaluate("document.activeElement.textContent") == (
        "Die AusweisApp antwortet auf diesem Computer nicht"
    )
    assert violations == []


async def test_with_ausweisapp_answering_the_button_goes_to_it(start_gateway: StartGateway, chromium: Any) -> None:
    gw = await start_gateway()
    page, violations = await _page(chromium)

    async def ausweisapp(route: Any) -> None:
        body = STATUS_BODY if route.request.url.endswith("?Status") else "AusweisApp is handling the sign-in"
        await route.fulfill(status=200, body=body, headers={"Content-Type": "text/plain"})

    asked = await _play_ausweisapp(page, ausweisapp)
    await _start_page(page, gw)
    await page.click("#signin-desktop")
    await page.wait_for_url(f"{DESKTOP_CLIENT}?tcTokenURL=*")
    assert asked[0] == f"{DESKTOP_CLIENT}?Status" and asked[1].startswith(f"{DESKTOP_CLIENT}?tcTokenURL=")
    assert violations == []  # the status query passed the CSP (connect-src)


async def test_without_javascript_the_link_and_the_way_to_get_ausweisapp_are_there(
    start_gateway: StartGateway, chromium: Any
) -> None:
    gw = await start_gateway()
    page, _ = await _page(chromium, java_script_enabled=False)
    await _start_page(page, gw)
    href = await page.get_attribute("#signin-desktop", "href")
    assert href is not None and href.startswith(DESKTOP_CLIENT + "?tcTokenURL=")
    assert await page.is_visible("#get-ausweisapp")
    assert await page.get_attribute("#get-ausweisapp", "href") == AUSWEISAPP_DOWNLOAD_URL


@pytest.mark.parametrize("device", ["iPhone 13", "Pixel 7"])
async def test_on_a_phone_the_smartphone_button_is_primary(
    start_gateway: StartGateway, chromium: Any, device: str
) -> None:
    gw = await start_gateway()
    pw, _ = chromium
    page, violations = await _page(chromium, **pw.devices[device])
    await _start_page(page, gw)
    assert page.viewport_size["width"] < 500
    buttons = await page.eval_on_selector_all(
        ".actions a", "els => els.map(e => [e.id, e.className, e.getAttribute('href')])"
    )
    assert [b[0] for b in buttons] == ["signin-mobile", "signin-desktop"]
    assert "primary" in buttons[0][1].split() and "primary" not in buttons[1][1].split()
    assert buttons[0][2].startswith(MOBILE_CLIENT + "?tcTokenURL=")
    assert await page.query_selector("#ausweisapp-missing") is None  # no 127.0.0.1 check on a phone
    assert violations == []


async def test_on_a_desktop_the_computer_button_is_primary(start_gateway: StartGateway, chromium: Any) -> None:
    gw = await start_gateway()
    page, _ = await _page(chromium, viewport={"width": 1280, "height": 900})
    await _start_page(page, gw)
    ids = await page.eval_on_selector_all(".actions a.primary", "els => els.map(e => e.id)")
    assert ids == ["signin-desktop"]


async def test_ui_locales_en_in_a_german_browser_through_the_card_page_and_an_error_page(
    start_gateway: StartGateway, chromium: Any
) -> None:
    gw = await start_gateway()
    page, violations = await _page(chromium)
    # the demo's OIDC button, with the service asking for English
    response = await page.request.get(gw.url("/demo/oidc/login"), max_redirects=0)
    authorize = response.headers["location"]
    await page.goto((authorize if authorize.startswith("http") else gw.url(authorize)) + "&ui_locales=en")
    await page.wait_for_url(f"{gw.origin}/signin/*")
    assert await page.get_attribute("html", "lang") == "en"
    assert "Sign in with the AusweisApp" in await page.inner_text("main")
    await page.click('a[href^="/eid-sim/client"]')  # the card page (simulated AusweisApp)
    await page.wait_for_url(f"{gw.origin}/eid-sim/client*")
    assert await page.get_attribute("html", "lang") == "en"
    await page.click("button[name=action][value=cancel]")
    await page.wait_for_selector(".notice.error")
    assert await page.get_attribute("html", "lang") == "en"
    assert "Sign-in cancelled" in await page.inner_text("main")
    await page.goto(gw.url("/no-such-page"))  # an error page outside the flow
    assert await page.get_attribute("html", "lang") == "en"
    assert "Page not found" in await page.inner_text("main")
    assert violations == []


@pytest.mark.parametrize("lang", ["de", "en"])
async def test_the_new_page_states_have_no_wcag_21_aa_violation(
    start_gateway: StartGateway, chromium: Any, lang: str
) -> None:
    """axe-core (as tests/e2e/test_accessibility.py runs it) over what this module adds: the page at
    ``/``, the start page with the "AusweisApp does not answer" notice shown, the phone start page, and
    the SAML POST page (its auto-submit script held back, so that it stays on screen)."""
    from .test_accessibility import AXE, Report

    if not AXE.exists():
        pytest.skip("axe-core is not installed: ./dev test runs npm ci in tests/rp_node")
    gw = await start_gateway()
    pw, _ = chromium
    locale = {"de": "de-DE", "en": "en-GB"}[lang]
    report = Report()
    page, _ = await _page(chromium, locale=locale, viewport={"width": 1280, "height": 800})
    await page.goto(gw.url("/"))
    await report.check(page, "/")
    await page.route(f"{AUSWEISAPP_ORIGIN}/**", lambda route: route.abort("connectionrefused"))
    await _start_page(page, gw)
    await page.click("#signin-desktop")
    await page.wait_for_selector("#ausweisapp-missing", state="visible")
    await report.check(page, "start page: AusweisApp does not answer")
    await page.route("**/static/saml-post.js", lambda route: route.abort())
    await page.click("form.cancel button")
    await page.wait_for_selector("#saml-post-form")
    await report.check(page, "SAML POST page")
    phone, _ = await _page(chromium, **{**pw.devices["iPhone 13"], "locale": locale})
    await _start_page(phone, gw)
    await report.check(phone, "start page on a phone")
    assert len(report.pages) == 4
    assert report.violations == {} and report.overflow == {} and report.mixed == {}, report
