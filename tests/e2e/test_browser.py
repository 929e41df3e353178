"""The sign-in in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

The browser follows links, redirects and forms exactly as a citizen's would, under the CSP the gateway
sends (a blocked script or form post would fail these tests). The SAML POST-binding page submits itself
with the gateway's static script (``script-src 'self'``, no inline script): the citizen does not press
"Weiter"; with JavaScript switched off the page's button still gets the citizen to the service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from eid_gateway.demo.pages import OidcDemoPages
from eid_gateway.frontends.saml_idp import AUTOSUBMIT_SCRIPT_PATH
from eid_gateway.identity import LevelOfAssurance
from helpers.chromium import ARGS, BROWSER_MARKS, CHROMIUM
from helpers.gateway import Gateway, StartGateway

pytestmark = BROWSER_MARKS


@dataclass
class Watch:
    """What the page reported: CSP violations and script errors on the console, and the responses to
    requests for the auto-submit script."""

    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    script_statuses: list[int] = field(default_factory=list)

    def attach(self, page: Any, gw: Gateway) -> None:
        def console(message: Any) -> None:
            if "Content Security Policy" in message.text or "Refused to" in message.text:
                self.violations.append(message.text)

        def response(resp: Any) -> None:
            if resp.url == gw.url(AUTOSUBMIT_SCRIPT_PATH):
                self.script_statuses.append(resp.status)

        page.on("console", console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("response", response)


@asynccontextmanager
async def _at_the_card_step(
    gw: Gateway, tmp_path: Path, *, javascript: bool = True, button: str = "#signin"
) -> AsyncIterator[tuple[Any, Watch]]:
    """A German Chromium's page, watched from the start, taken to the card step (:func:`_to_the_card_step`)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            locale="de-DE",
            java_script_enabled=javascript,
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            watch = Watch()
            watch.attach(page, gw)
            await _to_the_card_step(page, gw, button)
            yield page, watch
        finally:
            await context.close()


async def _to_the_card_step(page: Any, gw: Gateway, button: str) -> None:
    """Demo service -> gateway start page -> the simulated AusweisApp, Erika's card and PIN filled in."""
    await page.goto(gw.url("/demo/"))
    assert "Bürgerportal Düren (Demo)" in await page.content()
    await page.click(button)
    await page.wait_for_url(f"{gw.origin}/signin/*")
    assert "Meldebescheinigung beantragen" in await page.content()
    await page.click("text=simulierte AusweisApp öffnen")
    await page.wait_for_url(f"{gw.origin}/eid-sim/client*")
    await page.check("input[name=identity][value=erika]")
    await page.fill("#pin", "123456")


async def test_erika_signs_in_with_a_real_browser_without_a_click_on_weiter(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start_gateway()
    async with _at_the_card_step(gw, tmp_path) as (page, watch):
        await page.click("button[name=action][value=confirm]")

        # the gateway's POST page submits itself: nothing is clicked after "Bestätigen"
        await page.wait_for_url(f"{gw.origin}/demo/acs")
        table = await page.inner_text("#identity")
        assert "MUSTERMANN" in table and "ERIKA" in table
        assert "HEIDESTRASSE 17" in table and "12.08.1964" in table
        assert watch.script_statuses == [200]
        assert watch.violations == [] and watch.errors == []


async def test_without_javascript_the_continue_button_gets_erika_to_the_service(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start_gateway()
    async with _at_the_card_step(gw, tmp_path, javascript=False) as (page, watch):
        await page.click("button[name=action][value=confirm]")

        # no script runs: the page waits with its text in the citizen's language until "Weiter" is pressed
        await page.wait_for_selector("#saml-post-form")
        text = await page.inner_text("body")
        assert "bitte auf „Weiter“ klicken" in text and "press “Continue”" not in text
        assert page.url.startswith(gw.origin + "/eid/")
        await page.click("#saml-post-form button[type=submit]")
        await page.wait_for_url(f"{gw.origin}/demo/acs")
        assert "MUSTERMANN" in await page.inner_text("#identity")
        assert watch.violations == []


async def test_a_cancelled_sign_in_returns_to_the_service_without_a_click_on_weiter(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The failure answer (a SAML error Response) goes through the same self-submitting page: the citizen
    reads the gateway's failure page, presses its "back to the service" button, and is not asked again."""
    gw = await start_gateway()
    async with _at_the_card_step(gw, tmp_path) as (page, watch):
        await page.click("button[name=action][value=cancel]")
        await page.wait_for_selector(".notice.error")
        await page.click("form button[type=submit]")  # the failure page's only button
        await page.wait_for_url(f"{gw.origin}/demo/acs")
        assert "Die Anmeldung wurde abgebrochen" in await page.inner_text("body")
        assert "MUSTERMANN" not in await page.content()
        assert watch.script_statuses == [200]
        assert watch.violations == [] and watch.errors == []


async def test_erika_signs_in_through_the_demo_oidc_button(
    start_gateway: StartGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Bürgerportal's second button: the same card step, answered over OpenID Connect (a redirect,
    no POST page and no script)."""
    verified: list[dict[str, Any]] = []  # the ID token claims the demo's relying party verified
    shown = OidcDemoPages.signed_in

    def signed_in(
        self: OidcDemoPages, request: web.Request, claims: dict[str, Any], userinfo: dict[str, Any]
    ) -> web.Response:
        verified.append(claims)
        return shown(self, request, claims, userinfo)

    monkeypatch.setattr(OidcDemoPages, "signed_in", signed_in)
    gw = await start_gateway()
    async with _at_the_card_step(gw, tmp_path, button="#signin-oidc") as (page, watch):
        await page.click("button[name=action][value=confirm]")
        await page.wait_for_url(f"{gw.origin}/demo/oidc/callback*")
        text = await page.inner_text("table")
        assert "MUSTERMANN" in text and "ERIKA" in text
        rows = await page.eval_on_selector_all(
            "#identity tr", "rows => rows.map(r => [r.cells[0].innerText, r.cells[1].innerText])"
        )
        table = dict(rows)
        assert table["Vertrauensniveau"] == "hoch (eIDAS)"  # the ID token's acr, in words
        assert table["Angemeldet über"] == "OpenID Connect"
        [claims] = verified
        assert claims["acr"] == LevelOfAssurance.HIGH.value == "http://eidas.europa.eu/LoA/high"
        assert watch.script_statuses == [] and watch.violations == []
