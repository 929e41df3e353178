"""Request store and replay cache, in memory and in a SQLite file: one-time use, expiry, overflow,
thread safety (the processes sharing one file: tests/saml_protocol/test_stores_processes.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from saml import stores

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

MakeStore = Callable[[], stores.InMemoryRequestStore | stores.SqliteRequestStore]
MakeCache = Callable[..., stores.InMemoryReplayCache | stores.SqliteReplayCache]


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    if request.param == "memory":
        return stores.InMemoryRequestStore
    return lambda: stores.SqliteRequestStore(tmp_path / "state.sqlite3")


@pytest.fixture(params=["memory", "sqlite"])
def make_cache(request: pytest.FixtureRequest, tmp_path: Path) -> MakeCache:
    if request.param == "memory":
        return stores.InMemoryReplayCache
    return lambda **kw: stores.SqliteReplayCache(tmp_path / "state.sqlite3", **kw)


def test_request_consumed_once_and_expires(make_store: MakeStore) -> None:
    store = make_store()
    assert isinstance(store, stores.RequestStore)
    store.add("_a", expires_at=T0 + timedelta(minutes=5))
    store.add("_b", expires_at=T0 + timedelta(minutes=5))
    assert store.consume("_a", now=T0)
    assert not store.consume("_a", now=T0)
    assert not store.consume("_unknown", now=T0)
    assert not store.consume("_b", now=T0 + timedelta(minutes=5))  # expired at NotOnOrAfter


def test_replay_cache_keeps_ids_until_expiry(make_cache: MakeCache) -> None:
    cache = make_cache()
    assert isinstance(cache, stores.ReplayCache)
    exp = T0 + timedelta(minutes=5)
    assert cache.add_if_new("_x", expires_at=exp, now=T0)
    assert not cache.add_if_new("_x", expires_at=exp, now=T0 + timedelta(minutes=4))
    assert cache.add_if_new("_x", expires_at=exp + timedelta(minutes=5), now=exp)  # forgotten once expired


def test_replay_cache_full_refuses_instead_of_evicting(make_cache: MakeCache) -> None:
    cache = make_cache(max_entries=2)
    cache.add_if_new("_1", expires_at=T0 + timedelta(minutes=1), now=T0)
    cache.add_if_new("_2", expires_at=T0 + timedelta(minutes=5), now=T0)
    with pytest.raises(OverflowError):
        cache.add_if_new("_3", expires_at=T0 + timedelta(minutes=5), now=T0)
    # once one entry has expired, it is purged and there is room again
    assert cache.add_if_new("_3", expires_at=T0 + timedelta(minutes=5), now=T0 + timedelta(minutes=2))
    assert len(cache) == 2


def test_naive_times_refused(make_cache: MakeCache, make_store: MakeStore) -> None:
    with pytest.raises(ValueError):
        make_cache().add_if_new("_x", expires_at=datetime(2026, 1, 1), now=T0)
    with pytest.raises(ValueError):
        make_store().add("_r", expires_at=datetime(2026, 1, 1))


def test_concurrent_consumers_only_one_wins(make_store: MakeStore, make_cache: MakeCache) -> None:
    store = make_store()
    cache = make_cache()
    store.add("_r", expires_at=T0 + timedelta(minutes=5))
    results: list[bool] = []
    replay: list[bool] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        results.append(store.consume("_r", now=T0))
        replay.append(cache.add_if_new("_a", expires_at=T0 + timedelta(minutes=5), now=T0))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and replay.count(True) == 1


def test_sqlite_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store, cache = stores.SqliteRequestStore(path), stores.SqliteReplayCache(path)
    later = datetime.now(UTC) + timedelta(minutes=5)
    store.add("_r", expires_at=later)
    assert cache.add_if_new("_a", expires_at=later)
    store.close()
    cache.close()
    store, cache = stores.SqliteRequestStore(path), stores.SqliteReplayCache(path)  # a restart: the file stays
    assert not cache.add_if_new("_a", expires_at=later)
    assert store.consume("_r") and not store.consume("_r")
    assert path.stat().st_mode & 0o077 == 0  # readable by the service's own user only
