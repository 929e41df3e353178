"""Issue 16: the language is chosen once and kept. A service's wish (OIDC ``ui_locales``, the ``lang``
parameter on the SAML SSO URL) beats the cookie of an earlier choice, which beats ``Accept-Language``;
the choice carries through the start page, the failure page, the POST page back to the service and the
error pages outside the flow. The browser here is German (``Accept-Language: de-DE``) throughout.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from eid_gateway.web.i18n import LANGUAGE_COOKIE
from helpers.gateway import Browser, Gateway, Page, Servers, StartGateway, ausweisapp, tc_token_url_of

GERMAN = {"Accept-Language": "de-DE,de;q=0.9"}


def _lang(page: Page) -> str:
    return str(page.doc().get("lang"))


async def _service_redirect(browser: Browser, gw: Gateway, login: str) -> str:
    """The demo service's redirect to the gateway (SSO URL or authorize URL), not yet followed."""
    resp = await browser.get_no_follow(gw.url(login))
    assert resp.status in (302, 303), await resp.text()
    location = resp.headers["Location"]
    resp.release()
    return location if location.startswith("http") else gw.url(location)


@pytest.fixture
async def german(browser: Browser) -> Browser:
    browser.session.headers.update(GERMAN)
    return browser


async def test_oidc_ui_locales_en_gives_english_pages_to_a_german_browser(
    start_gateway: StartGateway, german: Browser, servers: Servers
) -> None:
    gw = await start_gateway()
    authorize = await _service_redirect(german, gw, "/demo/oidc/login")
    assert urlsplit(authorize).path == "/oidc/authorize"
    start = await german.get(authorize + "&ui_locales=fr-CA%20en-GB")  # the first supported one wins
    assert start.status == 200 and _lang(start) == "en", start.text[:300]
    assert "Sign in with the AusweisApp" in start.text and "Mit der AusweisApp anmelden" not in start.text

    # the card step fails: the failure page (reached through AusweisApp's redirect) is English too
    step = await ausweisapp(servers, tc_token_url_of(start), cancel=True)
    failure = await german.get(step.next_url)
    assert _lang(failure) == "en" and "Sign-in cancelled" in failure.text

    # and so is an error page outside any flow, by the cookie the choice left
    missing = await german.get(gw.url("/signin/" + "A" * 43))
    assert missing.status == 404 and _lang(missing) == "en" and "Sign-in not found" in missing.text
    not_found = await german.get(gw.url("/no-such-page"))
    assert not_found.status == 404 and _lang(not_found) == "en" and "Page not found" in not_found.text


async def test_saml_lang_parameter_on_the_sso_url(
    start_gateway: StartGateway, german: Browser, servers: Servers
) -> None:
    """The documented SAML hint (docs/saml.md): ``lang=en`` added to the signed redirect URL; the
    signature covers SAMLRequest, RelayState and SigAlg only, so the parameter leaves it valid."""
    gw = await start_gateway()
    sso = await _service_redirect(german, gw, "/demo/login")
    assert urlsplit(sso).path == "/saml/sso" and "&Signature=" in sso
    assert sso.endswith("&lang=de")  # the demo passes its own page language (German here) on
    start = await german.get(sso.removesuffix("&lang=de") + "&lang=en")
    assert start.status == 200 and _lang(start) == "en", start.text[:300]
    step = await ausweisapp(servers, tc_token_url_of(start), pin="111111")
    failure = await german.get(step.next_url)
    assert _lang(failure) == "en" and "Wrong PIN" in failure.text
    posted = await german.submit(failure)  # "return to the service": the POST page, English, no switch
    assert _lang(posted) == "en" and "press “Continue”" in posted.text
    assert not [a for a in posted.doc().iter("a") if a.get("hreflang")]


async def test_cookie_beats_accept_language_and_a_service_hint_beats_the_cookie(
    start_gateway: StartGateway, german: Browser
) -> None:
    gw = await start_gateway()
    # the citizen's own switch sets the cookie
    switched = await german.get(gw.url("/signin/" + "A" * 43 + "?lang=en"))
    assert _lang(switched) == "en"
    assert [c.value for c in german.session.cookie_jar if c.key == LANGUAGE_COOKIE] == ["en"]
    # a new sign-in without a hint follows the cookie, not Accept-Language
    start = await german.get(await _service_redirect(german, gw, "/demo/login"))
    assert _lang(start) == "en"
    # the service's hint wins over the cookie, and replaces it
    authorize = await _service_redirect(german, gw, "/demo/oidc/login")
    start = await german.get(authorize + "&ui_locales=de")
    assert _lang(start) == "de"
    assert [c.value for c in german.session.cookie_jar if c.key == LANGUAGE_COOKIE] == ["de"]


async def test_switching_on_the_start_page_carries_to_the_failure_page(
    start_gateway: StartGateway, german: Browser, servers: Servers
) -> None:
    gw = await start_gateway()
    start = await german.get(await _service_redirect(german, gw, "/demo/login"))
    assert _lang(start) == "de"
    [switch] = [a.get("href") for a in start.doc().iter("a") if a.get("hreflang") == "en"]
    english = await german.get(gw.url(switch))
    assert _lang(english) == "en"
    step = await ausweisapp(servers, tc_token_url_of(english), cancel=True)
    failure = await german.get(step.next_url)  # AusweisApp's redirect has no ?lang: the cookie carries it
    assert _lang(failure) == "en" and "Sign-in cancelled" in failure.text


async def test_oidc_unknown_client_page_has_the_layout_and_speaks_the_asked_language(
    start_gateway: StartGateway, german: Browser
) -> None:
    gw = await start_gateway()
    evil = "https://attacker.example/cb"
    page = await german.get(
        gw.url(f"/oidc/authorize?client_id=nobody&redirect_uri={evil}&response_type=code&scope=openid&ui_locales=en")
    )
    assert page.status == 400 and _lang(page) == "en"
    doc = page.doc()
    assert doc.xpath('//header[@class="site-header"]') and doc.xpath('//link[@href="/static/style.css"]')
    assert "not registered with this gateway" in page.text and "Error code: unknown_client" in page.text
    assert "Fehlercode" not in page.text and "nicht registriert" not in page.text
    assert "attacker" not in page.text  # nothing of the request is reflected, not even in the switch link
    [switch] = [str(a.get("href")) for a in doc.iter("a") if a.get("hreflang") == "de"]
    assert switch == "/oidc/error/unknown_client?lang=de"
    german_page = await german.get(gw.url(switch))
    assert german_page.status == 400 and _lang(german_page) == "de"
    assert "nicht registriert" in german_page.text and "Fehlercode: unknown_client" in german_page.text
    assert (await german.get(gw.url("/oidc/error/whatever"))).status == 404


async def test_the_demo_service_passes_its_language_on(start_gateway: StartGateway, german: Browser) -> None:
    gw = await start_gateway()
    sso = await _service_redirect(german, gw, "/demo/login?lang=en")
    assert sso.endswith("&lang=en") and "&Signature=" in sso
    start = await german.get(sso)
    assert start.status == 200 and _lang(start) == "en"
