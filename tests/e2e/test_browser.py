"""The sign-in happy path in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

No JavaScript is needed anywhere: the browser follows links, redirects and forms exactly as a citizen's
would, including the CSP the gateway sends (a blocked form post would fail this test).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import StartGateway

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"),
]


async def test_erika_signs_in_with_a_real_browser(start_gateway: StartGateway, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    gw = await start_gateway()
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            locale="de-DE",
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)

            await page.goto(gw.url("/demo/"))
            assert "Bürgerportal Düren (Demo)" in await page.content()
            await page.click("#signin")
            await page.wait_for_url(f"{gw.origin}/signin/*")
            assert "Meldebescheinigung beantragen" in await page.content()

            await page.click("text=simulierte AusweisApp öffnen")
            await page.wait_for_url(f"{gw.origin}/eid-sim/client*")
            await page.check("input[name=identity][value=erika]")
            await page.fill("#pin", "123456")
            await page.click("button[name=action][value=confirm]")

            # the SAML POST form of the gateway (no script): the citizen presses "Weiter"
            await page.wait_for_selector("#saml-post-form")
            await page.click("#saml-post-form button[type=submit]")
            await page.wait_for_url(f"{gw.origin}/demo/acs")
            table = await page.inner_text("#identity")
            assert "MUSTERMANN" in table and "ERIKA" in table
            assert "HEIDESTRASSE 17" in table and "12.08.1964" in table
            assert blocked == []
        finally:
            await context.close()


async def test_erika_signs_in_through_the_demo_oidc_button(start_gateway: StartGateway, tmp_path: Path) -> None:
    """The Bürgerportal's second button: the same card step, answered over OpenID Connect."""
    from playwright.async_api import async_playwright

    gw = await start_gateway()
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=ARGS,
            locale="de-DE",
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(gw.url("/demo/"))
            await page.click("#signin-oidc")
            await page.wait_for_url(f"{gw.origin}/signin/*")
            await page.click("text=simulierte AusweisApp öffnen")
            await page.wait_for_url(f"{gw.origin}/eid-sim/client*")
            await page.check("input[name=identity][value=erika]")
            await page.fill("#pin", "123456")
            await page.click("button[name=action][value=confirm]")
            await page.wait_for_url(f"{gw.origin}/demo/oidc/callback*")
            text = await page.inner_text("table")
            assert "MUSTERMANN" in text and "ERIKA" in text
            assert "http://eidas.europa.eu/LoA/high" in await page.content()
        finally:
            await context.close()
