"""End to end with the REAL AusweisApp 1.26.2 (Debian 12 ``ausweisapp2``), headless, over its SDK.

Browser -> demo service -> gateway start page -> TC Token -> AusweisApp -> PAOS/EAC with our embedded
eID-Server -> refresh -> demo service. Identities other than the simulator card's default come in
through ``SET_CARD`` simulator files written by :func:`eid_gateway.eidserver.emulator.simulator_files`.
Skipped only when the AusweisApp binary is not installed.
"""

from __future__ import annotations

import datetime
import re
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from eid_gateway import smoke_test
from eid_gateway.app import create_app
from eid_gateway.config import GatewayConfig, load_config
from eid_gateway.eidserver.emulator import simulator_files
from eid_gateway.eidserver.testpki import generate_test_pki
from eid_gateway.identity import LevelOfAssurance
from eid_gateway.instance import write_example_config
from eid_gateway.simulator.identities import default_identities
from eid_gateway.smoke_test import (
    AusweisApp,
    Page,
    SignIn,
    ausweisapp_binary,
    result_table,
    sign_in,
    start_ausweisapp,
)
from helpers.ports import free_port
from helpers.saml_post import authn_context_on, demo_status_line, status_on
from saml.messages import STATUS_AUTHN_FAILED, STATUS_REQUEST_DENIED, STATUS_RESPONDER

pytestmark = [
    pytest.mark.ausweisapp,
    pytest.mark.skipif(ausweisapp_binary() is None, reason="AusweisApp2 (Debian ausweisapp2) is not installed"),
]


