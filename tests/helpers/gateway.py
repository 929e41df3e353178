"""An in-process gateway on a real loopback port (config written by the real `init` code), a scripted
browser (cookie jar, redirects followed by hand, query octets never re-encoded), AusweisApp played by the
simulator client, and the demo service's sign-in steps. The fixtures ``servers``, ``start_gateway`` and
``browser`` (tests/conftest.py) are built on them."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import lxml.html
from aiohttp import web
from yarl import URL

from eid_gateway.app import create_app
from eid_gateway.config import GatewayConfig, StoreConfig, load_config
from eid_gateway.core.port import EidServer
from eid_gateway.flow import DESKTOP_CLIENT
from eid_gateway.instance import write_example_config
from eid_gateway.simulator import run_simulated_client
from eid_gateway.store.base import Store

from .ports import bound_socket


def on_its_own(config: GatewayConfig, origin: str, store_path: Path, **changes: Any) -> GatewayConfig:
    """``config`` served at ``origin`` on a SQLite store of its own at ``store_path``, without the demo
    service, with any further ``changes`` (as for :func:`dataclasses.replace`)."""
    return replace(
        config,
        public_origin=origin,
        store=StoreConfig("sqlite", store_path),
        demo=replace(config.demo, enabled=False),
        **changes,
    )


@dataclass
class Gateway:
    origin: str
    config: GatewayConfig
    directory: Path

    def url(self, path: str) -> str:
        return self.origin + path


@dataclass
class Servers:
    """Everything started by one test, torn down in reverse order."""

    runners: list[web.AppRunner] = field(default_factory=list)

    async def serve(self, app: web.Application, sock: socket.socket | None = None) -> str:
        sock = sock or bound_socket()
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self.runners.append(runner)
        await web.SockSite(runner, sock).start()
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    async def close(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()


BackendFactory = Callable[[GatewayConfig], EidServer]
StoreFactory = Callable[[GatewayConfig], Store]
StartGateway = Callable[..., Awaitable[Gateway]]


def gateway_starter(servers: Servers, directory: Path) -> StartGateway:
    """Start a gateway: `init` into ``directory`` with this port's origin (``edit_config`` rewrites the
    written config text first), load, build the app, serve (the ``start_gateway`` fixture)."""

    async def start(
        *,
        backend: BackendFactory | None = None,
        store: StoreFactory | None = None,
        app_factory: Callable[[GatewayConfig], web.Application] | None = None,
        edit_config: Callable[[str], str] | None = None,
    ) -> Gateway:
        sock = bound_socket()
        port = sock.getsockname()[1]
        origin = f"http://127.0.0.1:{port}"
        path = write_example_config(directory, origin, port)
        if edit_config is not None:
            edited = edit_config(path.read_text(encoding="utf-8"))
            path.write_text(edited, encoding="utf-8")
        config = load_config(path)
        if app_factory is not None:
            app = app_factory(config)
        else:
            app = create_app(
                config,
                backend=backend(config) if backend is not None else None,
                store=store(config) if store is not None else None,
            )
        await servers.serve(app, sock)
        return Gateway(origin, config, directory)

    return start


# --- the browser ------------------------------------------------------------------------------------------


@dataclass
class Page:
    status: int
    url: str
    text: str
    headers: Any

    def doc(self) -> Any:
        return lxml.html.fromstring(self.text)

    def links(self) -> list[str]:
        return [str(a.get("href")) for a in self.doc().iter("a") if a.get("href")]

    def forms(self) -> list[Any]:
        return list(self.doc().forms)


#: What a current browser sends on a top-level navigation (Fetch Metadata and Accept): the gateway
#: tells a person's browser from AusweisApp's own requests by them (eid_gateway.web.navigation).
NAVIGATION_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Site": "none",
    "Upgrade-Insecure-Requests": "1",
}


class Browser:
    """A scripted browser: one cookie jar, the headers of a browser's navigation, redirects followed by
    hand with the Location kept verbatim (a real browser sends the query octets it was given; aiohttp
    would normalise percent-escapes)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.session.headers.update(NAVIGATION_HEADERS)
        self.history: list[str] = []

    async def _follow(self, resp: aiohttp.ClientResponse, url: str) -> Page:
        for _ in range(10):
            if resp.status not in (301, 302, 303, 307, 308):
                text = await resp.text()
                return Page(resp.status, url, text, resp.headers)
            location = resp.headers["Location"]
            url = urljoin(url, location)
            self.history.append(url)
            resp.release()
            resp = await self.session.get(URL(url, encoded=True), allow_redirects=False)
        raise AssertionError("too many redirects")

    async def get(self, url: str) -> Page:
        self.history.append(url)
        resp = await self.session.get(URL(url, encoded=True), allow_redirects=False)
        return await self._follow(resp, url)

    async def get_no_follow(self, url: str) -> aiohttp.ClientResponse:
        return await self.session.get(URL(url, encoded=True), allow_redirects=False)

    async def submit(self, page: Page, index: int = 0) -> Page:
        """Submit a form of ``page`` as its button would (hidden fields only, method POST)."""
        form = page.forms()[index]
        action = urljoin(page.url, str(form.action or page.url))
        fields = {str(i.name): str(i.value) for i in form.inputs if i.get("type") == "hidden" and i.name}
        assert str(form.method).upper() == "POST"
        resp = await self.session.post(URL(action, encoded=True), data=fields, allow_redirects=False)
        return await self._follow(resp, action)


