"""Issue 15: Debian's mod_auth_openidc (2.4.12.3 in Debian 12) as a relying party of the gateway, set
up with docs/integrations/mod_auth_openidc.conf, through a whole sign-in with the eID-Server simulator
and through the cancel path."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from eid_gateway.pseudonym import derive_pseudonym
from eid_gateway.simulator.identities import stable_restricted_id
from helpers.gateway import Browser, Page, Servers, ausweisapp, tc_token_url_of

from .conftest import Apache, StartApache


def claims_of(page: Page) -> dict[str, str]:
    """The echo script's ``NAME=value`` lines."""
    assert page.status == 200, page.text
    return dict(line.split("=", 1) for line in page.text.splitlines() if "=" in line)


def authorize_requests(browser: Browser) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(u).query) for u in browser.history if urlsplit(u).path == "/oidc/authorize"]


def module_version(apache: Apache) -> str:
    found = re.search(r"mod_auth_openidc-([0-9.]+) - init", apache.error_log())
    return found.group(1) if found else "unknown"


async def open_start_page(browser: Browser, apache: Apache) -> Page:
    """The protected URL -> mod_auth_openidc's authorization request -> the gateway's start page."""
    browser.history.clear()
    start = await browser.get(apache.protected_url)
    assert start.status == 200 and start.url.startswith(apache.gateway.origin + "/signin/"), apache.error_log()
    [query] = authorize_requests(browser)
    assert query["client_id"] == [apache.service_id] and query["redirect_uri"] == [apache.redirect_uri]
    assert query["scope"] == ["openid profile"] and query["code_challenge_method"] == ["S256"]
    assert "Bürgerportal (Apache)" in start.text  # the registered service's name on the start page
    return start


async def test_sign_in_through_mod_auth_openidc(start_apache: StartApache, browser: Browser, servers: Servers) -> None:
    apache = await start_apache(no_iss_in_errors=True)
    start = await open_start_page(browser, apache)
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    assert "ResultMajor=ok" in step.next_url

    # the refresh -> the RP's redirect URI (code exchanged with the client secret, ID token checked,
    # userinfo fetched) -> the protected page, which shows what the application receives
    browser.history.clear()
    page = await browser.get(step.next_url)
    visited = [urlsplit(u)._replace(query="").geturl() for u in browser.history]
    assert visited == [step.next_url.split("?")[0], apache.redirect_uri, apache.protected_url], visited
    [callback] = [parse_qs(urlsplit(u).query) for u in browser.history if u.startswith(apache.redirect_uri)]
    assert set(callback) == {"code", "state", "iss"} and callback["iss"] == [apache.gateway.origin]
    claims = claims_of(page)
    assert claims["OIDC_CLAIM_family_name"] == "MUSTERMANN", claims
    assert claims["OIDC_CLAIM_given_name"] == "ERIKA"
    assert claims["OIDC_CLAIM_birthdate"] == "1964-08-12"
    pseudonym = derive_pseudonym(
        apache.gateway.config.keys.pseudonym_secret, apache.service_id, stable_restricted_id("erika").id
    )
    assert claims["OIDC_CLAIM_sub"] == pseudonym
    assert claims["REMOTE_USER"] == pseudonym
    assert claims["OIDC_CLAIM_iss"] == apache.gateway.origin
    assert "OIDC_CLAIM_address" not in claims  # scope "profile" only: nothing beyond it is released

    # signed in: the protected page again needs no trip to the gateway
    browser.history.clear()
    again = await browser.get(apache.protected_url)
    assert claims_of(again)["OIDC_CLAIM_sub"] == pseudonym and browser.history == [apache.protected_url]


async def test_cancel_shows_mod_auth_openidcs_error_page(start_apache: StartApache, browser: Browser) -> None:
    """With the documented registration, cancelling on the start page ends at mod_auth_openidc's error
    page naming access_denied: no loop into a fresh sign-in, no identity."""
    apache = await start_apache(no_iss_in_errors=True)
    start = await open_start_page(browser, apache)
    browser.history.clear()
    page = await browser.submit(start)  # the start page's only form: "Abbrechen und zurück zum Dienst"
    assert [u.split("?")[0] for u in browser.history] == [apache.redirect_uri], browser.history
    callback = parse_qs(urlsplit(browser.history[0]).query)
    assert callback["error"] == ["access_denied"] and "code" not in callback and "iss" not in callback
    assert page.status == 200, page.text  # what 2.4.12.3 answers with its built-in error template
    assert "OpenID Connect Provider error: access_denied" in page.text, page.text
    assert "the citizen cancelled the sign-in" in page.text
    assert "MUSTERMANN" not in page.text
    # and the citizen is not signed in: the protected URL starts a new sign-in at the gateway
    await open_start_page(browser, apache)


async def test_without_the_switch_this_version_loops_into_a_fresh_sign_in(
    start_apache: StartApache, browser: Browser
) -> None:
    """Why the registration above needs ``error_response_iss = false``: mod_auth_openidc before 2.4.13
    takes a redirect with ``iss`` and no ``code`` for a discovery response and starts a new sign-in; the
    citizen is back on the gateway's start page each time, until the 7th cancel gets a 503 (its limit of
    7 state cookies). When Debian ships a fixed version this test fails: then the switch is no longer
    needed for it (docs/integrations/mod_auth_openidc.md)."""
    apache = await start_apache(no_iss_in_errors=False)  # the gateway's default: RFC 9207 iss in error responses too
    page = await open_start_page(browser, apache)
    for cancels in range(1, 11):  # noqa: B007 - read after the loop: how many cancels until the 503
        browser.history.clear()
        page = await browser.submit(page)
        callback = parse_qs(urlsplit(browser.history[0]).query)
        assert callback["error"] == ["access_denied"] and callback["iss"] == [apache.gateway.origin]
        if page.status != 200:
            break
        fresh = authorize_requests(browser)
        assert len(fresh) == 1, f"mod_auth_openidc {module_version(apache)} no longer loops: {browser.history}"
        assert fresh[0]["client_id"] == [apache.service_id] and fresh[0]["state"] != callback["state"]
        assert page.url.startswith(apache.gateway.origin + "/signin/")
    assert (cancels, page.status) == (7, 503), apache.error_log()
