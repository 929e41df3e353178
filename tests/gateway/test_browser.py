"""A real headless Chromium through the embedded default: proves the pages work without JavaScript and
that the CSP (form-action) lets the SAML POST through to the service while blocking nothing needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from eid_gateway.app import create_app
from eid_gateway.config import load_config
from eid_gateway.instance import write_example_config
from helpers.chromium import ARGS, BROWSER_MARKS, CHROMIUM
from helpers.ports import free_port

pytestmark = BROWSER_MARKS


@pytest.mark.parametrize(
    ("locale", "pin", "expect"),
    [
        ("de-DE", "123456", "MUSTERMANN"),
        ("en-GB", "111111", "Wrong PIN"),
    ],
)
async def test_browser_sign_in(tmp_path: Path, locale: str, pin: str, expect: str) -> None:
    from playwright.async_api import async_playwright

    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    config = load_config(write_example_config(tmp_path, origin, port))
    server = TestServer(create_app(config), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = await browser.new_context(java_script_enabled=False, locale=locale)
            page = await context.new_page()
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)

            await page.goto(f"{origin}/demo/login")
            assert page.url.startswith(f"{origin}/signin/")
            assert await page.get_attribute("html", "lang") == locale[:2]
            await page.click('a[href^="/eid-sim/client"]')
            await page.fill("#pin", pin)
            await page.click("button[value=confirm]")
            if expect == "MUSTERMANN":
                await page.click("button")  # the SAML POST form: no script, one button
                assert page.url == f"{origin}/demo/acs"
            body = await page.inner_text("body")
            assert expect in body, body[:500]
            assert blocked == []
            await browser.close()
    finally:
        await server.close()
