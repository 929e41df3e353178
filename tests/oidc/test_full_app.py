"""The OIDC provider inside the whole gateway: real flow manager, real store, the embedded eID-Server
simulator reached over the TR-03130 client, AusweisApp played by the simulator's client, the browser
played by a cookie-keeping HTTP client, and the relying party played by authlib (and by the demo RP).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from eid_gateway.app import FLOWS_KEY, create_app
from eid_gateway.config import GatewayConfig, StoreConfig, load_config
from eid_gateway.demo.pages import OidcDemoPages
from eid_gateway.frontends.oidc import create_oidc_frontend, parse_oidc_settings
from eid_gateway.frontends.oidc.client_secret import hash_client_secret
from eid_gateway.frontends.oidc.demo_client import DemoClientSettings, create_oidc_demo_routes
from eid_gateway.frontends.oidc.settings import with_oidc_services
from eid_gateway.instance import write_example_config
from eid_gateway.simulator import run_simulated_client
from eid_gateway.store.sqlite import SqliteStore
from helpers.ports import free_port
from saml.keys import generate_key_pair, key_pair_to_pem

from .conftest import in_thread, query_of
from .test_end_to_end import RelyingParty

RP_CB = "http://localhost:8765/cb"
SECRET = "demo-oidc-secret-" + "z" * 20


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`eid-gateway init` output plus the OIDC signing key, written the way certs/devpki.py writes keys."""
    directory = tmp_path_factory.mktemp("oidc-instance")
    write_example_config(directory, "http://127.0.0.1:8080", 8080)
    key_pem, _ = key_pair_to_pem(generate_key_pair("ec-p256", "eid-gateway oidc-signing (DEVELOPMENT ONLY)"))
    (directory / "certs" / "oidc-signing.key").write_bytes(key_pem)
    return directory


@dataclass
class Gateway:
    origin: str
    config: GatewayConfig
    browser: TestClient[web.Request, web.Application]

    def path(self, url: str) -> str:
        assert url.startswith(self.origin) or url.startswith("/"), url
        return url[len(self.origin) :] if url.startswith(self.origin) else url

    async def browse_to_gateway_redirect(self, url: str, *, cancel: bool = False) -> str:
        """Browser + AusweisApp from the authorization URL to the redirect back to the service."""
        resp = await self.browser.get(self.path(url), allow_redirects=False)
        assert resp.status == 303, await resp.text()
        start = resp.headers["Location"]
        m = re.fullmatch(r"/signin/([A-Za-z0-9_-]{43})", start)
        assert m, start
        page = await self.browser.get(start)
        assert page.status == 200 and "Mit der AusweisApp anmelden" in await page.text()
        async with aiohttp.ClientSession() as ausweisapp:  # no cookies: AusweisApp is not the browser
            target = await run_simulated_client(ausweisapp, f"{self.origin}/eid/tctoken/{m.group(1)}", cancel=cancel)
        resp = await self.browser.get(self.path(target), allow_redirects=False)
        if cancel:  # the failure page, then "back to the service"
            html = await resp.text()
            form = re.search(r'action="([^"]+)"', html)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
            assert form and csrf, html
            resp = await self.browser.post(
                form.group(1).replace("&amp;", "&"), data={"csrf_token": csrf.group(1)}, allow_redirects=False
            )
        assert resp.status == 303, await resp.text()
        return resp.headers["Location"]


