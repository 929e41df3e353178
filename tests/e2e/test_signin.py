"""Issue 3, end to end: a citizen signs in to the demo city service through the gateway.

Everything runs for real on loopback: the gateway built from a config written by `eid-gateway init`,
the embedded eID-Server simulator reached over TR-03130 SOAP, the demo service verifying the SAML
Response with the public `saml` API and the gateway's metadata fetched over HTTP. The test plays the
browser and (through the simulator client) AusweisApp.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from eid_gateway.backends.tr03130 import Tr03130Client
from eid_gateway.config import GatewayConfig
from eid_gateway.eid.tctoken import ErrorTcToken, TcToken, parse_tc_token, validate_tc_token
from eid_gateway.identity import LevelOfAssurance
from eid_gateway.simulator import Simulator, SimulatorConfig
from eid_gateway.store.sqlite import SqliteStore
from helpers.gateway import (
    Browser,
    Gateway,
    Page,
    Servers,
    StartGateway,
    ausweisapp,
    deliver,
    open_start_page,
    sign_in,
    tc_token_url_of,
)
from helpers.ports import closed_port
from helpers.saml_post import authn_context_on, demo_status_line, status_on
from saml import (
    AuthnRequest,
    SignatureError,
    build_authn_request,
    decode_redirect,
    generate_key_pair,
    redirect_url,
    verify_redirect,
)
from saml.algorithms import ECDSA_SHA256, RSA_SHA256
from saml.messages import STATUS_AUTHN_FAILED, STATUS_REQUEST_DENIED, STATUS_RESPONDER

# --- the happy path ---------------------------------------------------------------------------------------


async def test_erika_signs_in_to_the_demo_service(
    start_gateway: StartGateway, browser: Browser, servers: Servers
) -> None:
    gw = await start_gateway()
    start = await open_start_page(browser, gw)
    assert "Meldebescheinigung beantragen" in start.text  # the service name on the start page

    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    root = validate_tc_token(step.tc_token)  # schema-valid TC Token, as AusweisApp received it
    token = parse_tc_token(step.tc_token)
    assert isinstance(token, TcToken)
    assert root.tag == "TCTokenType"
    assert token.refresh_address == tc_token_url_of(start).replace("/eid/tctoken/", "/eid/refresh/")
    assert token.server_address.startswith(gw.origin + "/eid-sim/")
    assert step.next_url.startswith(token.refresh_address) and "ResultMajor=ok" in step.next_url

    post_page = await browser.get(step.next_url)
    result = await deliver(browser, post_page)
    assert result.status == 200, result.text
    table = {str(row.findtext("th")): str(row.findtext("td")) for row in result.doc().iter("tr")}
    assert table["Familienname"] == "MUSTERMANN"
    assert table["Vornamen"] == "ERIKA"
    assert table["Geburtsdatum"] == "12.08.1964"
    assert table["Anschrift"] == "HEIDESTRASSE 17, 51147 KÖLN, D"
    assert table["Vertrauensniveau"] == "hoch (eIDAS)"
    assert table["Verschlüsselt übertragen"] == "ja"
    assert table["Angemeldet über"] == "SAML 2.0"
    pseudonym = table["Pseudonym bei diesem Dienst"]
    assert len(pseudonym) == 52
    # the level of assurance on the wire: the assertion's AuthnContextClassRef, decrypted with the demo's key
    assert gw.config.demo.key is not None
    trusted = [gw.config.keys.saml_signing.certificate]
    assert authn_context_on(post_page, trusted, gw.config.demo.key) == LevelOfAssurance.HIGH.value
    assert LevelOfAssurance.HIGH.value == "http://eidas.europa.eu/LoA/high"
    # the raw SAML Response on the wire carries no readable personal data (encrypted assertion)
    [form] = post_page.forms()
    raw = base64.b64decode(next(i.value for i in form.inputs if i.name == "SAMLResponse"))
    assert b"MUSTERMANN" not in raw and b"EncryptedAssertion" in raw


async def test_pseudonym_is_stable_for_the_same_card(
    start_gateway: StartGateway, browser: Browser, servers: Servers
) -> None:
    gw = await start_gateway()
    seen = []
    for _ in range(2):
        result = await sign_in(browser, servers, gw, identity="erika")
        rows = {str(r.findtext("th")): str(r.findtext("td")) for r in result.doc().iter("tr")}
        seen.append(rows["Pseudonym bei diesem Dienst"])
    assert seen[0] == seen[1]


# --- card-step failures reach the service as SAML status -----------------------------------------------------


@pytest.mark.parametrize(
    ("options", "title", "sub_code", "message", "words"),
    [
        (
            {"cancel": True},
            "Anmeldung abgebrochen",
            STATUS_REQUEST_DENIED,
            "Die Anmeldung wurde abgebrochen.",
            "abgebrochen",
        ),
        (
            {"pin": "000000"},
            "PIN falsch",
            STATUS_AUTHN_FAILED,
            "Die Authentifizierung mit dem Ausweis ist fehlgeschlagen",
            "Authentifizierung fehlgeschlagen",
        ),
        (
            {"identity": "blocked"},
            "gesperrt",
            STATUS_AUTHN_FAILED,
            "Die Authentifizierung mit dem Ausweis ist fehlgeschlagen",
            "Authentifizierung fehlgeschlagen",
        ),
    ],
    ids=["cancel", "wrong-pin", "card-blocked"],
)
async def test_card_step_failure_reaches_the_service(
    start_gateway: StartGateway,
    browser: Browser,
    servers: Servers,
    options: dict[str, object],
    title: str,
    sub_code: str,
    message: str,
    words: str,
) -> None:
    gw = await start_gateway()
    start = await open_start_page(browser, gw)
    step = await ausweisapp(servers, tc_token_url_of(start), **options)
    assert "ResultMajor=error" in step.next_url
    failure = await browser.get(step.next_url)
    assert title in failure.text
    post_page = await browser.submit(failure)  # "return to the service"
    # on the wire: the signed error Response's status codes
    status = status_on(post_page, [gw.config.keys.saml_signing.certificate])
    assert (status.code, status.sub_code) == (STATUS_RESPONDER, sub_code)
    # at the service: the same status in words, no URN
    result = await deliver(browser, post_page)
    assert result.status == 200
    assert message in result.text
    assert demo_status_line(result) == f"Status: Fehler beim Anmeldedienst: {words}"
    assert "urn:oasis" not in result.text
    assert "MUSTERMANN" not in result.text


async def test_cancel_on_the_start_page(start_gateway: StartGateway, browser: Browser, servers: Servers) -> None:
    gw = await start_gateway()
    start = await open_start_page(browser, gw)
    posted = await browser.submit(start)  # the start page's only form: "cancel and return"
    status = status_on(posted, [gw.config.keys.saml_signing.certificate])
    assert (status.code, status.sub_code) == (STATUS_RESPONDER, STATUS_REQUEST_DENIED)
    result = await deliver(browser, posted)
    assert "Die Anmeldung wurde abgebrochen" in result.text
    assert demo_status_line(result) == "Status: Fehler beim Anmeldedienst: abgebrochen"


# --- one-time values ----------------------------------------------------------------------------------------


async def test_replayed_tc_token_and_refresh(start_gateway: StartGateway, browser: Browser, servers: Servers) -> None:
    gw = await start_gateway()
    start = await open_start_page(browser, gw)
    tc_url = tc_token_url_of(start)
    step = await ausweisapp(servers, tc_url, identity="erika")
    post_page = await browser.get(step.next_url)
    result = await deliver(browser, post_page)
    assert "MUSTERMANN" in result.text

    # a second fetch of the tcTokenURL gets only the error token (no new eID session)
    again = await ausweisapp(servers, tc_url, identity="erika")
    assert isinstance(parse_tc_token(again.tc_token), ErrorTcToken)
    # the refresh URL works once
    used = await browser.get(step.next_url)
    assert used.status == 410 and "bereits" in used.text
    # the service refuses the same SAML Response a second time
    replay = await browser.submit(post_page)
    assert replay.status == 400
    assert "abgelehnt" in replay.text and "in_response_to_mismatch" in replay.text


async def test_expired_flow(start_gateway: StartGateway, browser: Browser, servers: Servers) -> None:
    now = [1_000_000.0]

    def store(config: GatewayConfig) -> SqliteStore:
        return SqliteStore(config.store.path, clock=lambda: now[0])

    gw = await start_gateway(store=store)
    start = await open_start_page(browser, gw)
    now[0] += gw.config.flow.ttl_seconds + 1
    expired = await browser.get(start.url)
    assert expired.status == 404 and "abgelaufen" in expired.text
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    assert isinstance(parse_tc_token(step.tc_token), ErrorTcToken)


# --- the eID-Server misbehaves ---------------------------------------------------------------------------------


def backend_at(url: str, *, timeout: float = 5.0, trust_other: bool = False):  # type: ignore[no-untyped-def]
    def factory(config: GatewayConfig) -> Tr03130Client:
        assert config.simulator is not None
        return Tr03130Client(url, config.keys.eid_client, config.simulator.key.certificate, timeout)

    return factory


async def _server_error_reaches_the_service(gw: Gateway, browser: Browser, servers: Servers) -> None:
    start = await open_start_page(browser, gw)
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    failure = await browser.get(step.next_url)
    assert failure.status == 200
    assert "Technischer Fehler" in failure.text
    post_page = await browser.submit(failure)  # "return to the service"
    status = status_on(post_page, [gw.config.keys.saml_signing.certificate])
    assert (status.code, status.sub_code) == (STATUS_RESPONDER, None)  # no second-level code: not the card
    result = await deliver(browser, post_page)
    assert "Der Anmeldedienst hat einen Fehler gemeldet" in result.text
    assert demo_status_line(result) == "Status: Fehler beim Anmeldedienst"


async def test_eid_server_down(start_gateway: StartGateway, browser: Browser, servers: Servers) -> None:
    gw = await start_gateway(backend=backend_at(f"http://127.0.0.1:{closed_port()}/eID"))
    await _server_error_reaches_the_service(gw, browser, servers)


async def _fake_eid_server(servers: Servers, handler: web.Handler) -> str:  # type: ignore[name-defined]
    app = web.Application()
    app.router.add_post("/eID", handler)
    return await servers.serve(app) + "/eID"


async def test_eid_server_too_slow(start_gateway: StartGateway, browser: Browser, servers: Servers) -> None:
    released = asyncio.Event()
    calls = []

    async def slow(request: web.Request) -> web.Response:
        calls.append(request.headers.get("SOAPAction"))
        await asyncio.wait_for(released.wait(), 10)  # answers only after the test is over
        return web.Response(text="late")

    url = await _fake_eid_server(servers, slow)
    gw = await start_gateway(backend=backend_at(url, timeout=0.5))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        await _server_error_reaches_the_service(gw, browser, servers)
    finally:
        released.set()
    assert loop.time() - t0 < 4.0
    assert len(calls) == 1  # useID was sent once and never retried


async def test_eid_server_answers_garbage(start_gateway: StartGateway, browser: Browser, servers: Servers) -> None:
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(body=b"<soap:Envelope><unclosed>", content_type="text/xml")

    url = await _fake_eid_server(servers, garbage)
    gw = await start_gateway(backend=backend_at(url))
    await _server_error_reaches_the_service(gw, browser, servers)


async def test_eid_server_with_forged_signature(
    start_gateway: StartGateway, browser: Browser, servers: Servers
) -> None:
    """A server that speaks perfect TR-03130 but signs with a key the gateway does not trust."""
    forger_key = generate_key_pair("ec-p256")
    holder: dict[str, Simulator] = {}

    async def soap(request: web.Request) -> web.StreamResponse:
        return await holder["sim"].soap(request)

    url = await _fake_eid_server(servers, soap)
    gw = await start_gateway(backend=backend_at(url))
    holder["sim"] = Simulator(
        SimulatorConfig(
            public_origin=url.rsplit("/", 1)[0],
            key=forger_key,
            gateway_cert=gw.config.keys.eid_client.certificate,
        )
    )
    await _server_error_reaches_the_service(gw, browser, servers)


# --- the demo's keys: one signs its AuthnRequests, the other decrypts its assertions ------------------------


def _sso_query(browser: Browser) -> str:
    [sso] = [u for u in browser.history if urlsplit(u).path == "/saml/sso"]
    return urlsplit(sso).query


async def _sign_in_as_erika(browser: Browser, servers: Servers, start: Page) -> Page:
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    result = await deliver(browser, await browser.get(step.next_url))
    assert result.status == 200, result.text
    table = {str(row.findtext("th")): str(row.findtext("td")) for row in result.doc().iter("tr")}
    assert table["Familienname"] == "MUSTERMANN" and table["Verschlüsselt übertragen"] == "ja"
    return result


async def test_demo_signs_with_an_ecdsa_key_and_decrypts_with_an_rsa_key(
    start_gateway: StartGateway, browser: Browser, servers: Servers
) -> None:
    """The init config gives the demo one key per purpose; the gateway verifies the ECDSA-SHA256
    Redirect signature with the registered signing_cert and encrypts to the other (RSA) certificate."""
    gw = await start_gateway()
    signing, decryption = gw.config.demo.signing_key, gw.config.demo.key
    assert signing is not None and decryption is not None
    assert isinstance(signing.private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(signing.private_key.curve, ec.SECP256R1)
    assert isinstance(decryption.private_key, rsa.RSAPrivateKey) and decryption.private_key.key_size == 3072
    registered = gw.config.services.by_id("demo")
    assert registered is not None and registered.saml is not None
    assert registered.saml.signing_certs == (signing.certificate,)
    assert registered.saml.encryption_cert == decryption.certificate

    start = await open_start_page(browser, gw)
    message = decode_redirect(_sso_query(browser))
    assert message.sig_alg == ECDSA_SHA256
    assert verify_redirect(message, trusted=[signing.certificate], require_signature=True).signed
    with pytest.raises(SignatureError):
        verify_redirect(message, trusted=[decryption.certificate], require_signature=True)
    await _sign_in_as_erika(browser, servers, start)


async def test_gateway_refuses_a_request_signed_with_the_demos_decryption_key(
    start_gateway: StartGateway, browser: Browser
) -> None:
    gw = await start_gateway()
    assert gw.config.demo.key is not None
    sso = gw.url("/saml/sso")
    request = AuthnRequest(issuer=gw.config.demo.entity_id, destination=sso, acs_url=gw.url("/demo/acs"))
    page = await browser.get(redirect_url(sso, build_authn_request(request), relay_state="de", key=gw.config.demo.key))
    assert page.status == 400 and "nicht vertrauenswürdig" in page.text


async def test_a_config_without_demo_signing_key_signs_with_the_demo_key(
    start_gateway: StartGateway, browser: Browser, servers: Servers, tmp_path: Path
) -> None:
    """Instance directories written before the demo had a signing key (one RSA pair for both purposes,
    no demo-service-signing files) keep working: the demo signs with ``key`` (RSA-SHA256)."""

    def single_key(text: str) -> str:
        demo_lines = 'signing_key = "certs/demo-service-signing.key"\nsigning_cert = "certs/demo-service-signing.crt"\n'
        registered = 'signing_cert = "certs/demo-service-signing.crt"\n'
        assert text.count(demo_lines) == 1
        text = text.replace(demo_lines, "")
        assert text.count(registered) == 1
        for suffix in (".key", ".crt"):
            (tmp_path / "instance" / "certs" / f"demo-service-signing{suffix}").unlink()
        return text.replace(registered, 'signing_cert = "certs/demo-service.crt"\n')

    gw = await start_gateway(edit_config=single_key)
    assert gw.config.demo.signing_key is None and gw.config.demo.key is not None
    assert gw.config.demo.request_signing_key is gw.config.demo.key
    start = await open_start_page(browser, gw)
    message = decode_redirect(_sso_query(browser))
    assert message.sig_alg == RSA_SHA256
    assert verify_redirect(message, trusted=[gw.config.demo.key.certificate], require_signature=True).signed
    await _sign_in_as_erika(browser, servers, start)
