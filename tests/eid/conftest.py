"""Keys, and a loopback harness: the simulator and a minimal gateway stand-in on one real HTTP server.

The stand-in gateway serves ``GET /tctoken/{ref}``: it calls useID through the real
:class:`Tr03130Client` and answers a TC Token whose RefreshAddress is ``/refresh?ref=...``. That is
all of the gateway the TR-03130 path needs to be exercised end to end.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from eid_gateway.backends.tr03130 import Tr03130Client
from eid_gateway.core.port import EidRequest, EidSession
from eid_gateway.eid.tctoken import CONTENT_TYPE, TcToken, build_tc_token
from eid_gateway.simulator import Simulator, SimulatorConfig
from saml.keys import KeyPair, generate_key_pair


@pytest.fixture(scope="session")
def gateway_key() -> KeyPair:
    return generate_key_pair("ec-p256", "eid-gateway test")


@pytest.fixture(scope="session")
def server_key() -> KeyPair:
    return generate_key_pair("ec-p256", "eid-server simulator test")


@pytest.fixture(scope="session")
def rogue_key() -> KeyPair:
    return generate_key_pair("ec-p256", "eid-server simulator test")  # same name, other key


@pytest.fixture(scope="session")
def rsa_key() -> KeyPair:
    return generate_key_pair("rsa-3072", "eid-gateway rsa test")


@dataclass
class Harness:
    origin: str
    sim: Simulator
    client: Tr03130Client
    http: aiohttp.ClientSession
    requests: dict[str, EidRequest] = field(default_factory=dict)
    sessions: dict[str, EidSession] = field(default_factory=dict)

    def begin(self, request: EidRequest) -> str:
        """Register a sign-in; returns its tcTokenURL."""
        ref = secrets.token_urlsafe(16)
        self.requests[ref] = request
        return f"{self.origin}/tctoken/{ref}"

    def refresh(self, tc_token_url: str) -> str:
        return f"{self.origin}/refresh?ref={tc_token_url.rsplit('/', 1)[-1]}"

    def session_of(self, tc_token_url: str) -> EidSession:
        return self.sessions[tc_token_url.rsplit("/", 1)[-1]]


async def start_server(app: web.Application, port: int | None = None) -> TestServer:
    server = TestServer(app, host="127.0.0.1", port=port or unused_port())
    await server.start_server()
    return server


@pytest.fixture(params=["memory", "sqlite"])
async def harness(
    request: pytest.FixtureRequest, tmp_path: Path, gateway_key: KeyPair, server_key: KeyPair
) -> AsyncIterator[Harness]:
    """The simulator keeps its sessions in memory, or in a SQLite file as `serve --workers N` does."""
    port = unused_port()
    origin = f"http://127.0.0.1:{port}"
    sessions = tmp_path / "sessions.sqlite3" if request.param == "sqlite" else None
    sim = Simulator(
        SimulatorConfig(public_origin=origin, key=server_key, gateway_cert=gateway_key.certificate, sessions=sessions)
    )
    client = Tr03130Client(sim.eid_url, gateway_key, server_key.certificate, timeout=5)
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies on 127.0.0.1
    h = Harness(origin, sim, client, http)

    async def tctoken(request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        session = await client.start_session(h.requests[ref])
        h.sessions[ref] = session
        assert session.psk_id is not None
        token = TcToken(
            server_address=session.server_address,
            session_identifier=session.psk_id,
            refresh_address=f"{origin}/refresh?ref={ref}",
            communication_error_address=f"{origin}/error",
            psk=session.psk_key,
        )
        return web.Response(body=build_tc_token(token), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.add_routes(sim.routes())
    app.add_routes([web.get("/tctoken/{ref}", tctoken)])
    server = await start_server(app, port)
    try:
        yield h
    finally:
        await client.close()
        await http.close()
        await server.close()
        sim.core.close()
