"""Retries only where idempotent, and the circuit breaker, with the real TR-03130 client against a
real (misbehaving) eID-Server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from certs.loading import load_key_pair_file
from eid_gateway.backends.resilience import BreakerState, CircuitBreaker, CircuitOpen, ResilientEidServer, breaker_of
from eid_gateway.backends.tls import EidNotDelivered
from eid_gateway.backends.tr03130 import Tr03130Client
from eid_gateway.core.port import EidRequest, EidServerUnavailable, EidSession, ServerInfo
from eid_gateway.identity import Attribute, Identity
from helpers.clocks import FakeClock
from helpers.gateway import Browser, Servers
from helpers.ports import bound_socket, closed_port

from .faulty import Fault, FaultyServer
from .harness import _write_config, start_gateway_with

REQUEST = EidRequest(required=frozenset({Attribute.GIVEN_NAMES, Attribute.PSEUDONYM}))


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = FakeClock(100.0)
    breaker = CircuitBreaker(failures=3, reset_seconds=30, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 30
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the one trial call
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller while the trial runs
    breaker.record_failure()  # trial failed: open for a full period again
    assert breaker.state is BreakerState.OPEN
    clock.now += 29
    assert breaker.state is BreakerState.OPEN
    clock.now += 1
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED  # the count starts again after a success


@dataclass
class Env:
    faulty: FaultyServer
    client: Tr03130Client
    url: str


@pytest.fixture
async def env(servers: Servers, tmp_path: Path) -> AsyncIterator[Env]:
    """The simulator behind FaultyServer, and a real client with the keys of an `init` instance."""
    _write_config(tmp_path, "http://127.0.0.1:1", 1)
    sock = bound_socket()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    faulty = FaultyServer()
    sim = faulty.attach(origin, tmp_path)
    await servers.serve(faulty.app(), sock)
    gateway = load_key_pair_file(tmp_path / "certs/eid-client.key", tmp_path / "certs/eid-client.crt")
    client = Tr03130Client(origin + "/eid-sim/eID", gateway, sim.config.key.certificate, 2.0)
    yield Env(faulty, client, origin + "/eid-sim/eID")
    await client.close()


async def test_server_info_is_retried(env: Env) -> None:
    env.faulty.fault, env.faulty.on = Fault.ERROR_503, "http://bsi.bund.de/eID/getServerInfo"
    backend = ResilientEidServer(env.client, retries=2, backoff=0.001)
    with pytest.raises(EidServerUnavailable):
        await backend.server_info()
    assert env.faulty.calls == ["getServerInfo"] * 3
    env.faulty.fault = Fault.NONE
    assert "simulator" in (await backend.server_info()).version


async def test_use_id_is_never_retried(env: Env) -> None:
    env.faulty.fault, env.faulty.on = Fault.ERROR_503, "http://bsi.bund.de/eID/useID"
    backend = ResilientEidServer(env.client, retries=5, backoff=0.001)
    with pytest.raises(EidServerUnavailable):
        await backend.start_session(REQUEST)
    assert env.faulty.calls == ["useID"]


async def test_get_result_is_retried_only_when_not_delivered(env: Env) -> None:
    backend = ResilientEidServer(env.client, retries=2, backoff=0.001)
    session = await backend.start_session(REQUEST)
    env.faulty.fault = Fault.ERROR_503  # delivered, then failed: the server may have acted on it
    with pytest.raises(EidServerUnavailable) as caught:
        await backend.fetch_result(session, 1)
    assert not isinstance(caught.value, EidNotDelivered)
    assert env.faulty.calls == ["useID", "getResult"]


class Counting:
    """Counts calls to a real client (to see retries against a port where nobody listens)."""

    def __init__(self, inner: Tr03130Client) -> None:
        self.inner = inner
        self.fetches = 0

    async def start_session(self, request: EidRequest) -> EidSession:
        return await self.inner.start_session(request)

    async def fetch_result(self, session: EidSession, request_counter: int) -> Identity:
        self.fetches += 1
        return await self.inner.fetch_result(session, request_counter)

    async def server_info(self) -> ServerInfo:
        return await self.inner.server_info()

    async def close(self) -> None:
        await self.inner.close()


async def test_get_result_not_delivered_is_retried_then_the_breaker_opens(env: Env) -> None:
    down = Tr03130Client(f"http://127.0.0.1:{closed_port()}/eID", env.client._key, env.client._server_cert, 1.0)
    counting = Counting(down)
    clock = FakeClock(100.0)
    backend = ResilientEidServer(
        counting, retries=2, backoff=0.001, breaker=CircuitBreaker(failures=4, reset_seconds=10, clock=clock)
    )
    session = EidSession("ab" * 32, "https://x.example/paos", "p" * 32, None)
    with pytest.raises(EidNotDelivered):
        await backend.fetch_result(session, 1)
    assert counting.fetches == 3  # first try + 2 retries, same counter
    with pytest.raises(CircuitOpen):  # the 4th failure opened the breaker during the retries
        await backend.fetch_result(session, 2)
    assert counting.fetches == 4
    with pytest.raises(CircuitOpen):
        await backend.server_info()  # fails fast: nothing sent
    assert counting.fetches == 4
    await down.close()


async def test_readyz_shows_the_breaker(browser: Browser, servers: Servers, tmp_path: Path) -> None:
    setup = await start_gateway_with(
        servers,
        tmp_path / "gw",
        timeout=1.0,
        eid_lines=[
            'kind = "tr03130"',
            f'url = "http://127.0.0.1:{closed_port()}/eID"',
            'server_cert = "certs/simulator.crt"',
            "retries = 0",
            "circuit_breaker_failures = 2",
            "circuit_breaker_reset_seconds = 60",
        ],
    )
    states = []
    for _ in range(3):
        async with browser.session.get(setup.gateway.url("/readyz")) as resp:
            assert resp.status == 503
            body = await resp.json()
            states.append((body["eid_server"], body["eid_server_breaker"]))
    assert states == [
        ("error: EidNotDelivered", "closed"),
        ("error: EidNotDelivered", "open"),
        ("error: CircuitOpen", "open"),
    ]
    assert breaker_of(object()) is None
