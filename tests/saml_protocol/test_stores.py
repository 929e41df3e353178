"""In-memory request store and replay cache: one-time use, expiry, thread safety."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from saml.stores import InMemoryReplayCache, InMemoryRequestStore, ReplayCache, RequestStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_request_consumed_once_and_expires() -> None:
    store = InMemoryRequestStore()
    assert isinstance(store, RequestStore)
    store.add("_a", expires_at=T0 + timedelta(minutes=5))
    store.add("_b", expires_at=T0 + timedelta(minutes=5))
    assert store.consume("_a", now=T0)
    assert not store.consume("_a", now=T0)
    assert not store.consume("_unknown", now=T0)
    assert not store.consume("_b", now=T0 + timedelta(minutes=5))  # expired at NotOnOrAfter


def test_replay_cache_keeps_ids_until_expiry() -> None:
    cache = InMemoryReplayCache()
    assert isinstance(cache, ReplayCache)
    exp = T0 + timedelta(minutes=5)
    assert cache.add_if_new("_x", expires_at=exp, now=T0)
    assert not cache.add_if_new("_x", expires_at=exp, now=T0 + timedelta(minutes=4))
    assert cache.add_if_new("_x", expires_at=exp + timedelta(minutes=5), now=exp)  # forgotten once expired


def test_replay_cache_full_refuses_instead_of_evicting() -> None:
    cache = InMemoryReplayCache(max_entries=2)
    cache.add_if_new("_1", expires_at=T0 + timedelta(minutes=1), now=T0)
    cache.add_if_new("_2", expires_at=T0 + timedelta(minutes=5), now=T0)
    with pytest.raises(OverflowError):
        cache.add_if_new("_3", expires_at=T0 + timedelta(minutes=5), now=T0)
    # once one entry has expired, it is purged and there is room again
    assert cache.add_if_new("_3", expires_at=T0 + timedelta(minutes=5), now=T0 + timedelta(minutes=2))
    assert len(cache) == 2


def test_naive_times_refused() -> None:
    with pytest.raises(ValueError):
        InMemoryReplayCache().add_if_new("_x", expires_at=datetime(2026, 1, 1), now=T0)


def test_concurrent_consumers_only_one_wins() -> None:
    store = InMemoryRequestStore()
    cache = InMemoryReplayCache()
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