# --- AusweisApp ---------------------------------------------------------------------------------------------


def tc_token_url_of(start_page: Page) -> str:
    """The tcTokenURL from the start page's "start AusweisApp" link (the desktop activation URL)."""
    for href in start_page.links():
        if href.startswith(DESKTOP_CLIENT + "?"):
            [url] = parse_qs(urlsplit(href).query)["tcTokenURL"]
            return url
    raise AssertionError("start page has no AusweisApp activation link")


@dataclass
class CardStep:
    next_url: str
    tc_token: bytes


async def ausweisapp(servers: Servers, tc_token_url: str, **options: Any) -> CardStep:
    """Play AusweisApp with its own HTTP client (no browser cookies).

    The TC Token is fetched here first, exactly once (the gateway hands it out once), so the test can
    check the bytes; the simulator client then receives those same bytes from a loopback relay and
    performs the card step at the token's ServerAddress.
    """
    async with aiohttp.ClientSession() as http:
        async with http.get(tc_token_url, allow_redirects=False) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/xml; charset=utf-8"
            token = await resp.read()
    return CardStep(await card_step(servers, token, **options), token)


async def card_step(servers: Servers, token: bytes, **options: Any) -> str:
    """The simulated card step for a TC Token already fetched; returns where AusweisApp sends the browser."""

    async def relay(request: web.Request) -> web.Response:
        return web.Response(body=token, headers={"Content-Type": "text/xml; charset=utf-8"})

    app = web.Application()
    app.router.add_get("/tctoken", relay)
    relay_url = await servers.serve(app) + "/tctoken"
    async with aiohttp.ClientSession() as http:
        return await run_simulated_client(http, relay_url, **options)


# --- the demo service's sign-in steps ---------------------------------------------------------------------


async def open_start_page(browser: Browser, gw: Gateway) -> Page:
    """Demo page -> "Mit Online-Ausweis anmelden" -> signed AuthnRequest -> the gateway's start page."""
    browser.history.clear()
    demo = await browser.get(gw.url("/demo/"))
    assert demo.status == 200
    assert "Bürgerportal Düren (Demo)" in demo.text and "Meldebescheinigung beantragen" in demo.text
    [signin] = [a for a in demo.doc().iter("a") if a.get("id") == "signin"]
    assert signin.text == "Mit Online-Ausweis anmelden"
    start = await browser.get(gw.url(str(signin.get("href"))))
    assert start.status == 200, start.text
    assert urlsplit(start.url).path.startswith("/signin/")
    # the redirect went through the gateway's SSO endpoint with a signed query
    sso = [u for u in browser.history if urlsplit(u).path == "/saml/sso"]
    assert len(sso) == 1 and "&Signature=" in sso[0] and "SAMLRequest=" in sso[0]
    return start


async def open_oidc_start_page(browser: Browser, gw: Gateway) -> Page:
    """Demo page -> "Mit Online-Ausweis anmelden (OpenID Connect)" -> authorize -> the start page."""
    demo = await browser.get(gw.url("/demo/"))
    [signin] = [a for a in demo.doc().iter("a") if a.get("id") == "signin-oidc"]
    start = await browser.get(gw.url(str(signin.get("href"))))
    assert start.status == 200 and urlsplit(start.url).path.startswith("/signin/"), start.text
    assert any(urlsplit(u).path == "/oidc/authorize" for u in browser.history)
    return start


async def return_to_service(browser: Browser, page: Page) -> Page:
    """From the gateway's failure page, press "return to the service"; then submit the SAML POST form."""
    assert page.status == 200
    assert len(page.forms()) == 1
    posted = await browser.submit(page)
    return await deliver(browser, posted)


async def deliver(browser: Browser, post_page: Page) -> Page:
    """Submit the gateway's HTTP-POST binding form to the service's ACS."""
    [form] = post_page.forms()
    assert str(form.action).endswith("/demo/acs")
    assert "SAMLResponse" in {i.name for i in form.inputs}
    return await browser.submit(post_page)


async def sign_in(browser: Browser, servers: Servers, gw: Gateway, **options: Any) -> Page:
    """A whole SAML sign-in at the demo service: its start page, the card step (``options`` as for
    :func:`ausweisapp`), the gateway's POST to the service's ACS; returns the service's page."""
    start = await open_start_page(browser, gw)
    step = await ausweisapp(servers, tc_token_url_of(start), **options)
    return await deliver(browser, await browser.get(step.next_url))
