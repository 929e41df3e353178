"""Issue 18 in a real browser (headless Chromium): the demo's "Mit der EUDI-Wallet anmelden", the wallet
on the same device (clicks through the test wallet's page) and on another device (the QR code read from
a screenshot of the gateway's page with ``zbarimg``, the test wallet presenting from it), the wallet page
without JavaScript, and axe-core on the new pages (WCAG 2.1 AA, German and English, 1280 and 360 px).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eid_gateway.wallet_sim.wallet import read_qr
from helpers.chromium import ARGS, BROWSER_MARKS, CHROMIUM
from helpers.gateway import Gateway, StartGateway
from helpers.wallet_sim import WalletSim, wallet_sim  # noqa: F401 - the fixture

from .test_accessibility import _RUN_AXE, _TEXT_IN_PAGE_LANGUAGE, AXE, OTHER_LANGUAGE_WORDS, WCAG_TAGS
from .test_wallet_signin import with_wallet

pytestmark = BROWSER_MARKS
#: Generous (CI machines are up to 4x slower), in milliseconds.
TIMEOUT_MS = 30_000


async def _launch(pw: Any, tmp_path: Path, *, javascript: bool = True, width: int = 1280, lang: str = "de") -> Any:
    return await pw.chromium.launch_persistent_context(
        str(tmp_path / f"chromium-{width}-{lang}-{javascript}"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=ARGS,
        locale="de-DE" if lang == "de" else "en-GB",
        java_script_enabled=javascript,
        viewport={"width": width, "height": 900},
    )


async def _to_wallet_page(page: Any, gw: Gateway) -> None:
    """Demo -> "Mit der EUDI-Wallet anmelden" -> the start page (wallet first) -> the wallet page."""
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(gw.url("/demo/"))
    await page.click("#signin-wallet")
    await page.wait_for_url(f"{gw.origin}/signin/*")
    await page.click("#signin-wallet")
    await page.wait_for_url(f"{gw.origin}/signin/*/wallet*")


async def _identity_on_the_demo(page: Any, gw: Gateway) -> str:
    await page.wait_for_url(f"{gw.origin}/demo/acs", timeout=TIMEOUT_MS)  # the POST page submits itself
    return str(await page.inner_text("#identity"))


async def test_same_device_erika_clicks_through_the_test_wallet(
    start_gateway: StartGateway, wallet_sim: WalletSim, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    async with async_playwright() as pw:
        context = await _launch(pw, tmp_path)
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
            await _to_wallet_page(page, gw)
            await page.click("#wallet-same-device")
            await page.wait_for_url(wallet_sim.authorize_url + "*")
            await page.click("button[name=person][value=erika]")
            table = await _identity_on_the_demo(page, gw)
            assert "MUSTERMANN" in table and "ERIKA" in table and "substanziell" in table
            assert errors == []
        finally:
            await context.close()


async def test_cross_device_the_qr_code_on_the_page_carries_the_request(
    start_gateway: StartGateway, wallet_sim: WalletSim, tmp_path: Path
) -> None:
    """Chromium renders the wallet page; the QR code is read from a screenshot (what a phone's camera
    sees); the test wallet presents as Andre from it; the page continues by itself (JavaScript)."""
    from playwright.async_api import async_playwright

    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    async with async_playwright() as pw:
        context = await _launch(pw, tmp_path)
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await _to_wallet_page(page, gw)
            shot = tmp_path / "qr.png"
            await page.locator("#wallet-qr").screenshot(path=str(shot))
            url = await read_qr(shot)
            assert url == (await page.inner_text("#wallet-cross-device-url")).strip()  # the visible text too
            answer = await wallet_sim.present(url, person="andre")
            assert answer["status"] == 200 and answer.get("redirect_uri") is None
            table = await _identity_on_the_demo(page, gw)  # no click: the page's script continued
            assert "MUSTERMANN" in table and "ANDRÉ" in table
        finally:
            await context.close()


async def test_without_javascript_weiter_says_not_yet_and_then_continues(
    start_gateway: StartGateway, wallet_sim: WalletSim, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    async with async_playwright() as pw:
        context = await _launch(pw, tmp_path, javascript=False)
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await _to_wallet_page(page, gw)
            await page.click("#wallet-continue button")
            assert "Noch nicht freigegeben" in await page.inner_text("#wallet-not-yet")
            url = (await page.inner_text("#wallet-cross-device-url")).strip()
            assert (await wallet_sim.present(url, person="erika"))["status"] == 200
            await page.click("#wallet-continue button")
            await page.click("#saml-post-form button[type=submit]")  # without JavaScript: the POST page's button
            table = await _identity_on_the_demo(page, gw)
            assert "MUSTERMANN" in table
        finally:
            await context.close()


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: ./dev test runs npm ci in tests/rp_node")
@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("width", [1280, 360])
async def test_wallet_pages_have_no_wcag_21_aa_violation(
    start_gateway: StartGateway, wallet_sim: WalletSim, tmp_path: Path, lang: str, width: int
) -> None:
    from playwright.async_api import async_playwright

    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    found: dict[str, Any] = {}
    async with async_playwright() as pw:
        context = await _launch(pw, tmp_path, width=width, lang=lang)
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.set_default_timeout(TIMEOUT_MS)

            async def check(name: str) -> None:
                await page.wait_for_load_state("load")
                wider = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert wider <= 0, f"{name}: {wider} px wider than the screen"
                page_lang, text = await page.evaluate(_TEXT_IN_PAGE_LANGUAGE)
                assert page_lang == lang
                assert sorted(set(OTHER_LANGUAGE_WORDS[lang].findall(text))) == [], f"{name}: mixed languages"
                await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
                result = await page.evaluate(_RUN_AXE, WCAG_TAGS)
                if result["violations"]:
                    found[name] = result["violations"]

            await page.goto(gw.url(f"/demo/?lang={lang}"))
            await page.click("#signin")  # the card button: the start page offers both, card first
            await page.wait_for_url(f"{gw.origin}/signin/*")
            await check("start page, card and wallet")
            await page.click("#signin-wallet")
            await page.wait_for_url(f"{gw.origin}/signin/*/wallet*")
            await check("wallet page")
            await page.route("**/wallet/status", lambda route: route.abort())  # stay on the page
            await page.click("#wallet-continue button")
            await page.wait_for_selector("#wallet-not-yet")
            await check("wallet page, not yet shared")
            url = (await page.inner_text("#wallet-cross-device-url")).strip()
            await wallet_sim.present(url, person="revoked")
            await page.click("#wallet-continue button")
            await page.wait_for_selector(".notice.error")
            await check("failure page, revoked")
        finally:
            await context.close()
    assert found == {}
