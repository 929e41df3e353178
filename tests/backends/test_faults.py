"""A misbehaving eID-Server, end to end: each fault becomes the right citizen page and the right
service error, the flow's state stays consistent (a second visit shows the same page, the refresh is
never consumed twice), getResult is repeated only where that is safe, and no personal data leaks into
pages or logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from eid_gateway.eid import results
from helpers.gateway import Browser, Servers, ausweisapp, open_start_page, tc_token_url_of
from helpers.ports import bound_socket
from saml.messages import STATUS_AUTHN_FAILED, STATUS_REQUEST_DENIED

from .faulty import GET_RESULT, USE_ID, Fault, FaultyServer
from .harness import Setup, return_with_error, start_gateway_with

SERVER_ERROR = ("Technischer Fehler", None)
PERSONAL = ("MUSTERMANN", "ERIKA", "MALLORY", "HEIDESTRASSE", "1964-08-12", "19640812", "12.08.1964")


async def start(servers: Servers, tmp_path: Path, faulty: FaultyServer) -> Setup:
    sock = bound_socket()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    setup = await start_gateway_with(
        servers,
        tmp_path / "gw",
        timeout=1.0,
        eid_lines=['kind = "tr03130"', f'url = "{origin}/eid-sim/eID"', 'server_cert = "certs/simulator.crt"'],
    )
    faulty.attach(origin, setup.gateway.directory)
    await servers.serve(faulty.app(), sock)
    return setup


async def run_flow(
    browser: Browser, servers: Servers, setup: Setup, title: str, sub_code: str | None, caplog: pytest.LogCaptureFixture
) -> str:
    start_page = await open_start_page(browser, setup.gateway)
    step = await ausweisapp(servers, tc_token_url_of(start_page), identity="erika")
    failure = await browser.get(step.next_url)
    assert failure.status == 200 and title in failure.text
    again = await browser.get(step.next_url)  # consistent: the flow is failed, the same page again
    assert again.status == 200 and title in again.text
    result = await return_with_error(browser, setup.gateway, failure, sub_code)
    used = await browser.get(step.next_url)  # returned: the flow is over
    assert used.status == 410
    pages = failure.text + again.text + result.text
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for value in PERSONAL:
        assert value not in pages and value not in logs
    assert "Traceback" not in pages
    return step.next_url


@pytest.mark.parametrize(
    "fault", [Fault.SLOW, Fault.RESET, Fault.MALFORMED, Fault.FORGED, Fault.ERROR_503], ids=lambda f: f.value
)
async def test_get_result_fault(
    fault: Fault, browser: Browser, servers: Servers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    faulty = FaultyServer(fault, on=GET_RESULT, slow_seconds=3.0)
    setup = await start(servers, tmp_path, faulty)
    try:
        await run_flow(browser, servers, setup, *SERVER_ERROR, caplog)
    finally:
        faulty.released.set()
    # getResult went out exactly once: after a timeout, a reset or a bad answer the server may have
    # closed the session already, so it is not repeated (only never-delivered requests are)
    assert faulty.calls.count("getResult") == 1 and faulty.calls.count("useID") == 1


@pytest.mark.parametrize(
    ("minor", "title", "sub_code"),
    [
        (results.INTERNAL_ERROR, *SERVER_ERROR),
        (results.SCHEMA_VIOLATION, *SERVER_ERROR),
        (results.INVALID_SESSION, *SERVER_ERROR),
        (results.INVALID_COUNTER, *SERVER_ERROR),
        (results.DENIED_DOCUMENT, "Ausweis ungültig", STATUS_AUTHN_FAILED),
        (results.INVALID_DOCUMENT, "Ausweis ungültig", STATUS_AUTHN_FAILED),
        (results.CANCELLATION_BY_USER, "Anmeldung abgebrochen", STATUS_REQUEST_DENIED),
        (results.COMMUNICATION_ERROR, "PIN falsch", STATUS_AUTHN_FAILED),
        (results.NO_PERMISSION, "gesperrt", STATUS_AUTHN_FAILED),
        (results.UNKNOWN_ERROR, "Zeit abgelaufen", STATUS_AUTHN_FAILED),
        (results.DP_TIMEOUT, "Zeit abgelaufen", STATUS_AUTHN_FAILED),
        (results.DOCUMENT_VALIDITY_FAILED, "Ausweis ungültig", STATUS_AUTHN_FAILED),
        (results.TRUSTED_CHANNEL_FAILED, "Verbindungsfehler", STATUS_AUTHN_FAILED),
        (results.NO_RESULT_YET, "Zeit abgelaufen", STATUS_AUTHN_FAILED),
        ("urn:example:unknown-minor", *SERVER_ERROR),
    ],
    ids=lambda v: v.rsplit("#", 1)[-1].rsplit("/", 1)[-1] if isinstance(v, str) and ":" in v else None,
)
async def test_get_result_error_minor(
    minor: str,
    title: str,
    sub_code: str | None,
    browser: Browser,
    servers: Servers,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    faulty = FaultyServer(Fault.RESULT_MINOR, on=GET_RESULT, minor=minor)
    setup = await start(servers, tmp_path, faulty)
    await run_flow(browser, servers, setup, title, sub_code, caplog)
    if minor == results.NO_RESULT_YET:
        assert faulty.calls.count("getResult") >= 2  # polled while the server says "not yet"
    else:
        assert faulty.calls.count("getResult") == 1


@pytest.mark.parametrize(
    "minor",
    [
        results.INVALID_PSK,
        results.TOO_MANY_OPEN_SESSIONS,
        results.MISSING_ARGUMENT,
        results.MISSING_TERMINAL_RIGHTS,
        results.INTERNAL_ERROR,
    ],
    ids=lambda m: m.rsplit("#", 1)[-1],
)
async def test_use_id_error_minor(
    minor: str, browser: Browser, servers: Servers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    faulty = FaultyServer(Fault.RESULT_MINOR, on=USE_ID, minor=minor)
    setup = await start(servers, tmp_path, faulty)
    start_page = await open_start_page(browser, setup.gateway)
    step = await ausweisapp(servers, tc_token_url_of(start_page), identity="erika")
    assert "/eid/error/" in step.next_url  # no session: the TC Token names only the error address
    failure = await browser.get(step.next_url)
    assert "Technischer Fehler" in failure.text
    await return_with_error(browser, setup.gateway, failure, None)  # Responder alone: not the card
    assert faulty.calls == ["useID"]  # never repeated
