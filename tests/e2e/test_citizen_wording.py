"""Issue 16, wording: what a citizen reads on the gateway's pages says each thing once, in one language,
with the citizen (not the task) as the one who acts."""

from __future__ import annotations

import re
from pathlib import Path

from helpers.gateway import Browser, Page, StartGateway, open_start_page

README = Path(__file__).resolve().parents[2] / "README.md"


def _main_text(page: Page) -> str:
    return " ".join(page.doc().xpath("string(//main)").split())


async def test_start_page_says_test_mode_once_and_names_the_task_as_a_task(
    start_gateway: StartGateway, browser: Browser
) -> None:
    gw = await start_gateway()
    start = await open_start_page(browser, gw)
    [banner] = start.doc().xpath('//div[contains(@class, "test-banner")]')
    banner_text = " ".join(banner.text_content().split())
    assert banner_text.startswith("Testumgebung: Dieses Gateway verwendet einen simulierten eID-Server.")
    assert "TESTBETRIEB" not in start.text and banner_text.count("Test") == 1
    intro = _main_text(start)
    assert "Für „Meldebescheinigung beantragen“ weisen Sie sich bitte mit Ihrem Personalausweis" in intro
    assert "Meldebescheinigung beantragen möchte" not in intro

    [switch] = [a.get("href") for a in start.doc().iter("a") if a.get("hreflang") == "en"]
    english = await browser.get(gw.url(switch))
    banner_en = " ".join(english.doc().xpath('string(//div[contains(@class, "test-banner")])').split())
    assert banner_en.startswith("Test environment: This gateway uses a simulated eID-Server.")
    assert "TEST MODE" not in english.text
    assert "For “Apply for a certificate of registration”, please identify yourself" in _main_text(english)
    assert "would like to identify you" not in english.text


async def test_an_oversize_body_gets_a_page_titled_too_large(start_gateway: StartGateway, browser: Browser) -> None:
    gw = await start_gateway()
    body = b"SAMLRequest=" + b"A" * (gw.config.limits.max_body_bytes + 1)
    for lang, title in (("de", "Anfrage zu groß"), ("en", "Request too large")):
        async with browser.session.post(
            gw.url(f"/saml/sso?lang={lang}"), data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        ) as resp:
            text = await resp.text()
        assert resp.status == 413
        assert re.search(rf"<title>{title} – ", text) and f"<h1>{title}</h1>" in text, text[:600]
        assert "nicht verfügbar" not in text and "not available" not in text


async def test_a_garbage_saml_request_gets_one_language_and_one_retry_hint(
    start_gateway: StartGateway, browser: Browser
) -> None:
    gw = await start_gateway()
    for lang in ("de", "en"):
        async with browser.session.post(
            gw.url(f"/saml/sso?lang={lang}"), data={"SAMLRequest": "not base64 !"}, allow_redirects=False
        ) as resp:
            text = await resp.text()
        assert resp.status == 400
        main = " ".join(re.sub(r"<[^>]+>", " ", text.split("<main", 1)[1].split("</main>")[0]).split())
        if lang == "de":
            assert "Ungültige Anmeldeanfrage" in main and "Invalid" not in main and "service's" not in main
            assert len(re.findall(r"neu beginnen|erneut", main)) == 1, main
        else:
            assert "Invalid sign-in request" in main and "Ungültige" not in main and "Dienstes" not in main
            assert len(re.findall(r"start the sign-in", main)) == 1, main
        # a POST cannot be repeated by a link: no language switch on this page
        assert 'hreflang="' not in text


def test_readme_names_the_test_pin() -> None:
    text = README.read_text(encoding="utf-8")
    assert "any six-digit PIN" not in text
    assert "test PIN `123456`" in text
