"""Regression tests of issue 13, item 6: each class of malformed request the black-box fuzz answered with
HTTP 500 and an ERROR line now gets a 4xx in its endpoint's protocol, and no ERROR line.

Against the whole gateway on a real port (tests/e2e's fixtures); the strict form reader itself is
tested in test_forms.py.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from yarl import URL

from helpers.gateway import Browser, Gateway, StartGateway

FORM = "application/x-www-form-urlencoded"
MULTIPART_CUT = ("multipart/form-data; boundary=x", b"--x\r\n")


def _no_error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()[:120]}" for r in caplog.records if r.levelno >= logging.ERROR]


async def _post(
    browser: Browser, url: str, content_type: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str, str]:
    async with browser.session.post(
        URL(url, encoded=True),
        data=body,
        allow_redirects=False,
        headers={"Content-Type": content_type, **(headers or {})},
    ) as resp:
        return resp.status, resp.content_type, await resp.text()


@pytest.fixture
async def gw(start_gateway: StartGateway) -> Gateway:
    return await start_gateway()


async def test_multipart_on_saml_sso_gets_the_rejection_page(
    gw: Gateway, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    status, ctype, text = await _post(browser, gw.url("/saml/sso?lang=en"), *MULTIPART_CUT)
    assert (status, ctype) == (400, "text/html")
    assert "Invalid sign-in request" in text and "Ungültige Anmeldeanfrage" not in text  # one language
    assert _no_error_lines(caplog) == []


async def test_unknown_charset_on_oidc_authorize_gets_the_error_page(
    gw: Gateway, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    status, ctype, text = await _post(
        browser, gw.url("/oidc/authorize"), FORM + "; charset=unknown-8bit", b"client_id=demo-oidc"
    )
    assert (status, ctype) == (400, "text/html")
    assert "bad_request" in text
    assert _no_error_lines(caplog) == []


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=authorization_code&code=\xff\xfe",
        b"grant_type=%zz&code=%",
        b"grant_type=authorization_code&code=%ff%fe",
    ],
)
async def test_malformed_token_request_is_invalid_request(
    gw: Gateway, browser: Browser, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    status, ctype, text = await _post(browser, gw.url("/oidc/token"), FORM, body)
    assert (status, ctype) == (400, "application/json")
    assert '"error": "invalid_request"' in text
    assert _no_error_lines(caplog) == []


async def test_non_utf8_form_on_userinfo_is_invalid_request(gw: Gateway, browser: Browser) -> None:
    status, ctype, text = await _post(browser, gw.url("/oidc/userinfo"), FORM, b"access_token=\xe4")
    assert (status, ctype) == (400, "application/json")
    assert '"error": "invalid_request"' in text


@pytest.mark.parametrize("content_type,body", [(FORM, b"tcTokenURL=\xff&csrf=x"), MULTIPART_CUT])
async def test_malformed_simulator_client_form_gets_a_page(
    gw: Gateway, browser: Browser, caplog: pytest.LogCaptureFixture, content_type: str, body: bytes
) -> None:
    status, ctype, text = await _post(browser, gw.url("/eid-sim/client"), content_type, body)
    assert (status, ctype) == (400, "text/html")  # no language asked for: German, the default
    assert "Ungültige Anfrage" in text and "Das Formular ist fehlerhaft." in text
    status, ctype, text = await _post(browser, gw.url("/eid-sim/client?lang=en"), content_type, body)
    assert (status, ctype) == (400, "text/html")
    assert "Invalid request" in text and "The form is malformed." in text
    assert "Ungültige Anfrage" not in text  # one language per page
    assert _no_error_lines(caplog) == []


async def test_malformed_card_step_gets_a_json_error(gw: Gateway, browser: Browser) -> None:
    status, ctype, _ = await _post(browser, gw.url("/eid-sim/paos"), FORM, b"action=confirm&pin=\xff")
    assert (status, ctype) == (400, "application/json")


async def test_multipart_on_demo_acs_gets_the_demo_error_page(gw: Gateway, browser: Browser) -> None:
    status, ctype, text = await _post(browser, gw.url("/demo/acs?lang=en"), *MULTIPART_CUT)
    assert (status, ctype) == (400, "text/html")
    assert "No sign-in answer was received." in text


async def test_malformed_cancel_form_gets_the_usual_error_page(
    gw: Gateway, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    """The flow's own forms (cancel, return) read the CSRF token strictly; the error_pages middleware
    answers what no handler mapped with the usual page."""
    login = await browser.get_no_follow(gw.url("/demo/login"))
    start = await browser.get(login.headers["Location"])
    login.release()
    ref = urlsplit(start.url).path.rsplit("/", 1)[1]
    status, ctype, text = await _post(browser, gw.url(f"/signin/{ref}/cancel?lang=en"), FORM, b"csrf_token=%zz")
    assert (status, ctype) == (400, "text/html")
    assert "Invalid request" in text and "The request could not be read (HTTP 400)." in text
    status, _, text = await _post(browser, gw.url(f"/signin/{ref}/cancel?lang=en"), *MULTIPART_CUT)
    assert status == 415 and "(HTTP 415)" in text
    assert _no_error_lines(caplog) == []
    # the flow is untouched: the start page is still there
    assert (await browser.get(gw.url(f"/signin/{ref}"))).status == 200


@pytest.mark.parametrize("body", [b"not xml", b"--x\r\n", b"<x/>"])
async def test_malformed_soap_gets_a_client_fault_with_400(gw: Gateway, browser: Browser, body: bytes) -> None:
    status, ctype, text = await _post(browser, gw.url("/eid-sim/eID"), "text/xml; charset=utf-8", body)
    assert (status, ctype) == (400, "text/xml")
    assert "soapenv:Client" in text and "Fault" in text


async def test_over_long_static_file_name_is_not_found(
    gw: Gateway, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    async with browser.session.get(gw.url("/static/" + "A" * 300)) as resp:
        assert resp.status == 404
    async with browser.session.get(gw.url("/static/style.css")) as resp:
        assert resp.status == 200 and resp.content_type == "text/css"
    assert _no_error_lines(caplog) == []


async def test_simulator_client_with_an_unknown_tc_token_url_is_a_client_error(
    gw: Gateway, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    """A tcTokenURL the gateway answers with 404 (no such address) is the request's fault (400), not a bad
    gateway (502)."""
    async with browser.session.get(gw.url("/eid-sim/client"), params={"tcTokenURL": gw.url("/eid/tctoken/x")}) as page:
        assert page.status == 200
    csrf = browser.session.cookie_jar.filter_cookies(URL(gw.url("/eid-sim/client")))["eid_sim_csrf"].value
    form = f"tcTokenURL={gw.url('/eid/no-such-address')}&csrf={csrf}&identity=erika&pin=123456&action=confirm"
    status, _, text = await _post(browser, gw.url("/eid-sim/client?lang=en"), FORM, form.encode())
    assert status == 400 and "The TC Token could not be processed." in text
    assert _no_error_lines(caplog) == []
