"""The Store contract. Parametrised over implementations: add Redis (issue 8) to ``store`` below."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eid_gateway.store.base import FlowExists, Store
from eid_gateway.store.sqlite import SqliteStore


class FakeClock:
    """Wall clock shifted by ``offset`` (the store reads time only through it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    s = SqliteStore(tmp_path / "store.sqlite3", clock=clock)
    yield s
    await s.close()


async def test_flow_roundtrip_and_ttl(store: Store, clock: FakeClock) -> None:
    created = await store.create_flow("r1", "pending", {"a": 1, "b": {"c": "d"}}, ttl=60)
    assert created.version == 1
    got = await store.get_flow("r1")
    assert got is not None and got.state == "pending" and got.data == {"a": 1, "b": {"c": "d"}}
    clock.offset = 59
    assert await store.get_flow("r1") is not None
    clock.offset = 61
    assert await store.get_flow("r1") is None
    assert await store.transition("r1", "pending", "starting") is None  # expired flows do not move
    assert await store.get_flow("unknown") is None


async def test_create_refuses_existing_ref(store: Store) -> None:
    await store.create_flow("r", "pending", {}, ttl=60)
    with pytest.raises(FlowExists):
        await store.create_flow("r", "pending", {}, ttl=60)


async def test_transition_is_compare_and_set(store: Store) -> None:
    await store.create_flow("r", "pending", {"keep": 1, "drop": 2}, ttl=60)
    moved = await store.transition("r", "pending", "card", {"session": {"id": "s"}, "drop": None})
    assert moved is not None and moved.state == "card" and moved.version == 2
    assert moved.data == {"keep": 1, "session": {"id": "s"}}
    assert await store.transition("r", "pending", "card") is None  # no longer pending
    got = await store.get_flow("r")
    assert got is not None and got.state == "card" and got.data == moved.data


async def test_transition_has_one_winner_under_concurrency(store: Store) -> None:
    await store.create_flow("r", "card", {}, ttl=60)
    results = await asyncio.gather(*(store.transition("r", "card", "fetching", {"n": i}) for i in range(50)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1


async def test_update_flow_checks_version(store: Store) -> None:
    await store.create_flow("r", "pending", {"n": 0}, ttl=60)
    updated = await store.update_flow("r", {"n": 1}, expected_version=1)
    assert updated is not None and updated.version == 2 and updated.data == {"n": 1}
    assert await store.update_flow("r", {"n": 99}, expected_version=1) is None
    got = await store.get_flow("r")
    assert got is not None and got.data == {"n": 1}


async def test_consume_once_is_atomic_under_concurrency(store: Store) -> None:
    results = await asyncio.gather(*(store.consume_once("tctoken", "ref-1", 60) for _ in range(200)))
    assert results.count(True) == 1 and results.count(False) == 199


async def test_consume_once_across_connections(tmp_path: Path) -> None:
    """Two store objects on one file (as two gateway processes): still exactly one winner."""
    a, b = SqliteStore(tmp_path / "shared.sqlite3"), SqliteStore(tmp_path / "shared.sqlite3")
    try:
        results = await asyncio.gather(
            *(s.consume_once("assertion", "id-7", 60) for _ in range(50) for s in (a, b))
        )
        assert results.count(True) == 1
    finally:
        await a.close()
        await b.close()


async def test_consume_once_namespaces_and_expiry(store: Store, clock: FakeClock) -> None:
    assert await store.consume_once("a", "v", 10)
    assert await store.consume_once("b", "v", 10)  # other namespace
    assert not await store.consume_once("a", "v", 10)
    clock.offset = 11
    assert await store.consume_once("a", "v", 10)  # the replay window has passed


async def test_take_value_once(store: Store, clock: FakeClock) -> None:
    await store.put_value("req", "id1", "state", 30)
    results = await asyncio.gather(*(store.take_value("req", "id1") for _ in range(20)))
    assert results.count("state") == 1 and results.count(None) == 19
    await store.put_value("req", "id2", "x", 30)
    clock.offset = 31
    assert await store.take_value("req", "id2") is None


async def test_sweep_removes_expired_only(store: Store, clock: FakeClock) -> None:
    await store.create_flow("short", "pending", {}, ttl=5)
    await store.create_flow("long", "pending", {}, ttl=500)
    await store.consume_once("n", "v", 5)
    await store.put_value("k", "v", "x", 5)
    clock.offset = 10
    assert await store.sweep() == 3
    assert await store.get_flow("long") is not None
    await store.create_flow("short", "pending", {}, ttl=5)  # the swept reference is free again


async def test_ping_and_closed_store(tmp_path: Path) -> None:
    from eid_gateway.store.base import StoreError

    s = SqliteStore(tmp_path / "x.sqlite3")
    await s.ping()
    await s.close()
    with pytest.raises(StoreError):
        await s.ping()


async def test_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    s = SqliteStore(tmp_path / "w.sqlite3")
    await s.ping()
    await s.close()
    conn = sqlite3.connect(tmp_path / "w.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_event_loop_is_not_blocked(tmp_path: Path) -> None:
    """While 400 store operations run, a 5 ms ticker on the loop is never late by more than 50 ms."""
    s = SqliteStore(tmp_path / "lag.sqlite3")
    await s.ping()
    worst = 0.0
    stop = False

    async def ticker() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while not stop:
            t0 = loop.time()
            await asyncio.sleep(0.005)
            worst = max(worst, loop.time() - t0 - 0.005)

    task = asyncio.create_task(ticker())
    for i in range(100):
        await s.create_flow(f"f{i}", "pending", {"i": i, "pad": "x" * 500}, 60)
        await s.transition(f"f{i}", "pending", "card", {"session": "s"})
        await s.consume_once("n", f"v{i}", 60)
        await s.get_flow(f"f{i}")
    stop = True
    await task
    await s.close()
    assert worst < 0.05, worst
