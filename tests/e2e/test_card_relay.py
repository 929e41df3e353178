"""The card relay attack (issue 13, item 1), end to end over SAML and OpenID Connect.

An attacker begins a sign-in at a city service and sends a victim the AusweisApp link for the
attacker's TC Token URL. The victim's AusweisApp shows the genuine service, the victim enters the PIN,
and AusweisApp sends the victim's browser to the refresh address. That browser did not begin the flow:
from then on the flow is failed, and the attacker's browser receives no identity, in either order of
arrival. AusweisApp's own requests on the refresh address (no browser cookie, no browser navigation)
still change nothing. The rule: eid_gateway.web.navigation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from eid_gateway.store.sqlite import SqliteStore
from helpers.chromium import ARGS, CHROMIUM, requires_chromium
from helpers.gateway import (
    Browser,
    Gateway,
    Page,
    Servers,
    StartGateway,
    ausweisapp,
    card_step,
    deliver,
    open_oidc_start_page,
    open_start_page,
    tc_token_url_of,
)
from helpers.saml_post import demo_status_line, read_saml_response, saml_response_on
from saml import parse_response
from saml.messages import STATUS_AUTHN_FAILED, STATUS_RESPONDER

AUSWEISAPP_HEADERS = {"User-Agent": "AusweisApp2/1.26.2 (TR-03124-1/1.3) Debian/12", "Accept": "*/*"}
RELAY_TEXT = "Diese Anmeldung wurde nicht in diesem Browser begonnen"
ENDED_TITLE = "Anmeldung zu Ihrem Schutz beendet"
#: What the demo service shows for the error Response Responder / AuthnFailed (its status in words).
AUTHN_FAILED_TEXT = "Die Authentifizierung mit dem Ausweis ist fehlgeschlagen"
AUTHN_FAILED_LINE = "Status: Fehler beim Anmeldedienst: Authentifizierung fehlgeschlagen"


@pytest.fixture
async def victim() -> AsyncIterator[Browser]:
    """The victim's browser: a separate cookie jar, a browser's navigation headers."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield Browser(session)


def assert_no_identity(*pages: Page) -> None:
    for page in pages:
        assert "MUSTERMANN" not in page.text and "ERIKA" not in page.text and "1964" not in page.text


async def attacker_gets_nothing_saml(gw: Gateway, attacker: Browser, refresh_url: str) -> None:
    """The attacker's browser at the refresh address: the failure page, then the service's error (the
    signed error Response Responder / AuthnFailed, shown by the service in words)."""
    failed = await attacker.get(refresh_url)
    assert failed.status == 200 and ENDED_TITLE in failed.text, failed.text
    post_page = await attacker.submit(failed)
    response = saml_response_on(post_page, [gw.config.keys.saml_signing.certificate])
    status = parse_response(response).status
    assert (status.code, status.sub_code) == (STATUS_RESPONDER, STATUS_AUTHN_FAILED)
    assert [child.tag for child in response if "Assertion" in child.tag] == []  # no assertion, not even encrypted
    result = await deliver(attacker, post_page)
    assert result.status == 200 and AUTHN_FAILED_TEXT in result.text
    assert demo_status_line(result) == AUTHN_FAILED_LINE
    assert_no_identity(failed, post_page, result)


async def attacker_gets_nothing_oidc(gw: Gateway, attacker: Browser, refresh_url: str) -> None:
    """The attacker's browser at the refresh address: the failure page, then the relying party's callback
    with error=access_denied (and the issuer), no code."""
    failed = await attacker.get(refresh_url)
    assert failed.status == 200 and ENDED_TITLE in failed.text
    result = await attacker.submit(failed)  # "return to the service": 303 to the demo's callback
    callback = [u for u in attacker.history if urlsplit(u).path == "/demo/oidc/callback"]
    assert len(callback) == 1
    query = parse_qs(urlsplit(callback[0]).query)
    assert query["error"] == ["access_denied"] and "code" not in query
    assert query["iss"] == [gw.origin]
    assert_no_identity(failed, result)


@pytest.mark.parametrize(
    ("open_start", "attacker_gets_nothing"),
    [(open_start_page, attacker_gets_nothing_saml), (open_oidc_start_page, attacker_gets_nothing_oidc)],
    ids=["saml", "oidc"],
)
async def test_card_relay_gives_the_attacker_nothing(
    start_gateway: StartGateway,
    browser: Browser,
    victim: Browser,
    servers: Servers,
    open_start: Callable[[Browser, Gateway], Awaitable[Page]],
    attacker_gets_nothing: Callable[[Gateway, Browser, str], Awaitable[None]],
) -> None:
    gw = await start_gateway()
    attacker = browser
    start = await open_start(attacker, gw)
    # the victim's AusweisApp runs the attacker's TC Token URL, and sends the victim's browser on
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    landed = await victim.get(step.next_url)
    assert landed.status == 403 and RELAY_TEXT in landed.text
    assert_no_identity(landed)
    await attacker_gets_nothing(gw, attacker, step.next_url)
    # and the victim's browser cannot complete it either
    again = await victim.get(step.next_url)
    assert again.status in (403, 410)
    assert_no_identity(again)