@dataclass
class Deployment:
    """Gateways with the embedded PAOS eID-Server, all from one instance directory (same keys)."""

    directory: Path
    runners: list[web.AppRunner] = field(default_factory=list)
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)
    template: str | None = None
    first_origin: str | None = None

    async def start(self, *, service_id: str = "demo", description_origin: str | None = None) -> str:
        port, paos_port = free_port(), free_port()
        origin = f"http://127.0.0.1:{port}"
        path = self.directory / "gateway.toml"
        if self.template is None:
            write_example_config(self.directory, origin, port)
            self.template = path.read_text("utf-8").replace('kind = "simulator"', 'kind = "embedded-paos"', 1)
            self.first_origin = origin
            generate_test_pki(self.directory / "eid-test-pki", description_origin or origin)
        assert self.first_origin is not None
        text = self.template.replace(self.first_origin, origin).replace(
            f"port = {urlsplit(self.first_origin).port}", f"port = {port}"
        )
        text = text.replace('id = "demo"', f'id = "{service_id}"').replace(
            'service_id = "demo"', f'service_id = "{service_id}"'
        )
        text += f'\n[embedded_paos]\npki_dir = "eid-test-pki"\nlisten_port = {paos_port}\n'
        path.write_text(text, "utf-8")
        runner = web.AppRunner(create_app(load_config(path)), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.runners.append(runner)
        return origin

    def config(self) -> GatewayConfig:
        """The configuration of the gateway started last (every one shares the instance's keys)."""
        return load_config(self.directory / "gateway.toml")

    def http(self) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(session)
        return session

    async def close(self) -> None:
        for s in self.sessions:
            await s.close()
        for r in reversed(self.runners):
            await r.cleanup()


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    d = Deployment(tmp_path / "instance")
    yield d
    await d.close()


@pytest.fixture
async def app() -> AsyncIterator[AusweisApp]:
    async with start_ausweisapp() as running:
        yield running


def _ok_table(done: SignIn) -> dict[str, str]:
    assert done.outcome.ok, (done.outcome.result, done.outcome.messages)
    assert done.page is not None and done.page.status == 200, done.page
    table = result_table(done.page)
    assert table, done.page.text
    return table


# --- sign-in succeeds ---------------------------------------------------------------------------------------


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> list[Page]:
    """The pages whose form the smoke test's browser submitted (the SAML POST page among them)."""
    pages: list[Page] = []
    submit = smoke_test.Browser.submit

    async def recording(self: smoke_test.Browser, page: Page) -> Page:
        pages.append(page)
        return await submit(self, page)

    monkeypatch.setattr(smoke_test.Browser, "submit", recording)
    return pages


async def test_simulator_card_signs_in_through_paos(
    deployment: Deployment, app: AusweisApp, submitted: list[Page]
) -> None:
    origin = await deployment.start()
    done = await sign_in(app, origin, deployment.http)
    table = _ok_table(done)
    # the level of assurance on the wire (the assertion decrypted with the demo's key), and in words
    config = deployment.config()
    assert config.demo.key is not None
    [post_page] = [page for page in submitted if "SAMLResponse" in page.text]
    assert (
        authn_context_on(post_page, [config.keys.saml_signing.certificate], config.demo.key)
        == LevelOfAssurance.HIGH.value
        == "http://eidas.europa.eu/LoA/high"
    )
    assert table["Vertrauensniveau"] == "hoch (eIDAS)"
    # the values of AusweisApp 1.26.2's built-in simulator card, read over Secure Messaging
    assert table["Familienname"] == "MUSTERMANN" and table["Vornamen"] == "ERIKA"
    assert table["Geburtsdatum"] == "12.08.1964"
    assert table["Anschrift"] == "HEIDESTRAẞE 17, 51147 KÖLN, D"
    assert re.fullmatch(r"[a-z2-7]{52}", table["Pseudonym bei diesem Dienst"])
    access = done.outcome.message("ACCESS_RIGHTS")
    assert access is not None
    assert set(access["chat"]["required"]) == {"Address", "DateOfBirth", "FamilyName", "GivenNames", "Pseudonym"}
    assert access["aux"]["validityDate"]  # the server asked for document validity verification


@pytest.mark.parametrize(
    ("name", "family", "given", "address"),
    [
        ("andre", "MUSTERMANN", "ANDRÉ", "EHM-WELK-STRAßE 33, 03222 LÜBBENAU/SPREEWALD, D"),
        ("hans", "VON DREBENBUSCH-DALGOßEN", "HANS-GÜNTHER", None),
    ],
)
async def test_other_identities_through_set_card_files(
    deployment: Deployment, app: AusweisApp, name: str, family: str, given: str, address: str | None
) -> None:
    card = default_identities()[name]
    origin = await deployment.start()
    done = await sign_in(app, origin, deployment.http, simulator_files=simulator_files(card.data))
    table = _ok_table(done)
    assert table["Familienname"].upper() == (card.data.family_names or "").upper()
    assert table["Vornamen"].upper() == (card.data.given_names or "").upper()
    if address is not None:
        assert table["Anschrift"] == address
    assert "MUSTERMANN" not in table["Vornamen"]


async def test_restricted_identification_gives_services_different_pseudonyms(
    deployment: Deployment, app: AusweisApp
) -> None:
    pseudonyms: dict[str, list[str]] = {}
    for service in ("demo", "rathaus", "demo"):
        origin = await deployment.start(service_id=service)
        table = _ok_table(await sign_in(app, origin, deployment.http))
        pseudonyms.setdefault(service, []).append(table["Pseudonym bei diesem Dienst"])
    assert pseudonyms["demo"][0] == pseudonyms["demo"][1]  # stable: the card's RI is stable
    assert pseudonyms["demo"][0] != pseudonyms["rathaus"][0]  # unlinkable between services
    # an identity on other files but the same card keys: the RI comes from the chip's key, not a file
    andre = simulator_files(default_identities()["andre"].data)
    origin = await deployment.start(service_id="demo")
    other = _ok_table(await sign_in(app, origin, deployment.http, simulator_files=andre))
    assert other["Pseudonym bei diesem Dienst"] == pseudonyms["demo"][0]


# --- failures end on the right pages ------------------------------------------------------------------------


async def _return_to_service(deployment: Deployment, done: SignIn) -> tuple[Page, Page]:
    """(the gateway's SAML POST page, the demo service's page) after "return to the service"."""
    page = done.page
    assert page is not None and page.status == 200
    posted = await done.browser.submit(page)
    assert posted.status == 200
    return posted, await done.browser.submit(posted)


async def test_cancel_at_access_rights(deployment: Deployment, app: AusweisApp) -> None:
    origin = await deployment.start()
    done = await sign_in(app, origin, deployment.http, cancel_at_access_rights=True)
    assert not done.outcome.ok
    assert str(done.outcome.result.get("minor", "")).endswith("#cancellationByUser")
    # the SDK reports the bare refresh URL; the gateway learns the cancel from getResult (the client
    # reported it to our eID-Server in its DIDAuthenticateResponse)
    assert done.outcome.url is not None and "/eid/refresh/" in done.outcome.url
    assert done.page is not None and "Anmeldung abgebrochen" in done.page.text
    posted, result = await _return_to_service(deployment, done)
    status = status_on(posted, [deployment.config().keys.saml_signing.certificate])
    assert (status.code, status.sub_code) == (STATUS_RESPONDER, STATUS_REQUEST_DENIED)
    assert "Die Anmeldung wurde abgebrochen" in result.text
    assert demo_status_line(result) == "Status: Fehler beim Anmeldedienst: abgebrochen"
    assert "MUSTERMANN" not in result.text


@dataclass
class TokenRelay:
    """Serves the gateway's TC Token to AusweisApp after a rewrite (the gateway hands it out once)."""

    rewrite: Callable[[str], str]
    runner: web.AppRunner | None = None
    seen: list[str] = field(default_factory=list)

    async def start(self) -> str:
        async def relay(request: web.Request) -> web.Response:
            async with aiohttp.ClientSession() as http, http.get(request.query["u"]) as resp:
                token = await resp.text()
            self.seen.append(token)
            return web.Response(text=self.rewrite(token), content_type="text/xml", charset="utf-8")

        app = web.Application()
        app.router.add_get("/tctoken", relay)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}/tctoken"


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda t: re.sub(r"<ServerAddress>https://", "<ServerAddress>http://", t),
        lambda t: t.replace("urn:liberty:paos:2006-08", "urn:liberty:paos:2003-08"),
    ],
    ids=["http-server-address", "wrong-binding"],
)
async def test_wrong_tc_token_is_refused_by_the_client(
    deployment: Deployment, app: AusweisApp, rewrite: Callable[[str], str]
) -> None:
    origin = await deployment.start()
    relay = TokenRelay(rewrite)
    relay_url = await relay.start()
    try:
        done = await sign_in(
            app, origin, deployment.http, tc_token_url_filter=lambda u: f"{relay_url}?u={quote(u, safe='')}"
        )
    finally:
        assert relay.runner is not None
        await relay.runner.cleanup()
    assert relay.seen and "<ServerAddress>https://" in relay.seen[0]
    assert not done.outcome.ok
    assert done.outcome.message("ACCESS_RIGHTS") is None  # refused before any EAC
    assert str(done.outcome.result["minor"]).endswith("#trustedChannelEstablishmentFailed")
    assert done.outcome.url is not None and "/eid/refresh/" in done.outcome.url
    assert done.page is not None and done.page.status == 200
    assert "<title>Verbindungsfehler" in done.page.text  # FailureKind.COMMUNICATION: TLS-2 could not be set up
    posted, result = await _return_to_service(deployment, done)
    status = status_on(posted, [deployment.config().keys.saml_signing.certificate])
    assert (status.code, status.sub_code) == (STATUS_RESPONDER, STATUS_AUTHN_FAILED)
    assert demo_status_line(result) == "Status: Fehler beim Anmeldedienst: Authentifizierung fehlgeschlagen"


