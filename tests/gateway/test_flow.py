"""The sign-in flow end to end over real HTTP: browser (test client with cookies), AusweisApp stand-in
(a separate cookie-less HTTP session running the simulator's client), the embedded simulator reached by
the TR-03130 client, and a small recording Frontend in place of SAML/OIDC."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from eid_gateway.app import FLOWS_KEY, create_app
from eid_gateway.backends.tr03130 import Tr03130Client
from eid_gateway.config import GatewayConfig
from eid_gateway.core.port import EidRequest, FailureKind
from eid_gateway.eid.tctoken import ErrorTcToken, TcToken, parse_tc_token
from eid_gateway.flow import State
from eid_gateway.frontends.base import FlowContext, FlowStart
from eid_gateway.identity import Attribute, Identity
from eid_gateway.pseudonym import derive_pseudonym
from eid_gateway.simulator import run_simulated_client
from eid_gateway.store.sqlite import SqliteStore
from helpers.clocks import FakeClock
from helpers.gateway import on_its_own
from helpers.ports import free_port


@dataclass
class RecordingFrontend:
    """A Frontend that answers with JSON and remembers what the flow handed it."""

    name: str = "test"
    finished: list[tuple[FlowContext, Identity, str]] = field(default_factory=list)
    failed: list[tuple[FlowContext, FailureKind]] = field(default_factory=list)

    def routes(self) -> Sequence[web.RouteDef]:
        return []

    async def finish(
        self, request: web.Request, flow: FlowContext, identity: Identity, pseudonym: str
    ) -> web.StreamResponse:
        self.finished.append((flow, identity, pseudonym))
        return web.json_response({"result": "ok"})

    async def fail(self, request: web.Request, flow: FlowContext, failure: FailureKind) -> web.StreamResponse:
        self.failed.append((flow, failure))
        return web.json_response({"result": failure.value})


@dataclass
class Gateway:
    client: TestClient[web.Request, web.Application]
    origin: str
    config: GatewayConfig
    frontend: RecordingFrontend
    store: SqliteStore
    clock: FakeClock

    async def begin(self, lang: str | None = None) -> str:
        """Start a flow as the browser would after a frontend accepted a request; returns the ref."""
        url = "/test/begin" + (f"?lang={lang}" if lang else "")
        resp = await self.client.get(url, allow_redirects=False)
        assert resp.status == 303
        m = re.fullmatch(r"/signin/([A-Za-z0-9_-]{43})", resp.headers["Location"])
        assert m, resp.headers["Location"]
        return m.group(1)

    async def card_step(self, ref: str, identity: str = "erika", pin: str = "123456", cancel: bool = False) -> str:
        """AusweisApp's part: a separate, cookie-less HTTP client. Returns the gateway-relative next URL."""
        async with aiohttp.ClientSession() as app_http:
            target = await run_simulated_client(
                app_http, f"{self.origin}/eid/tctoken/{ref}", identity=identity, pin=pin, cancel=cancel
            )
        assert target.startswith(self.origin)
        return target[len(self.origin) :]


REQUEST = EidRequest(
    required=frozenset({Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES, Attribute.PSEUDONYM}),
    optional=frozenset({Attribute.ADDRESS, Attribute.NATIONALITY}),
)


