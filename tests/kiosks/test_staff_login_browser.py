"""The staff login page in a real headless Chromium, served by the composed gateway (its layout and
stylesheet, its CSP): axe-core finds no WCAG 2.1 AA violation in German and English, at 1280 and 360 px,
empty, after a wrong password and after signing out; sign-in and sign-out work by keyboard-free clicks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from e2e.test_accessibility import AXE, Report

from helpers.chromium import BROWSER_MARKS
from helpers.gateway import StartGateway

from .test_staff_login import ADMIN, ADMIN_PW, VIEWER, staff_toml

pytestmark = BROWSER_MARKS


async def submit(page: Any, name: str, password: str) -> None:
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("load")


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: ./dev test runs npm ci in tests/rp_node")
async def test_axe_finds_no_violations_on_the_login_page(start_gateway: StartGateway, chromium: Any) -> None:
    gw = await start_gateway(edit_config=lambda text: text + staff_toml())
    report = Report()
    csp: list[str] = []
    for lang, locale, signed_out in (("de", "de-DE", "Sie sind abgemeldet."), ("en", "en-GB", "You are signed out.")):
        for width in (1280, 360):
            ctx = await chromium.new_context(locale=locale, viewport={"width": width, "height": 800})
            page = await ctx.new_page()
            page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
            await page.goto(gw.url(f"/kiosks/dashboard?lang={lang}"))  # no session: to the login page
            assert page.url == gw.url(f"/kiosks/login?lang={lang}")
            await report.check(page, f"login {lang} {width}px")
            await submit(page, VIEWER, "wrong-password")
            assert await page.locator(".notice.error[role=alert]").count() == 1
            await report.check(page, f"login wrong password {lang} {width}px")
            await submit(page, ADMIN, ADMIN_PW)
            assert re.fullmatch(re.escape(gw.url(f"/kiosks/dashboard?lang={lang}")), page.url)
            await page.click("form.logout button")
            await page.wait_for_load_state("load")
            assert await page.locator("[role=status]").inner_text() == signed_out
            await report.check(page, f"signed out {lang} {width}px")
            await ctx.close()
    report.assert_clean(pages=12)
    assert csp == []