async def test_relay_while_the_attackers_refresh_waits_for_the_result(
    start_gateway: StartGateway, browser: Browser, victim: Browser, servers: Servers
) -> None:
    """The other order: the attacker opens the refresh address first and the gateway waits for the
    result; the card step ends meanwhile and the victim's browser arrives while the late result is held."""

    def generous(text: str) -> str:  # no timing in this test: the waits are long, the events ordered
        edited = text.replace("result_wait_seconds = 3.0", "result_wait_seconds = 30.0")
        edited = edited.replace("late_result_grace_seconds = 2.0", "late_result_grace_seconds = 30.0")
        assert edited.count("= 30.0") == 2
        return edited

    gw = await start_gateway(edit_config=generous)
    attacker = browser
    start = await open_start_page(attacker, gw)
    ref = urlsplit(start.url).path.rsplit("/", 1)[1]
    tc_url = tc_token_url_of(start)
    async with aiohttp.ClientSession(headers=AUSWEISAPP_HEADERS) as http:  # the TC Token is fetched first
        async with http.get(tc_url) as resp:
            token = await resp.read()
    assert b"RefreshAddress" in token
    store = SqliteStore(gw.config.store.path)
    try:
        refresh_url = tc_url.replace("/eid/tctoken/", "/eid/refresh/") + "?ResultMajor=ok"
        waiting = asyncio.create_task(attacker.get(refresh_url))
        for _ in range(600):  # the attacker's request is waiting for the result
            flow = await store.get_flow(ref)
            if flow is not None and flow.state == "fetching":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the refresh never began to wait")
        # the victim's card step ends (the simulator's card page, as the victim's AusweisApp would)
        assert "/eid/refresh/" in await card_step(servers, token, identity="erika")
        landed = await victim.get(refresh_url)
        assert landed.status == 403 and RELAY_TEXT in landed.text
        failed = await asyncio.wait_for(waiting, 60)
        assert ENDED_TITLE in failed.text, failed.text
        assert_no_identity(landed, failed)
    finally:
        await store.close()


async def test_ausweisapps_own_requests_on_the_refresh_address_change_nothing(
    start_gateway: StartGateway, browser: Browser, servers: Servers
) -> None:
    gw = await start_gateway()
    start = await open_start_page(browser, gw)
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    async with aiohttp.ClientSession(headers=AUSWEISAPP_HEADERS) as app_http:
        async with app_http.get(step.next_url, allow_redirects=False) as resp:
            assert resp.status == 403
            assert "MUSTERMANN" not in await resp.text()
        async with app_http.head(step.next_url, allow_redirects=False) as resp:
            assert resp.status == 200
    async with aiohttp.ClientSession() as script:  # a program's fetch, no browser navigation
        async with script.get(step.next_url, allow_redirects=False) as resp:
            assert resp.status == 403
    # nothing was consumed: the citizen's own browser completes the sign-in
    result = await deliver(browser, await browser.get(step.next_url))
    assert "MUSTERMANN" in result.text


async def test_another_browser_before_the_card_step_changes_nothing(
    start_gateway: StartGateway, browser: Browser, victim: Browser, servers: Servers
) -> None:
    """Before the TC Token is fetched nothing is at stake: a link opened elsewhere ends nothing."""
    gw = await start_gateway()
    start = await open_start_page(browser, gw)
    refresh_url = tc_token_url_of(start).replace("/eid/tctoken/", "/eid/refresh/") + "?ResultMajor=ok"
    elsewhere = await victim.get(refresh_url)
    assert elsewhere.status == 403 and "ursprünglichen Browser" in elsewhere.text
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    result = await deliver(browser, await browser.get(step.next_url))
    assert "MUSTERMANN" in result.text


# --- the same attack in two real browsers (headless Chromium: its own Fetch Metadata and cookies) --------


@pytest.mark.browser
@requires_chromium
@pytest.mark.parametrize("button", ["#signin", "#signin-oidc"])
async def test_card_relay_between_two_real_browsers(start_gateway: StartGateway, button: str) -> None:
    from playwright.async_api import async_playwright

    gw = await start_gateway()
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            attacker = await (await chromium.new_context(locale="de-DE")).new_page()
            victim = await (await chromium.new_context(locale="de-DE")).new_page()
            await attacker.goto(gw.url("/demo/"))
            await attacker.click(button)
            await attacker.wait_for_url(f"{gw.origin}/signin/*")
            link = await attacker.get_attribute("text=simulierte AusweisApp öffnen", "href")
            assert link is not None and link.startswith("/eid-sim/client?tcTokenURL=")

            # the victim follows the attacker's AusweisApp link and completes the card step
            await victim.goto(gw.url(link))
            await victim.check("input[name=identity][value=erika]")
            await victim.fill("#pin", "123456")
            await victim.click("button[name=action][value=confirm]")
            await victim.wait_for_url(f"{gw.origin}/eid/refresh/*")
            assert RELAY_TEXT in await victim.content()
            refresh_url = victim.url

            # the attacker opens the refresh address in the browser that began the flow
            await attacker.goto(refresh_url)
            assert ENDED_TITLE in await attacker.content()
            if button == "#signin":  # the SAML POST page submits itself (static script)
                async with attacker.expect_request(gw.url("/demo/acs")) as posted:
                    await attacker.click("form button[type=submit]")
                    await attacker.wait_for_url(f"{gw.origin}/demo/acs")
                [value] = parse_qs((await posted.value).post_data or "")["SAMLResponse"]
                response = read_saml_response(value, [gw.config.keys.saml_signing.certificate])
                status = parse_response(response).status
                assert (status.code, status.sub_code) == (STATUS_RESPONDER, STATUS_AUTHN_FAILED)
                assert AUTHN_FAILED_LINE in " ".join((await attacker.inner_text("main")).split())
            else:
                await attacker.click("form button[type=submit]")
                await attacker.wait_for_url(f"{gw.origin}/demo/oidc/callback*")
                assert parse_qs(urlsplit(attacker.url).query)["error"] == ["access_denied"]
            for page in (attacker, victim):
                text = await page.content()
                assert "MUSTERMANN" not in text and "ERIKA" not in text
        finally:
            await chromium.close()