# --- outside developer mode: https, trusted TLS, the attached model proper -----------------------------------


def _tls_pair(directory: Path) -> x509.Certificate:
    """A test CA (trusted by AusweisApp through SSL_CERT_FILE/SSL_CERT_DIR) and its RSA-3072 localhost cert."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eid-gateway test CA (DEVELOPMENT ONLY)")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "certs").mkdir(parents=True)
    (directory / "certs" / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    subprocess.run(["openssl", "rehash", str(directory / "certs")], check=False, capture_output=True)
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert


@pytest.mark.parametrize("matching", [True, False], ids=["description-matches", "description-other-origin"])
async def test_outside_developer_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, matching: bool) -> None:
    """https gateway serving PAOS itself (TLS session resumed for PAOS), AusweisApp NOT in developer mode.

    With a certificate description for another origin AusweisApp refuses after EAC1 and the citizen
    lands on the gateway's communication-error page; the demo service gets a SAML error.
    """
    import aiohttp.connector

    tls = _tls_pair(tmp_path)
    ca_file = str(tmp_path / "certs" / "ca.pem")
    trusted = ssl.create_default_context(cafile=ca_file)
    monkeypatch.setattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", trusted)  # gateway -> itself, demo -> gateway
    port = free_port()
    origin = f"https://localhost:{port}"
    instance = tmp_path / "instance"
    path = write_example_config(instance, origin, port)
    generate_test_pki(
        instance / "eid-test-pki",
        origin if matching else "https://www.other-city.example",
        extra_comm_certificates=(tls,),
    )
    path.write_text(
        path.read_text("utf-8").replace('kind = "simulator"', 'kind = "embedded-paos"', 1)
        + '\n[embedded_paos]\npki_dir = "eid-test-pki"\n',
        "utf-8",
    )
    config = load_config(path)
    assert config.embedded_paos is not None and config.embedded_paos.public_url == origin + "/paos"
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256")
    server_ctx.load_cert_chain(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ctx).start()
    sessions: list[aiohttp.ClientSession] = []

    def http() -> aiohttp.ClientSession:
        s = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), connector=aiohttp.TCPConnector(ssl=trusted)
        )
        sessions.append(s)
        return s

    env = {"SSL_CERT_FILE": ca_file, "SSL_CERT_DIR": str(tmp_path / "certs")}
    try:
        async with start_ausweisapp(extra_env=env) as app:
            done = await sign_in(app, origin, http, developer_mode=False)
            log = app.log_path.read_text("utf-8", "replace")
            returned = None if done.outcome.ok or done.page is None else await _return_to_service_via(done)
    finally:
        for s in sessions:
            await s.close()
        await runner.cleanup()
    assert "developermode" not in log.split("Process type: RUN_AUTH", 1)[1]  # nothing was relaxed
    assert "Session resumption failed" not in log
    if matching:
        table = _ok_table(done)
        assert table["Vornamen"] == "ERIKA"
        return
    assert not done.outcome.ok
    assert "same origin policy" in str(done.outcome.result.get("message", ""))
    assert "StateCertificateDescriptionCheck" in log
    assert done.page is not None and "<title>Verbindungsfehler" in done.page.text
    assert returned is not None
    posted, result = returned
    status = status_on(posted, [config.keys.saml_signing.certificate])
    assert (status.code, status.sub_code) == (STATUS_RESPONDER, STATUS_AUTHN_FAILED)
    assert demo_status_line(result) == "Status: Fehler beim Anmeldedienst: Authentifizierung fehlgeschlagen"
    assert "ERIKA" not in result.text


async def _return_to_service_via(done: SignIn) -> tuple[Page, Page]:
    assert done.page is not None
    posted = await done.browser.submit(done.page)
    return posted, await done.browser.submit(posted)


async def test_smoke_test_command_with_the_embedded_gateway() -> None:
    from io import StringIO

    from eid_gateway.smoke_test import smoke_test

    out = StringIO()
    code = await smoke_test(None, out)
    text = out.getvalue()
    assert code == 0, text
    assert "AusweisApp AUTH result: http://www.bsi.bund.de/ecard/api/1.1/resultmajor#ok" in text
    assert "demo service received:" in text and "Vornamen: ERIKA" in text
