"""A kiosk's history page and the refusal page in a real headless Chromium: axe-core without violations
in German and English (1280 and 360 px, every <details> open), no sideways scrolling at 360 px, and the
export downloads a file by a click on the admin's button."""

import re

import pytest
from e2e.test_accessibility import AXE, Report

from helpers.chromium import BROWSER_MARKS

from .test_dashboard_browser import scene_server, staff_context, staff_pages  # noqa: F401  (fixture)

pytestmark = BROWSER_MARKS


@pytest.mark.parametrize("lang", ["de", "en"])
async def test_history_without_sideways_scrolling_at_360_px(scene_server, chromium, lang):  # noqa: F811
    ctx = await staff_context(
        chromium, scene_server, locale={"de": "de-DE", "en": "en-GB"}[lang], viewport={"width": 360, "height": 740}
    )
    page = await ctx.new_page()
    await page.goto(f"{scene_server}/kiosks/history/mitte-1?lang={lang}")
    await page.locator("#history").wait_for()
    await page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    width, inner = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{width} px wide at {inner} px"
    assert await page.locator("#history tbody tr").count() >= 2  # the scene's readers appeared
    # the dashboard's local times: the browser's zone and the age, as on the board (dashboard.js)
    ago = {"de": r" \(vor \d+ (s|min)\)", "en": r" \(\d+ (s|min) ago\)"}[lang]
    await page.locator("#history tbody tr .ago").first.wait_for()
    assert re.fullmatch(ago, await page.locator("#history tbody tr .ago").first.inner_text())
    await ctx.close()


async def test_the_admin_downloads_the_export_by_a_click(scene_server, chromium):  # noqa: F811
    ctx = await staff_context(chromium, scene_server, locale="de-DE", accept_downloads=True)
    page = await ctx.new_page()
    await page.goto(f"{scene_server}/kiosks/history/mitte-1?lang=de")
    async with page.expect_download() as info:
        await page.click("button[name=format][value=csv]")
    download = await info.value
    assert download.suggested_filename.startswith("kiosk-mitte-1-history-")
    assert download.suggested_filename.endswith(".csv")
    text = open(await download.path(), encoding="utf-8").read()
    assert text.startswith("time_utc,time_local,kiosk,event,reader,state,detail,text")
    await ctx.close()


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: ./dev test runs npm ci in tests/rp_node")
async def test_axe_finds_no_violations_on_the_history_and_refusal_pages(scene_server, chromium):  # noqa: F811
    report = Report()
    async for lang, width, page in staff_pages(chromium, scene_server):
        await page.goto(f"{scene_server}/kiosks/history/mitte-1?lang={lang}")
        await page.locator("#history").wait_for()
        await page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        await report.check(page, f"history {lang} {width}px")
        await page.goto(f"{scene_server}/kiosks/history/no-such-kiosk?lang={lang}")
        await report.check(page, f"unknown kiosk {lang} {width}px")
    report.assert_clean(pages=8)