@pytest.fixture
async def gateway(instance: Path, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    """The demo service registered as a confidential client, as a public one, or as a confidential one
    behind mod_auth_openidc < 2.4.13 (``indirect`` param: "confidential", "public", "legacy")."""
    kind = getattr(request, "param", "confidential")
    public = kind == "public"
    registration = "public_client = true" if public else f'client_secret_hash = "{hash_client_secret(SECRET)}"'
    if kind == "legacy":
        registration += "\nerror_response_iss = false"
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    document = tomllib.loads(f"""
[oidc]
[oidc.signing_key]
kid = "oidc-1"
path = "certs/oidc-signing.key"

[[services]]
id = "demo"
[services.oidc]
client_id = "demo-oidc"
redirect_uris = ["{origin}/demo/oidc/callback", "{RP_CB}"]
{registration}
""")
    settings = parse_oidc_settings(document, instance)
    assert settings is not None
    base = load_config(instance / "gateway.toml")
    config = replace(
        base,
        public_origin=origin,
        store=StoreConfig("sqlite", tmp_path / "gw.sqlite3"),
        demo=replace(base.demo, enabled=False),
        services=with_oidc_services(base.services, settings),
        oidc=None,  # this test mounts its own OIDC frontend with the registrations above
    )
    store = SqliteStore(config.store.path)
    app = create_app(config, store=store)
    flows = app[FLOWS_KEY]
    oidc = create_oidc_frontend(config, flows, store, settings)
    flows.add_frontend(oidc)
    app.add_routes(oidc.routes())
    app.add_routes(
        create_oidc_demo_routes(
            DemoClientSettings(origin, "demo-oidc", f"{origin}/demo/oidc/callback", None if public else SECRET),
            store,
            OidcDemoPages("/demo"),
        )
    )
    browser = TestClient(TestServer(app, host="127.0.0.1", port=port))
    await browser.start_server()
    try:
        yield Gateway(origin, config, browser)
    finally:
        await browser.close()


async def test_authlib_relying_party_through_the_real_flow(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    subs = []
    for _ in range(2):
        rp = RelyingParty.for_client(gateway.origin, "demo-oidc", RP_CB, SECRET, scope="openid profile address")
        await in_thread(rp.discover)
        url = rp.authorization_url()
        location = await gateway.browse_to_gateway_redirect(url)
        assert location.startswith(RP_CB + "?")
        token = await in_thread(rp.callback, location)
        id_token = await in_thread(rp.validate_id_token, token)
        userinfo = await in_thread(rp.userinfo)
        assert id_token["acr"] == "http://eidas.europa.eu/LoA/high"
        assert userinfo["sub"] == id_token["sub"] and re.fullmatch(r"[a-z2-7]{52}", id_token["sub"])
        assert userinfo["given_name"] == "ERIKA" and userinfo["family_name"] == "MUSTERMANN"
        assert userinfo["address"]["locality"] == "KÖLN"
        assert "birth_family_name" not in userinfo and "nationalities" not in userinfo
        subs.append(id_token["sub"])
    assert subs[0] == subs[1]  # stable pseudonym per service and card


async def _cancelled(gateway: Gateway, state: str) -> dict[str, str]:
    """The query of the redirect back to the RP after the citizen cancels the card step."""
    url = (
        f"{gateway.origin}/oidc/authorize?response_type=code&client_id=demo-oidc&scope=openid"
        f"&redirect_uri={RP_CB}&state={state}"
    )
    location = await gateway.browse_to_gateway_redirect(url, cancel=True)
    assert location.startswith(RP_CB + "?")
    return query_of(location)


async def test_cancelled_card_step_returns_access_denied(gateway: Gateway) -> None:
    q = await _cancelled(gateway, "s1")
    assert (q["error"], q["state"], q["iss"]) == ("access_denied", "s1", gateway.origin)


@pytest.mark.parametrize("gateway", ["legacy"], indirect=True)
async def test_cancel_without_iss_for_mod_auth_openidc_before_2_4_13(gateway: Gateway) -> None:
    """``error_response_iss = false``: the cancel redirect has error and state but no ``iss``, which
    mod_auth_openidc 2.4.12 would take for an issuer-discovery response and start over."""
    q = await _cancelled(gateway, "s2")
    assert (q["error"], q["state"]) == ("access_denied", "s2") and "code" not in q
    assert "iss" not in q


@pytest.mark.parametrize("gateway", ["confidential", "public"], indirect=True)
async def test_demo_relying_party(gateway: Gateway) -> None:
    page = await gateway.browser.get("/demo/oidc/")
    assert page.status == 200 and "/demo/oidc/login" in await page.text()
    resp = await gateway.browser.get("/demo/oidc/login", allow_redirects=False)
    assert resp.status == 303
    authorize_url = resp.headers["Location"]
    assert urlsplit(authorize_url).path == "/oidc/authorize"
    back = await gateway.browse_to_gateway_redirect(authorize_url)
    assert back.startswith(f"{gateway.origin}/demo/oidc/callback?")
    done = await gateway.browser.get(gateway.path(back))
    html = await done.text()
    assert done.status == 200, html
    assert "ERIKA" in html and "MUSTERMANN" in html and "hoch (eIDAS)" in html
    # formatted for a person: the level in words, the address as one line, no URN and no Python dict
    assert "http://eidas.europa.eu/LoA/high" not in html and "{" not in html and "KÖLN" in html
    # the same authorization response again: the demo RP refuses it (state used up)
    again = await gateway.browser.get(gateway.path(back))
    assert again.status == 400
