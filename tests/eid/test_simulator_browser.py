"""The AusweisApp stand-in page in a real headless Chromium: no JavaScript, keyboard and labels only."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from eid_gateway.core.port import EidRequest
from eid_gateway.identity import Attribute as A
from helpers.chromium import ARGS, BROWSER_MARKS, CHROMIUM

from .conftest import Harness

pytestmark = BROWSER_MARKS


async def test_page_sign_in_without_javascript(harness: Harness) -> None:
    from playwright.async_api import async_playwright

    url = harness.begin(EidRequest(required=frozenset({A.FAMILY_NAMES, A.GIVEN_NAMES})))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(java_script_enabled=False, locale="de-DE")
            await page.goto(harness.sim.client_page_url(url))
            assert (await page.title()).startswith("Simulierte AusweisApp")  # one language: the browser's
            assert "Testumgebung: kein echter Ausweis" in await page.inner_text("main")
            await page.get_by_label("ANDRÉ MUSTERMANN").check()
            await page.get_by_label("PIN", exact=True).fill("123456")
            assert "Die Test-PIN ist 123456" in await page.inner_text("#pin-hint")
            async with page.expect_navigation():
                await page.get_by_role("button", name="Bestätigen", exact=True).click()
            final = urlsplit(page.url)
        finally:
            await browser.close()
    query = parse_qs(final.query)  # the harness serves no /refresh page; the URL is what counts
    assert final.path == "/refresh" and query["ResultMajor"] == ["ok"]
    identity = await harness.client.fetch_result(harness.session_of(url), 1)
    assert identity.given_names == "ANDRÉ"


async def test_page_cancel(harness: Harness) -> None:
    from playwright.async_api import async_playwright

    url = harness.begin(EidRequest(required=frozenset({A.FAMILY_NAMES})))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(java_script_enabled=False, locale="en-US")
            await page.goto(harness.sim.client_page_url(url))
            assert (await page.title()).startswith("Simulated AusweisApp")
            async with page.expect_navigation():
                await page.get_by_role("button", name="Cancel", exact=True).click()
            final = urlsplit(page.url)
        finally:
            await browser.close()
    assert parse_qs(final.query)["ResultMinor"] == ["cancellationByUser"]
