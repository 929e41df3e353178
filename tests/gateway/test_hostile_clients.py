"""Hostile clients against a real `eid-gateway serve` process on 127.0.0.1 (issue 13).

Slow heads and slow bodies are cut off within the `[listen]` limits, connections over the per-address and
total caps are closed as soon as they are accepted, malformed requests get the gateway's own page, a
client leaving mid-request is no error; meanwhile `/healthz` answers and a whole sign-in completes. The
log of the server process must not show an ERROR or a traceback for any of it.

The limits are small (a second or two) so that the test takes seconds; every wait is bounded, and each
bound is several times the limit it checks (CI machines differ up to 4x in speed). Slow clients connect
from 127.0.0.2 and 127.0.0.3.., the sign-in from 127.0.0.1: Linux routes all of 127/8 to loopback, so
these are distinct client addresses to the server.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from eid_gateway.app import create_app
from eid_gateway.config import ConfigError, GatewayConfig, StoreConfig, load_config
from helpers.ports import free_port

from .conftest import write_variant
from .test_workers import EID_GATEWAY, START_TIMEOUT, ServeProcess, _one_sign_in, init_instance

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
PER_ADDRESS = 4
MAX_CONNECTIONS = 10
#: How much later than its limit a cut-off may come (a slow machine under load), and the give-up bound.
SLACK = 4.0
GIVE_UP = 20.0

LISTEN = (
    f"header_timeout_seconds = {HEADER_TIMEOUT}\nbody_timeout_seconds = {BODY_TIMEOUT}\n"
    f"keepalive_timeout_seconds = 30\nmax_connections = {MAX_CONNECTIONS}\n"
    f"max_connections_per_address = {PER_ADDRESS}\n"
)
# no address is a proxy here (loopback is one by default, and exempt from the per-address cap), and the
# sign-in limits are off: the test's sign-in and probes all come from loopback
LIMITS = "\n[limits]\nenabled = false\ntrusted_proxies = []\n"


@dataclass
class Served(ServeProcess):
    def healthz(self, source: str = "127.0.0.1") -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10, source_address=(source, 0))
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status
        finally:
            conn.close()

    def assert_no_errors(self) -> None:
        text = self.log_text()
        assert " ERROR " not in text and "Traceback" not in text, text[-4000:]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One `eid-gateway serve` process (no workers) with small [listen] limits."""
    yield from _serve(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def served_by_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`eid-gateway serve --workers 2` (gunicorn) with the same limits."""
    yield from _serve(tmp_path_factory.mktemp("hostile-workers"), "--workers", "2")


def _serve(directory: Path, *options: str) -> Iterator[Served]:
    config, port = init_instance(directory, LIMITS)
    text = config.read_text(encoding="utf-8")
    assert text.count("[listen]\n") == 1
    config.write_text(text.replace("[listen]\n", "[listen]\n" + LISTEN), encoding="utf-8")
    log = config.parent / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [EID_GATEWAY, "serve", "--config", str(config), *options], stdout=out, stderr=subprocess.STDOUT
        )
    server = Served(process, port, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, f"serve exited {process.returncode}:\n{server.log_text()[-4000:]}"
            try:
                if server.healthz() == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, server.log_text()[-4000:]
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- raw connections -------------------------------------------------------------------------------------------


async def _connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (EOF or reset)."""
    received = b""
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionError:
        pass
    return received


async def dribble(port: int, source: str, head: bytes, *, body: bool) -> float:
    """Send ``head`` (of a request that never completes), then one byte every 0.2 s until the server closes
    the connection. Returns the seconds from the first byte (``body``: from the end of the head) to the
    close; fails if the server answered anything or kept it open for :data:`GIVE_UP` seconds."""
    reader, writer = await _connect(port, source)
    try:
        closed = asyncio.create_task(_closed_by_server(reader))
        started = time.monotonic()
        writer.write(head)
        if body:
            started = time.monotonic()
        while not closed.done() and time.monotonic() - started < GIVE_UP:
            try:
                writer.write(b"a")
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.wait([closed], timeout=0.2)
        answer = await asyncio.wait_for(closed, 5)
        elapsed = time.monotonic() - started
        assert answer == b"", answer[:300]
        return elapsed
    finally:
        writer.close()


async def _round_trip(port: int, source: str) -> tuple[asyncio.StreamWriter, bool]:
    """A new connection from ``source`` and one /healthz on it: (the open connection, whether it answered)."""
    reader, writer = await _connect(port, source)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
    except ConnectionError:
        line = b""
    return writer, line.startswith(b"HTTP/1.1 200")


# --- the tests -------------------------------------------------------------------------------------------------


async def test_slow_heads_and_bodies_are_cut_off_while_a_sign_in_completes(served: Served) -> None:
    slow_head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    slow_body = (
        b"POST /demo/acs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100000\r\n\r\nSAMLResponse="
    )
    started = time.monotonic()
    heads = [asyncio.create_task(dribble(served.port, "127.0.0.2", slow_head, body=False)) for _ in range(2)]
    bodies = [asyncio.create_task(dribble(served.port, "127.0.0.2", slow_body, body=True)) for _ in range(2)]
    await asyncio.sleep(0.3)
    assert await asyncio.to_thread(served.healthz) == 200  # answers while the slow clients hang on
    await _one_sign_in(served.origin)
    head_times = await asyncio.gather(*heads)
    body_times = await asyncio.gather(*bodies)
    for elapsed in head_times:
        assert HEADER_TIMEOUT - 0.05 <= elapsed <= HEADER_TIMEOUT + SLACK, head_times
    for elapsed in body_times:
        assert BODY_TIMEOUT - 0.05 <= elapsed <= BODY_TIMEOUT + SLACK, body_times
    assert time.monotonic() - started < GIVE_UP
    assert await asyncio.to_thread(served.healthz, "127.0.0.2") == 200  # the address is not locked out
    served.assert_no_errors()


async def test_connections_over_the_caps_are_closed_when_accepted(served: Served) -> None:
    port = served.port
    held: list[asyncio.StreamWriter] = []
    try:
        # per address: PER_ADDRESS connections are served (and stay open, keep-alive), the next ones closed
        answered = []
        for _ in range(PER_ADDRESS + 3):
            writer, ok = await _round_trip(port, "127.0.0.3")
            held.append(writer)
            answered.append(ok)
        assert answered == [True] * PER_ADDRESS + [False] * 3
        assert await asyncio.to_thread(served.healthz) == 200  # other addresses are served meanwhile
        # a freed slot is taken again (the server counts the close when it sees it: poll, bounded)
        held[0].close()
        deadline = time.monotonic() + 10
        while True:
            writer, ok = await _round_trip(port, "127.0.0.3")
            held.append(writer)
            if ok:
                break
            assert time.monotonic() < deadline, "a closed connection's slot was not freed"
            await asyncio.sleep(0.1)
        # per process: one connection from each further address (each under its own cap) until the total
        # is reached; the server's own keep-alive connections (to the embedded simulator) count too
        answered = []
        for last in range(10, 10 + MAX_CONNECTIONS):
            writer, ok = await _round_trip(port, f"127.0.0.{last}")
            held.append(writer)
            answered.append(ok)
        admitted = answered.count(True)
        assert 1 <= admitted <= MAX_CONNECTIONS - PER_ADDRESS, answered
        assert answered == [True] * admitted + [False] * (MAX_CONNECTIONS - admitted), answered
    finally:
        for writer in held:
            writer.close()
    # all closed: the server serves everyone again
    deadline = time.monotonic() + 10
    while True:
        try:
            if await asyncio.to_thread(served.healthz, "127.0.0.6") == 200:
                break
        except (ConnectionError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    served.assert_no_errors()


@pytest.mark.parametrize(
    "request_text",
    [
        b"GET /signin/" + b"A" * 9000 + b"?given=ERIKA HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /signin/x?given=ERIKA HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"B" * 9000 + b"\r\n\r\n",
    ],
    ids=["request-line", "header"],
)
async def test_malformed_requests_get_the_gateway_page_and_no_traceback(served: Served, request_text: bytes) -> None:
    reader, writer = await _connect(served.port, "127.0.0.7")
    try:
        writer.write(request_text)
        await writer.drain()
        answer = await asyncio.wait_for(_closed_by_server(reader), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {
        k.strip().lower(): v.strip()
        for k, _, v in (line.decode("latin-1").partition(":") for line in head.split(b"\r\n")[1:])
    }
    assert 400 <= status < 500
    assert headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert headers["server"] == "eid-gateway"
    assert b"<html" in body and f"HTTP {status}".encode() in body
    assert b"ERIKA" not in body and b"AAAA" not in body and b"BBBB" not in body  # nothing echoed
    served.assert_no_errors()
    log = served.log_text()
    assert "ERIKA" not in log and "AAAA" not in log


async def test_a_client_leaving_mid_request_is_no_error(served: Served) -> None:
    reader, writer = await _connect(served.port, "127.0.0.8")
    writer.write(
        b"POST /demo/acs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 5000\r\n\r\nSAMLResponse=abc"
    )
    await writer.drain()
    await asyncio.sleep(0.3)  # the handler is now waiting for the rest of the body
    writer.close()
    deadline = time.monotonic() + 10
    while "client went away route=/demo/acs" not in served.log_text():
        assert time.monotonic() < deadline, served.log_text()[-4000:]
        await asyncio.sleep(0.1)
    served.assert_no_errors()


async def test_each_worker_guards_its_connections(served_by_workers: Served) -> None:
    """Under gunicorn every worker serves through the connection guard: a slow head is cut off, connections
    over the per-address cap are closed when accepted (each worker counts its own, so one address holds at
    most twice the cap on two workers), and a malformed request gets the gateway's page."""
    port = served_by_workers.port
    slow_head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    elapsed = await dribble(port, "127.0.0.2", slow_head, body=False)
    assert HEADER_TIMEOUT - 0.05 <= elapsed <= HEADER_TIMEOUT + SLACK, elapsed
    held: list[asyncio.StreamWriter] = []
    try:
        answered = []
        for _ in range(2 * PER_ADDRESS + 4):  # one worker at least gets more than its cap
            writer, ok = await _round_trip(port, "127.0.0.3")
            held.append(writer)
            answered.append(ok)
        assert PER_ADDRESS <= answered.count(True) <= 2 * PER_ADDRESS, answered
    finally:
        for writer in held:
            writer.close()
    reader, writer = await _connect(port, "127.0.0.7")
    try:
        writer.write(b"GET /signin/" + b"A" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(_closed_by_server(reader), 10)
    finally:
        writer.close()
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    assert 400 <= int(head.split(" ", 2)[1]) < 500, head
    assert "server: eid-gateway" in head and "content-security-policy" in head, head
    served_by_workers.assert_no_errors()


def test_listen_limits_are_checked(instance: Path, example_toml: str) -> None:
    text = example_toml.replace(
        "[listen]\n",
        '[listen]\nheader_timeout_seconds = 0\nmax_connections = 0\nmax_connections_per_address = "many"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write_variant(instance, text, "listen-limits"))
    assert "listen.header_timeout_seconds: must be between 0.1 and 600" in caught.value.errors
    assert "listen.max_connections: must be between 1 and 1000000" in caught.value.errors
    assert "listen.max_connections_per_address: must be an integer" in caught.value.errors
    defaults = load_config(instance / "gateway.toml").listen
    assert (
        defaults.header_timeout_seconds,
        defaults.body_timeout_seconds,
        defaults.keepalive_timeout_seconds,
        defaults.max_connections,
        defaults.max_connections_per_address,
    ) == (20.0, 30.0, 75.0, 1000, 64)


# --- what the gateway tells about itself ----------------------------------------------------------------------------


async def test_no_versions_to_the_public_and_metrics_by_forwarded_address(
    base_config: GatewayConfig, tmp_path: Path
) -> None:
    """Behind a reverse proxy on the same machine (loopback is a trusted proxy by default) the TCP peer is
    always the proxy: /metrics and the eID-Server's version in /readyz must follow the forwarded address."""
    port = free_port()  # the embedded simulator is reached at the public origin
    config = replace(
        base_config, public_origin=f"http://127.0.0.1:{port}", store=StoreConfig("sqlite", tmp_path / "gw.sqlite3")
    )
    assert "127.0.0.0/8" in config.limits.trusted_proxies and "127.0.0.0/8" in config.metrics.allow
    client = TestClient(TestServer(create_app(config), host="127.0.0.1", port=port))
    await client.start_server()
    try:
        public = {"X-Forwarded-For": "203.0.113.9"}
        for headers in ({}, public):
            async with client.get("/healthz", headers=headers) as r:
                assert r.status == 200 and r.headers["Server"] == "eid-gateway"
        async with client.get("/metrics", headers=public) as r:
            assert r.status == 403
        async with client.get("/metrics", headers={"X-Forwarded-For": "not-an-address"}) as r:
            assert r.status == 403  # a proxy passing client-written text: who asks is unknown
        async with client.get("/metrics") as r:  # the scraper on this machine, no proxy in between
            assert r.status == 200 and "eidgw_" in await r.text()
        async with client.get("/readyz", headers=public) as r:
            body = json.loads(await r.text())
            assert r.status == 200 and body["eid_server"] == "ok", body
            assert not any(re.search(r"version", key) for key in body), body
        async with client.get("/readyz") as r:
            body = json.loads(await r.text())
            assert r.status == 200 and body["eid_server_version"], body
    finally:
        await client.close()
