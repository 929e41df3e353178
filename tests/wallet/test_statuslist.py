"""Token Status List: revocation of a PID (eid_gateway/wallet/statuslist.py) and fetching lists with a
cache and a timeout (eid_gateway/wallet/status_fetch.py, against a real aiohttp server)."""

from __future__ import annotations

import asyncio
import time
import zlib

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from eid_gateway.wallet.errors import PresentationRejected, RejectReason, StatusUnavailable
from eid_gateway.wallet.sdjwt import StatusRef
from eid_gateway.wallet.status_fetch import StatusListFetcher
from eid_gateway.wallet.statuslist import cache_lifetime, check_status, status_value
from helpers.clocks import FakeClock
from helpers.ports import closed_port

from .builder import b64url, status_list_token
from .conftest import Pki

URI = "https://pid-provider.test/status/1"


def test_the_packing_is_least_significant_bit_first() -> None:
    # the draft's example: bits 1, statuses [1,0,0,1,1,1,0,1, 1,1,0,0,0,1,0,1] -> bytes b9 a3
    lst = bytes([0xB9, 0xA3])
    assert [status_value(lst, 1, i) for i in range(16)] == [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    # bits 2: byte 0b11_10_01_00 holds 0, 1, 2, 3
    assert [status_value(bytes([0b11100100]), 2, i) for i in range(4)] == [0, 1, 2, 3]
    with pytest.raises(StatusUnavailable):
        status_value(lst, 1, 16)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_valid_passes_and_any_other_status_is_revoked(pki: Pki, bits: int) -> None:
    statuses = [0, 1, 0, 2 if bits > 1 else 1, 0]
    token = status_list_token(pki.issuer, URI, statuses, bits=bits)
    now = int(time.time())
    for idx, value in enumerate(statuses):
        if value == 0:
            check_status(token, StatusRef(URI, idx), trust=pki.trust, now=now)
        else:
            with pytest.raises(PresentationRejected) as caught:
                check_status(token, StatusRef(URI, idx), trust=pki.trust, now=now)
            assert caught.value.reason is RejectReason.REVOKED


def unavailable(pki: Pki, token: str, idx: int = 0) -> str:
    with pytest.raises(StatusUnavailable) as caught:
        check_status(token, StatusRef(URI, idx), trust=pki.trust, now=int(time.time()))
    return str(caught.value)


def test_a_list_that_cannot_be_trusted_is_unavailable_never_valid(pki: Pki) -> None:
    assert "signer" in unavailable(pki, status_list_token(pki.foreign_issuer, URI, [0]))  # untrusted CA
    forged = status_list_token(pki.foreign_issuer, URI, [0], chain=[pki.issuer.certificate])  # key not the x5c leaf's
    assert "signature" in unavailable(pki, forged)
    assert "not the one" in unavailable(pki, status_list_token(pki.issuer, URI + "0", [0]))  # another list
    assert "expired" in unavailable(
        pki, status_list_token(pki.issuer, URI, [0], claims={"exp": int(time.time()) - 3600})
    )
    assert "not a status list" in unavailable(pki, status_list_token(pki.issuer, URI, [0], header={"typ": "JWT"}))
    assert "outside" in unavailable(pki, status_list_token(pki.issuer, URI, [0] * 8), idx=8)
    for bad in (
        {"bits": 3, "lst": b64url(zlib.compress(b"\0"))},
        {"bits": 1, "lst": "!!"},
        {"bits": 1, "lst": b64url(b"not zlib")},
        "x",
    ):
        unavailable(pki, status_list_token(pki.issuer, URI, [0], claims={"status_list": bad}))
    for junk in ("", "a.b", "a.b.c"):
        unavailable(pki, junk)


def test_a_compression_bomb_is_refused_without_inflating_it(pki: Pki) -> None:
    bomb = b64url(zlib.compress(bytes(64 * 1024 * 1024), 9))  # 64 MiB of zeros in ~64 kB
    token = status_list_token(pki.issuer, URI, [0], claims={"status_list": {"bits": 1, "lst": bomb}})
    assert "too large" in unavailable(pki, token)


def test_the_cache_lifetime_follows_ttl_and_exp(pki: Pki) -> None:
    now = int(time.time())
    assert cache_lifetime(status_list_token(pki.issuer, URI, [0]), now=now, default=600) == 300  # ttl
    assert cache_lifetime(status_list_token(pki.issuer, URI, [0]), now=now, default=60) == 60  # the configured cap
    token = status_list_token(pki.issuer, URI, [0], claims={"exp": now + 10, "ttl": None})
    assert cache_lifetime(token, now=now, default=600) == 10
    assert cache_lifetime("junk", now=now, default=600) == 0


# --- fetching ------------------------------------------------------------------------------------------


class StatusServer:
    """A real HTTP server serving one status list token (changeable), counting requests."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.requests = 0
        self.delay = 0.0
        self.status = 200
        self.body: bytes | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        assert request.headers["Accept"] == "application/statuslist+jwt"
        if self.delay:
            await asyncio.sleep(self.delay)  # the server is slow, not the test: the fetcher's timeout is under test
        body = self.body if self.body is not None else self.token.encode()
        return web.Response(status=self.status, body=body, content_type="application/statuslist+jwt")


@pytest.fixture
async def status_server(pki: Pki):  # type: ignore[no-untyped-def]
    served = StatusServer(status_list_token(pki.issuer, URI, [0, 1]))
    app = web.Application()
    app.router.add_get("/status/1", served.handle)
    server = TestServer(app)
    await server.start_server()
    served.url = str(server.make_url("/status/1"))  # type: ignore[attr-defined]
    yield served
    await server.close()


async def test_a_fetched_list_is_cached_for_its_ttl(status_server: StatusServer) -> None:
    clock = FakeClock()
    fetcher = StatusListFetcher(timeout=30, cache_seconds=600, clock=clock)
    try:
        url = status_server.url  # type: ignore[attr-defined]
        first = await fetcher.fetch(url)
        assert first == status_server.token and status_server.requests == 1
        clock.advance(299)
        assert await fetcher.fetch(url) == first and status_server.requests == 1
        clock.advance(2)  # past the list's ttl (300 s)
        await fetcher.fetch(url)
        assert status_server.requests == 2
    finally:
        await fetcher.close()


async def test_fetch_failures_are_status_unavailable(status_server: StatusServer) -> None:
    url = status_server.url  # type: ignore[attr-defined]
    fetcher = StatusListFetcher(timeout=30, cache_seconds=0, max_bytes=4096)
    try:
        status_server.status = 500
        with pytest.raises(StatusUnavailable, match="HTTP 500"):
            await fetcher.fetch(url)
        status_server.status, status_server.body = 200, b"x" * 5000
        with pytest.raises(StatusUnavailable, match="too large"):
            await fetcher.fetch(url)
        status_server.body = "é".encode()
        with pytest.raises(StatusUnavailable):
            await fetcher.fetch(url)
        with pytest.raises(StatusUnavailable, match="http"):
            await fetcher.fetch("file:///etc/passwd")
        closed = f"http://127.0.0.1:{closed_port()}/status/1"
        with pytest.raises(StatusUnavailable, match="fetched"):
            await fetcher.fetch(closed)
    finally:
        await fetcher.close()


async def test_a_server_that_does_not_answer_in_time_is_status_unavailable(status_server: StatusServer) -> None:
    status_server.delay = 30.0
    fetcher = StatusListFetcher(timeout=0.5, cache_seconds=0)
    try:
        with pytest.raises(StatusUnavailable, match="TimeoutError"):
            await fetcher.fetch(status_server.url)  # type: ignore[attr-defined]
    finally:
        await fetcher.close()
