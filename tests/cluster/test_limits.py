"""Abuse limits, shared by two gateway apps on one Redis (two nodes in one process: fast)."""

from __future__ import annotations

import secrets
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from eid_gateway.app import create_app
from eid_gateway.config import load_config
from eid_gateway.eid.tctoken import ErrorTcToken, parse_tc_token
from eid_gateway.instance import write_example_config
from eid_gateway.store.redis_server import RedisServer

from .conftest import Citizen, Node

Nodes = Callable[[str], Awaitable[tuple[Node, Node, types.SimpleNamespace]]]


@pytest.fixture
async def two_nodes(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[Nodes]:
    servers: list[TestServer] = []
    citizens: list[Citizen] = []

    async def start(limits: str) -> tuple[Node, Node, types.SimpleNamespace]:
        path = write_example_config(tmp_path / "inst", "http://127.0.0.1:8080", 8080)
        text = path.read_text(encoding="utf-8").replace(
            'kind = "sqlite"\npath = "data/gateway.sqlite3"',
            f'kind = "redis"\nurl = "{redis_server.url}"\nkey_prefix = "lim{secrets.token_hex(4)}:"',
        )
        path.write_text(text + "\n[limits]\n" + limits, encoding="utf-8")
        config = load_config(path)
        nodes = []
        for name in ("a", "b"):
            server = TestServer(create_app(config), host="127.0.0.1")
            await server.start_server()
            servers.append(server)
            assert server.port is not None
            nodes.append(Node(name, server.port, None, path))  # type: ignore[arg-type]
        return nodes[0], nodes[1], types.SimpleNamespace(config=config, made=citizens)

    yield start
    for c in citizens:
        await c.close()
    for s in servers:
        await s.close()


def citizen(ctx: types.SimpleNamespace, address: str) -> Citizen:
    c = Citizen(ctx, address)
    ctx.made.append(c)
    return c


async def test_starts_per_address_are_limited_across_nodes(two_nodes: Nodes) -> None:
    a, b, ctx = await two_nodes("starts_per_ip = 3\nwindow_seconds = 60\n")
    c = citizen(ctx, "10.9.9.9")
    for node in (a, b, a):
        await c.begin(node)
    resp = await c.get(b.url(c.sso_url()), headers={"Accept-Language": "en"})
    page = await resp.text()
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "Too many requests" in page and "minute" in page
    # another address is not affected
    await citizen(ctx, "10.9.9.10").begin(b)


async def test_starts_per_service_and_pending_per_address(two_nodes: Nodes) -> None:
    a, b, ctx = await two_nodes("starts_per_service = 5\npending_per_ip = 2\n")
    one = citizen(ctx, "10.1.0.1")
    await one.begin(a)
    await one.begin(b)
    resp = await one.get(a.url(one.sso_url()))
    assert resp.status == 429  # a third pending sign-in from one address
    await citizen(ctx, "10.1.0.2").begin(b)
    await citizen(ctx, "10.1.0.3").begin(a)  # the service's fifth start (refused attempts count too)
    five = citizen(ctx, "10.1.0.4")
    resp = await five.get(b.url(five.sso_url()))
    assert resp.status == 429 and "Retry-After" in resp.headers


async def test_guessing_tc_token_and_refresh_references_is_limited(two_nodes: Nodes) -> None:
    a, b, ctx = await two_nodes("tctoken_per_ip = 2\nrefresh_per_ip = 2\n")
    guesser = citizen(ctx, "10.6.6.6")
    statuses = []
    for node in (a, b, a, b):
        async with guesser.app.get(node.url(f"/eid/tctoken/{secrets.token_urlsafe(32)}")) as r:
            statuses.append(r.status)
            if r.status == 200:
                assert isinstance(parse_tc_token(await r.read()), ErrorTcToken)
    assert statuses == [200, 200, 429, 429]
    for kind in ("refresh",):
        answers = []
        for node in (b, a, b):
            resp = await guesser.get(node.url(f"/eid/{kind}/{secrets.token_urlsafe(32)}"))
            answers.append(resp.status)
        assert answers == [404, 404, 429]
    # another citizen's flow is untouched by the guesser's limit (fetch_tc_token asserts HTTP 200; the
    # answer itself is an error token here because this config's simulator origin is not served)
    honest = citizen(ctx, "10.6.6.7")
    await honest.begin(a)
    await honest.fetch_tc_token(b)


async def test_request_size_limit(two_nodes: Nodes) -> None:
    a, _, ctx = await two_nodes("max_body_bytes = 20000\n")
    async with aiohttp.ClientSession() as http:
        async with http.post(a.url("/saml/sso"), data={"SAMLRequest": "x" * 30000}) as r:
            assert r.status == 413


async def test_limits_can_be_switched_off(two_nodes: Nodes) -> None:
    a, _, ctx = await two_nodes("enabled = false\nstarts_per_ip = 1\n")
    c = citizen(ctx, "10.2.2.2")
    for _ in range(3):
        await c.begin(a)


async def test_metrics_only_for_allowed_networks(two_nodes: Nodes) -> None:
    a, _, ctx = await two_nodes("enabled = true\n")
    assert ctx.config.metrics.allow == ("127.0.0.0/8", "::1/128")
    async with aiohttp.ClientSession() as http:
        async with http.get(a.url("/metrics")) as r:
            assert r.status == 200 and "eidgw_store_round_trips_total" in await r.text()
        # through a trusted proxy (loopback) the forwarded address counts: a client elsewhere gets no metrics
        async with http.get(a.url("/metrics"), headers={"X-Forwarded-For": "10.0.0.1"}) as r:
            assert r.status == 403
    path = ctx.config.source
    assert path is not None
    path.write_text(path.read_text(encoding="utf-8") + '\n[metrics]\nallow = ["10.0.0.0/8"]\n', encoding="utf-8")
    from eid_gateway.app import create_app

    server = TestServer(create_app(load_config(path)), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{server.port}/metrics") as r:
                assert r.status == 403
    finally:
        await server.close()