async def make_gateway(
    base: GatewayConfig,
    tmp_path: Path,
    *,
    backend_url: str | None = None,
    backend_timeout: float = 2.0,
    result_wait: float = 3.0,
) -> Gateway:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    config = on_its_own(base, origin, tmp_path / "gw.sqlite3", flow=replace(base.flow, result_wait_seconds=result_wait))
    clock = FakeClock()
    store = SqliteStore(config.store.path, clock=clock)
    backend = None
    if backend_url is not None:
        assert config.simulator is not None
        backend = Tr03130Client(backend_url, config.keys.eid_client, config.simulator.key.certificate, backend_timeout)
    app = create_app(config, store=store, backend=backend)
    frontend = RecordingFrontend()
    flows = app[FLOWS_KEY]
    flows.add_frontend(frontend)
    service = config.services.by_id("demo")
    assert service is not None

    async def begin(request: web.Request) -> web.StreamResponse:
        return await flows.begin(request, FlowStart(service, "test", {"request_id": "_abc"}, REQUEST))

    async def boom(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("ERIKA MUSTERMANN lives in HEIDESTRASSE 17")

    app.router.add_get("/test/begin", begin)
    app.router.add_get("/test/boom", boom)
    server = TestServer(app, host="127.0.0.1", port=port)
    client = TestClient(server)
    await client.start_server()
    return Gateway(client, origin, config, frontend, store, clock)


@pytest.fixture
async def gw(base_config: GatewayConfig, tmp_path: Path) -> AsyncIterator[Gateway]:
    g = await make_gateway(base_config, tmp_path)
    yield g
    await g.client.close()


# --- the happy path ----------------------------------------------------------------------------------------------


async def test_sign_in_with_the_simulator(gw: Gateway) -> None:
    ref = await gw.begin()
    page = await gw.client.get(f"/signin/{ref}")
    assert page.status == 200
    html = await page.text()
    assert "Meldebescheinigung beantragen" in html and 'lang="de"' in html
    assert "Mit der AusweisApp anmelden" in html
    tc_url = f"{gw.origin}/eid/tctoken/{ref}"
    links = re.findall(r'href="([^"]+)"', html)
    desktop = [u for u in links if u.startswith("http://127.0.0.1:24727/eID-Client?tcTokenURL=")]
    mobile = [u for u in links if u.startswith("eid://127.0.0.1:24727/eID-Client?tcTokenURL=")]
    assert desktop and unquote(desktop[0].split("tcTokenURL=")[1]) == tc_url
    assert mobile and unquote(mobile[0].split("tcTokenURL=")[1]) == tc_url
    assert any(u.startswith("/eid-sim/client?tcTokenURL=") for u in links)  # simulator stand-in, marked
    assert "simulierten eID-Server" in html and "TESTBETRIEB" not in html
    # NATIONALITY was asked for but the demo service may not receive it: not shown, not released
    assert "Staatsangehörigkeit" not in html and "Anschrift" in html

    next_url = await gw.card_step(ref)
    assert next_url == f"/eid/refresh/{ref}?ResultMajor=ok"
    done = await gw.client.get(next_url)
    assert done.status == 200 and await done.json() == {"result": "ok"}
    [(ctx, identity, pseudonym)] = gw.frontend.finished
    assert ctx.ref == ref and ctx.service.id == "demo" and ctx.frontend_state == {"request_id": "_abc"}
    assert identity.given_names == "ERIKA" and identity.family_names == "MUSTERMANN"
    assert identity.address is not None  # optional, registered, asked for
    assert identity.nationality is None and identity.date_of_birth is None  # not asked / not allowed
    # The raw RestrictedID never leaves: the identity carries the per-service pseudonym instead.
    assert identity.restricted_id == pseudonym and re.fullmatch(r"[a-z2-7]{52}", pseudonym)

    # Replaying the refresh does not produce a second answer.
    again = await gw.client.get(next_url)
    assert again.status == 410 and "bereits" in await again.text()
    assert len(gw.frontend.finished) == 1


async def test_pseudonym_is_stable_per_service_and_card(gw: Gateway) -> None:
    pseudonyms = []
    for _ in range(2):
        ref = await gw.begin()
        await gw.client.get(await gw.card_step(ref))
        pseudonyms.append(gw.frontend.finished[-1][2])
    assert pseudonyms[0] == pseudonyms[1]
    secret = gw.config.keys.pseudonym_secret
    assert derive_pseudonym(secret, "other", "AB" * 32) != derive_pseudonym(secret, "demo", "AB" * 32)


# --- TR-03124 rules ---------------------------------------------------------------------------------------------


async def test_tc_token_is_served_once(gw: Gateway) -> None:
    ref = await gw.begin()
    async with aiohttp.ClientSession() as app_http:
        async with app_http.get(f"{gw.origin}/eid/tctoken/{ref}") as r1:
            assert r1.headers["Content-Type"] == "text/xml; charset=utf-8"
            first = parse_tc_token(await r1.read())
        async with app_http.get(f"{gw.origin}/eid/tctoken/{ref}") as r2:
            second = parse_tc_token(await r2.read())
    assert isinstance(first, TcToken)
    assert first.refresh_address == f"{gw.origin}/eid/refresh/{ref}"
    assert first.communication_error_address == f"{gw.origin}/eid/error/{ref}"
    assert first.server_address.startswith(f"{gw.origin}/eid-sim/")
    assert isinstance(second, ErrorTcToken)
    assert second.communication_error_address == f"{gw.origin}/eid/error/{ref}"


async def test_unknown_ref_gets_error_token(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as app_http:
        async with app_http.get(f"{gw.origin}/eid/tctoken/{'A' * 43}") as r:
            assert isinstance(parse_tc_token(await r.read()), ErrorTcToken)
        async with app_http.get(f"{gw.origin}/eid/tctoken/short") as r:
            assert isinstance(parse_tc_token(await r.read()), ErrorTcToken)


async def test_refresh_probes_do_not_consume(gw: Gateway) -> None:
    ref = await gw.begin()
    next_url = await gw.card_step(ref)
    async with aiohttp.ClientSession() as app_http:  # AusweisApp: HEAD, and a GET without the cookie
        async with app_http.head(f"{gw.origin}{next_url}") as head:
            assert head.status == 200
        async with app_http.get(f"{gw.origin}{next_url}") as get:
            assert get.status == 403
            assert "anderen Browser" in await get.text()
    flow = await gw.store.get_flow(ref)
    assert flow is not None and flow.state == State.CARD and flow.data["counter"] == 0
    assert gw.frontend.finished == []
    done = await gw.client.get(next_url)  # the citizen's browser still completes
    assert done.status == 200 and len(gw.frontend.finished) == 1
    flow = await gw.store.get_flow(ref)
    assert flow is not None and flow.state == State.DONE and flow.data["counter"] >= 1


async def test_expired_flow_shows_a_page(gw: Gateway) -> None:
    ref = await gw.begin()
    gw.clock.offset = gw.config.flow.ttl_seconds + 1
    for path in (f"/signin/{ref}", f"/eid/refresh/{ref}?ResultMajor=ok"):
        resp = await gw.client.get(path)
        assert resp.status == 404
        text = await resp.text()
        assert "abgelaufen" in text and "Traceback" not in text
    async with aiohttp.ClientSession() as app_http:
        async with app_http.get(f"{gw.origin}/eid/tctoken/{ref}") as r:
            assert isinstance(parse_tc_token(await r.read()), ErrorTcToken)


async def test_start_page_in_another_browser(gw: Gateway) -> None:
    ref = await gw.begin()
    async with aiohttp.ClientSession() as other:
        async with other.get(f"{gw.origin}/signin/{ref}?lang=en") as r:
            assert r.status == 403 and "another browser" in await r.text()


# --- failures -----------------------------------------------------------------------------------------------------


async def test_backend_down_gives_error_token_and_failed_flow(base_config: GatewayConfig, tmp_path: Path) -> None:
    g = await make_gateway(base_config, tmp_path, backend_url=f"http://127.0.0.1:{free_port()}/eID")
    try:
        ref = await g.begin()
        next_url = await g.card_step(ref)  # the client gets the error token and goes to the error address
        assert next_url == f"/eid/error/{ref}?ResultMajor=error&ResultMinor=communicationError"
        flow = await g.store.get_flow(ref)
        assert flow is not None and flow.state == State.FAILED
        assert flow.data["failure"] == FailureKind.SERVER_ERROR.value
        page = await g.client.get(next_url)
        text = await page.text()
        assert page.status == 200 and "Technischer Fehler" in text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert csrf
        back = await g.client.post(f"/eid/return/{ref}", data={"csrf_token": csrf.group(1)})
        assert await back.json() == {"result": "server_error"}
        assert g.frontend.failed[0][1] is FailureKind.SERVER_ERROR
    finally:
        await g.client.close()


@pytest.mark.parametrize("behaviour", ["slow", "garbage", "fault"])
async def test_misbehaving_eid_server_gives_error_token(
    base_config: GatewayConfig, tmp_path: Path, behaviour: str
) -> None:
    """A real HTTP server that never answers, answers with non-XML, or with an unsigned SOAP fault."""
    answer = asyncio.Event()

    async def eid(request: web.Request) -> web.Response:
        await request.read()
        if behaviour == "slow":
            await answer.wait()  # never, while the test runs: the gateway's own timeout must end the call
        if behaviour == "fault":
            body = (
                b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
                b"<faultcode>s:Server</faultcode><faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>"
            )
            return web.Response(status=500, body=body, content_type="text/xml")
        return web.Response(body=b"<html>not soap", content_type="text/xml")

    bad = web.Application()
    bad.router.add_post("/eID", eid)
    bad_server = TestServer(bad, host="127.0.0.1")
    await bad_server.start_server()
    g = await make_gateway(base_config, tmp_path, backend_url=str(bad_server.make_url("/eID")), backend_timeout=0.5)
    try:
        ref = await g.begin()
        started = time.monotonic()
        async with aiohttp.ClientSession() as app_http:
            async with app_http.get(f"{g.origin}/eid/tctoken/{ref}") as r:
                token = parse_tc_token(await r.read())
        assert isinstance(token, ErrorTcToken)
        # bounded by the 0.5 s backend timeout, not by the server; 20 times that for a slow, loaded machine
        assert time.monotonic() - started < 10
        flow = await g.store.get_flow(ref)
        assert flow is not None and flow.state == State.FAILED
    finally:
        answer.set()
        await g.client.close()
        await bad_server.close()


@pytest.mark.parametrize(
    ("identity", "pin", "kind", "de", "en"),
    [
        ("cancelled", "123456", FailureKind.CANCELLED, "Anmeldung abgebrochen", "Sign-in cancelled"),
        ("erika", "999999", FailureKind.WRONG_PIN, "PIN falsch", "Wrong PIN"),
        ("blocked", "123456", FailureKind.CARD_BLOCKED, "gesperrt", "blocked"),
        ("expired", "123456", FailureKind.DOCUMENT_INVALID, "Ausweis ungültig", "ID card not valid"),
    ],
)
async def test_error_results_show_the_right_page(
    gw: Gateway, identity: str, pin: str, kind: FailureKind, de: str, en: str
) -> None:
    ref_de = await gw.begin()
    resp = await gw.client.get(await gw.card_step(ref_de, identity=identity, pin=pin))
    text = await resp.text()
    assert resp.status == 200 and de in text and 'lang="de"' in text
    ref_en = await gw.begin(lang="en")  # the flow remembers the language it began in
    resp = await gw.client.get(await gw.card_step(ref_en, identity=identity, pin=pin))
    text_en = await resp.text()
    assert en in text_en and 'lang="en"' in text_en
    flow = await gw.store.get_flow(ref_en)
    assert flow is not None and flow.state == State.FAILED and flow.data["failure"] == kind.value
    assert gw.frontend.finished == [] and gw.frontend.failed == []

    # Return to the service: POST with the CSRF token, not without it.
    forged = await gw.client.post(f"/eid/return/{ref_en}", data={"csrf_token": "x"})
    assert forged.status == 403
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', text_en)
    assert csrf
    back = await gw.client.post(f"/eid/return/{ref_en}", data={"csrf_token": csrf.group(1)})
    assert await back.json() == {"result": kind.value}
    twice = await gw.client.post(f"/eid/return/{ref_en}", data={"csrf_token": csrf.group(1)})
    assert twice.status == 410 and len(gw.frontend.failed) == 1


async def test_cancel_on_start_page(gw: Gateway) -> None:
    ref = await gw.begin()
    html = await (await gw.client.get(f"/signin/{ref}")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf and f'action="/signin/{ref}/cancel' in html
    resp = await gw.client.post(f"/signin/{ref}/cancel", data={"csrf_token": csrf.group(1)})
    assert await resp.json() == {"result": "cancelled"}
    # The card step can no longer start.
    async with aiohttp.ClientSession() as app_http:
        async with app_http.get(f"{gw.origin}/eid/tctoken/{ref}") as r:
            assert isinstance(parse_tc_token(await r.read()), ErrorTcToken)


async def _fetch_token_only(g: Gateway, ref: str) -> None:
    """AusweisApp fetched the TC Token (useID done) but the card step never finished."""
    async with aiohttp.ClientSession() as app_http:
        async with app_http.get(f"{g.origin}/eid/tctoken/{ref}") as r:
            assert isinstance(parse_tc_token(await r.read()), TcToken)


async def test_result_not_ready_ends_in_timeout(base_config: GatewayConfig, tmp_path: Path) -> None:
    g = await make_gateway(base_config, tmp_path, result_wait=2.0)
    try:
        ref = await g.begin()
        await _fetch_token_only(g, ref)
        started = time.monotonic()
        resp = await g.client.get(f"/eid/refresh/{ref}?ResultMajor=ok")
        # the gateway waited its result_wait (less the last poll interval it would not fit in) ...
        assert time.monotonic() - started > 1.7
        assert "Zeit abgelaufen" in await resp.text()
        flow = await g.store.get_flow(ref)
        assert flow is not None and flow.state == State.FAILED and flow.data["failure"] == "timeout"
        # ... asking again with a growing RequestCounter, at most once per 0.25 s poll interval (on a slow
        # machine fewer times: the count, not the clock, is what bounds the wait)
        assert 2 <= flow.data["counter"] <= 9
    finally:
        await g.client.close()


async def test_client_reported_error_needs_no_waiting(gw: Gateway) -> None:
    ref = await gw.begin()
    await _fetch_token_only(gw, ref)
    started = time.monotonic()
    resp = await gw.client.get(f"/eid/refresh/{ref}?ResultMajor=error&ResultMinor=cancellationByUser")
    assert time.monotonic() - started < 2.5  # the fixture's result_wait is 3 s: it was not waited
    assert "Anmeldung abgebrochen" in await resp.text()
    flow = await gw.store.get_flow(ref)
    assert flow is not None and flow.data["failure"] == "cancelled" and flow.data["counter"] == 1


async def test_communication_error_address_probe_changes_nothing(gw: Gateway) -> None:
    ref = await gw.begin()
    head = await gw.client.head(f"/eid/error/{ref}?ResultMajor=error&ResultMinor=communicationError")
    assert head.status == 200
    flow = await gw.store.get_flow(ref)
    assert flow is not None and flow.state == State.PENDING


async def test_communication_error_address(gw: Gateway) -> None:
    ref = await gw.begin()
    resp = await gw.client.get(f"/eid/error/{ref}?ResultMajor=error&ResultMinor=cancellationByUser&lang=en")
    text = await resp.text()
    assert resp.status == 200 and "Sign-in cancelled" in text
    flow = await gw.store.get_flow(ref)
    assert flow is not None and flow.state == State.FAILED and flow.data["failure"] == "cancelled"


# --- web defences ---------------------------------------------------------------------------------------------------


async def test_security_headers(gw: Gateway) -> None:
    ref = await gw.begin()
    for path in (f"/signin/{ref}", "/healthz", "/static/style.css", "/nowhere"):
        resp = await gw.client.get(path)
        h = resp.headers
        csp = h["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "form-action 'self' http://127.0.0.1:8080/demo/acs" in csp
        assert "unsafe-inline" not in csp
        assert h["X-Content-Type-Options"] == "nosniff" and h["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in h  # development, plain http
    resp = await gw.client.get(f"/signin/{ref}")
    # one external, same-origin script (the AusweisApp check), nothing inline
    assert re.findall(r"<script[^>]*>[^<]*</script>", await resp.text()) == [
        '<script src="/static/ausweisapp-check.js" defer></script>'
    ]


async def test_flow_cookie_attributes(gw: Gateway) -> None:
    resp = await gw.client.get("/test/begin", allow_redirects=False)
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("eidgw-browser=")  # plain-http development origin: no __Host-/Secure
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie


async def test_no_stack_trace_on_internal_error(gw: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    resp = await gw.client.get("/test/boom?lang=en")
    text = await resp.text()
    assert resp.status == 500
    assert "An internal error occurred" in text
    assert "Traceback" not in text and "RuntimeError" not in text and "ERIKA" not in text
    error_id = re.search(r"Error reference: ([0-9a-f]{12})", text)
    assert error_id
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert error_id.group(1) in logged and "RuntimeError" in logged
    assert "ERIKA" not in logged and "HEIDESTRASSE" not in logged


async def test_body_limit(gw: Gateway) -> None:
    ref = await gw.begin()
    resp = await gw.client.post(f"/signin/{ref}/cancel", data=b"x" * (600 * 1024))
    assert resp.status == 413


async def test_language_negotiation(gw: Gateway) -> None:
    ref = await gw.begin()
    en = await gw.client.get(f"/signin/{ref}", headers={"Accept-Language": "en-GB,en;q=0.9,de;q=0.5"})
    # the flow began in German (no header): the remembered language wins over the header...
    assert 'lang="de"' in await en.text()
    en = await gw.client.get(f"/signin/{ref}?lang=en")  # ...and ?lang wins over both
    text = await en.text()
    assert 'lang="en"' in text and "Sign in with the AusweisApp" in text
    assert f'href="/signin/{ref}?lang=de"' in text


async def test_health_and_readiness(gw: Gateway) -> None:
    assert (await gw.client.get("/healthz")).status == 200
    ready = await gw.client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["store"] == "ok" and body["eid_server"] == "ok", body


async def test_readiness_reports_backend_down(base_config: GatewayConfig, tmp_path: Path) -> None:
    g = await make_gateway(base_config, tmp_path, backend_url=f"http://127.0.0.1:{free_port()}/eID")
    try:
        ready = await g.client.get("/readyz")
        body = await ready.json()
        assert ready.status == 503 and body["store"] == "ok" and body["eid_server"].startswith("error")
    finally:
        await g.client.close()
