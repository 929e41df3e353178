"""A running OIDC provider (real aiohttp server, real SQLite store, real keys) for the OIDC tests.

Until the flow manager is wired in, :class:`ImmediateFlow` stands in for the card step: it calls the
frontend's ``finish`` (or ``fail``) at once with a fixed test identity, minimised the way the flow
does, and a real per-service pseudonym.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import tomllib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey

from eid_gateway.core.port import EidRequest, FailureKind
from eid_gateway.frontends.base import FlowContext, FlowStart
from eid_gateway.frontends.oidc import OidcFrontend, create_oidc_frontend, parse_oidc_settings
from eid_gateway.frontends.oidc.client_secret import hash_client_secret
from eid_gateway.identity import Attribute, Identity
from eid_gateway.pseudonym import derive_pseudonym
from eid_gateway.services import Service, ServiceRegistry
from eid_gateway.simulator import identities
from eid_gateway.store.sqlite import SqliteStore
from helpers.clocks import FakeClock
from helpers.eid_samples import identity_of
from helpers.ports import free_port

PORTAL_SECRET = "portal-secret-" + "x" * 20
PORTAL_CB = "http://localhost:8765/cb"
PORTAL_CB_QUERY = "https://portal.example/cb?tenant=k%C3%B6ln"
YOUTH_CB = "http://127.0.0.1:8766/app/cb"
TAX_CB = "https://tax.example/oidc/cb"
LIBRARY_SECRET = "library-secret-" + "y" * 20
LIBRARY_CB = "http://localhost:8767/library/cb"
LEGACY_CB = "http://localhost:8768/redirect_uri"
PSEUDONYM_SECRET = b"s" * 32
CONFIG_TEMPLATE = Path(__file__).parent / "data" / "provider.toml"

#: The simulator's Erika as the gateway maps her card, without a community ID and with a later expiry.
ERIKA = identity_of(
    identities.ERIKA,
    restricted_id="0123456789abcdef" * 4,
    date_of_expiry="2031-10-31",
    community_id=None,
    age_verification=True,
    authenticated_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
)


@dataclass
class ImmediateFlow:
    """A FlowStarter that ends the card step at once (see module docstring)."""

    identity: Identity = ERIKA
    failure: FailureKind | None = None
    frontend: OidcFrontend | None = None
    begun: list[tuple[str, Mapping[str, str], EidRequest]] = field(default_factory=list)

    async def begin(self, request: web.Request, start: FlowStart) -> web.StreamResponse:
        service, eid_request = start.service, start.eid_request
        assert self.frontend is not None
        self.begun.append((service.id, dict(start.frontend_state), eid_request))
        ctx = FlowContext(secrets.token_urlsafe(16), service, start.frontend_state, "de")
        if self.failure is not None:
            return await self.frontend.fail(request, ctx, self.failure)
        asked = eid_request.required | eid_request.optional
        identity = self.identity.minimised(asked & (service.allowed_attributes | {Attribute.PSEUDONYM}))
        assert self.identity.restricted_id is not None
        pseudonym = derive_pseudonym(PSEUDONYM_SECRET, service.id, self.identity.restricted_id)
        return await self.frontend.finish(request, ctx, identity, pseudonym)


@dataclass(frozen=True)
class GatewayView:
    public_origin: str
    services: ServiceRegistry


SERVICES = ServiceRegistry(
    (
        Service(
            id="portal",
            name_de="Bürgerportal",
            name_en="Citizen portal",
            allowed_attributes=frozenset(
                {
                    Attribute.GIVEN_NAMES,
                    Attribute.FAMILY_NAMES,
                    Attribute.DATE_OF_BIRTH,
                    Attribute.ADDRESS,
                    Attribute.PSEUDONYM,
                }
            ),
        ),
        Service(
            id="youth",
            name_de="Jugendportal",
            name_en="Youth portal",
            allowed_attributes=frozenset({Attribute.AGE_VERIFICATION, Attribute.PSEUDONYM}),
            minimum_age=16,
        ),
        Service(
            id="tax",
            name_de="Steueramt",
            name_en="Tax office",
            allowed_attributes=frozenset({Attribute.FAMILY_NAMES, Attribute.GIVEN_NAMES, Attribute.PSEUDONYM}),
        ),
        Service(  # client_secret_post (openid-client's default) and RS256 ID tokens
            id="library",
            name_de="Stadtbibliothek",
            name_en="City library",
            allowed_attributes=frozenset({Attribute.FAMILY_NAMES, Attribute.GIVEN_NAMES, Attribute.PSEUDONYM}),
        ),
        Service(  # behind mod_auth_openidc < 2.4.13: no iss in error responses
            id="legacy",
            name_de="Altanwendung",
            name_en="Legacy application",
            allowed_attributes=frozenset({Attribute.FAMILY_NAMES, Attribute.PSEUDONYM}),
        ),
    )
)


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Provider keys (EC current + next, RSA-3072) and the tax client's EC key, made once."""
    d = tmp_path_factory.mktemp("oidc-keys")
    pem = serialization.Encoding.PEM
    fmt = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    for name in ("current", "next", "client"):
        (d / f"{name}.pem").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(pem, fmt, none))
    (d / "rsa.pem").write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=3072).private_bytes(pem, fmt, none)
    )
    return d


@pytest.fixture(scope="session")
def tax_client_key(key_dir: Path) -> ECKey:
    return ECKey.import_key((key_dir / "client.pem").read_bytes(), {"kid": "tax-1"})


@pytest.fixture(scope="session")
def portal_secret_hash() -> str:
    return hash_client_secret(PORTAL_SECRET)


@pytest.fixture(scope="session")
def library_secret_hash() -> str:
    return hash_client_secret(LIBRARY_SECRET)


def config_document(
    key_dir: Path, tax_client_key: ECKey, portal_secret_hash: str, library_secret_hash: str
) -> dict[str, Any]:
    """The TOML a gateway operator would write (``data/provider.toml``, parsed as tomllib hands it over)."""
    jwk = tax_client_key.as_dict(private=False)
    text = CONFIG_TEMPLATE.read_text(encoding="utf-8").format(
        PORTAL_CB=PORTAL_CB,
        PORTAL_CB_QUERY=PORTAL_CB_QUERY,
        YOUTH_CB=YOUTH_CB,
        TAX_CB=TAX_CB,
        LIBRARY_CB=LIBRARY_CB,
        LEGACY_CB=LEGACY_CB,
        portal_secret_hash=portal_secret_hash,
        library_secret_hash=library_secret_hash,
        jwk_x=jwk["x"],
        jwk_y=jwk["y"],
    )
    return tomllib.loads(text)


@dataclass
class Provider:
    """The running provider plus handles the tests use."""

    issuer: str
    frontend: OidcFrontend
    flow: ImmediateFlow
    client: TestClient[web.Request, web.Application]
    clock: FakeClock  # one clock for the store's TTLs and the provider's timestamps, moved by the tests
    store: SqliteStore

    def url(self, path: str) -> str:
        return self.issuer + path


@pytest.fixture
async def provider(
    tmp_path: Path, key_dir: Path, tax_client_key: ECKey, portal_secret_hash: str, library_secret_hash: str
) -> AsyncIterator[Provider]:
    clock = FakeClock()
    store = SqliteStore(tmp_path / "store.sqlite3", clock=clock)
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = parse_oidc_settings(
        config_document(key_dir, tax_client_key, portal_secret_hash, library_secret_hash), key_dir
    )
    assert settings is not None
    flow = ImmediateFlow()
    frontend = create_oidc_frontend(GatewayView(issuer, SERVICES), flow, store, settings, clock=clock)
    flow.frontend = frontend
    app = web.Application()
    app.add_routes(frontend.routes())
    client = TestClient(TestServer(app, host="127.0.0.1", port=port))
    await client.start_server()
    try:
        yield Provider(issuer, frontend, flow, client, clock, store)
    finally:
        await client.close()
        await store.close()


# --- helpers the tests share ---------------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(location).query))


async def authorize(provider: Provider, **params: str) -> tuple[int, str, str]:
    """GET the authorization endpoint without following redirects: (status, Location, body)."""
    resp = await provider.client.get("/oidc/authorize", params=params, allow_redirects=False)
    return resp.status, resp.headers.get("Location", ""), await resp.text()


async def code_for(provider: Provider, **params: str) -> str:
    base = {
        "response_type": "code",
        "client_id": "portal-rp",
        "redirect_uri": PORTAL_CB,
        "scope": "openid profile",
        "state": "st-1",
        "nonce": "n-1",
    }
    base.update(params)
    status, location, _ = await authorize(provider, **base)
    assert status == 303, location
    q = query_of(location)
    assert "code" in q, q
    return q["code"]


async def token_request(
    provider: Provider,
    data: Mapping[str, str],
    auth: tuple[str, str] | None = ("portal-rp", PORTAL_SECRET),
) -> tuple[int, dict[str, Any]]:
    headers = {}
    if auth is not None:
        raw = f"{auth[0]}:{auth[1]}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    resp = await provider.client.post("/oidc/token", data=dict(data), headers=headers)
    return resp.status, await resp.json()


def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking (requests / authlib) call off the event loop that serves the provider."""
    return asyncio.to_thread(fn, *args, **kwargs)
