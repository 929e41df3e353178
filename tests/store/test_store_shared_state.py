"""The Store's versioned maps, logs and publish/listen (kiosk state, history and the dashboard stream
across nodes), on SQLite and on a real redis-server; two ``make_store`` calls are two nodes."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from eid_gateway.store.base import LogEntry, Store, Versioned
from helpers.clocks import FakeClock

from .conftest import StoreMaker


async def test_versioned_put_is_compare_and_set(make_store: StoreMaker, clock: FakeClock) -> None:
    a, b = make_store(clock), make_store(clock)
    assert await a.get_versioned("kiosk", "k1") is None
    assert await a.put_versioned("kiosk", "k1", "one", expected_version=0) == 1
    assert await b.put_versioned("kiosk", "k1", "again", expected_version=0) is None  # exists already
    assert await b.get_versioned("kiosk", "k1") == Versioned("one", 1)
    assert await b.put_versioned("kiosk", "k1", "two words", expected_version=1) == 2
    assert await a.put_versioned("kiosk", "k1", "stale", expected_version=1) is None  # b came first
    assert await a.get_versioned("kiosk", "k1") == Versioned("two words", 2)
    assert await a.all_versioned("kiosk") == {"k1": Versioned("two words", 2)}
    assert await a.all_versioned("other") == {}


async def test_versioned_put_has_one_winner_under_concurrency(make_store: StoreMaker, clock: FakeClock) -> None:
    a, b = make_store(clock), make_store(clock)
    await a.put_versioned("kiosk", "k1", "start", expected_version=0)
    results = await asyncio.gather(
        *((a if i % 2 else b).put_versioned("kiosk", "k1", f"v{i}", expected_version=1) for i in range(20))
    )
    winners = [i for i, r in enumerate(results) if r is not None]
    assert len(winners) == 1 and results[winners[0]] == 2
    assert await b.get_versioned("kiosk", "k1") == Versioned(f"v{winners[0]}", 2)


async def test_logs_read_newest_first_limited_and_prune_by_age(make_store: StoreMaker, clock: FakeClock) -> None:
    a, b = make_store(clock), make_store(clock)
    t = clock.now
    await a.log_append("hist", "k1", [LogEntry(t + i, f"e{i}") for i in range(5)])
    await b.log_append("hist", "k2", [LogEntry(t, "other kiosk")])
    await b.log_append("hist", "k1", [LogEntry(t + 5, "e5")])
    assert [e.body for e in await b.log_read("hist", "k1", since=0, limit=100)] == [f"e{i}" for i in range(6)]
    newest = await a.log_read("hist", "k1", since=0, limit=2)
    assert newest == [LogEntry(t + 4, "e4"), LogEntry(t + 5, "e5")]
    assert [e.body for e in await a.log_read("hist", "k1", since=t + 3, limit=100)] == ["e3", "e4", "e5"]
    assert await a.log_read("hist", "k1", since=0, limit=0) == []
    assert await a.log_read("hist", "nothing", since=0, limit=10) == []
    assert await a.log_prune("hist", before=t + 2) == 3  # e0, e1 and k2's entry
    assert [e.body for e in await b.log_read("hist", "k1", since=0, limit=100)] == ["e2", "e3", "e4", "e5"]
    assert await b.log_read("hist", "k2", since=0, limit=100) == []
    assert await a.log_prune("hist", before=t + 2) == 0
    # equal times (and equal bodies) keep the append order, over calls and nodes
    await a.log_append("hist", "k3", [LogEntry(t, "z"), LogEntry(t, "a")])
    await b.log_append("hist", "k3", [LogEntry(t, "m"), LogEntry(t, "a")])
    assert [e.body for e in await a.log_read("hist", "k3", since=0, limit=10)] == ["z", "a", "m", "a"]


async def _collect(store: Store, channel: str, out: list[str], ready: asyncio.Event) -> None:
    it = store.listen(channel)
    first = asyncio.ensure_future(it.__anext__())  # starts listening
    ready.set()
    out.append(await first)
    async for message in it:
        out.append(message)


async def test_publish_reaches_a_listener_on_another_node_in_order(make_store: StoreMaker) -> None:
    a, b = make_store(), make_store()
    got: list[str] = []
    other: list[str] = []
    ready, ready2 = asyncio.Event(), asyncio.Event()
    listener = asyncio.create_task(_collect(b, "kiosks", got, ready))
    listener2 = asyncio.create_task(_collect(b, "elsewhere", other, ready2))
    await ready.wait()
    await ready2.wait()
    try:
        # a listener is subscribed once its first read ran; publish until the first message arrives
        for _ in range(400):
            await a.publish("kiosks", "probe")
            if got:
                break
            await asyncio.sleep(0.05)
        assert got, "the listener never heard the other node"
        sent = [f"m{i}" for i in range(50)]
        for m in sent:
            await a.publish("kiosks", m)
        for _ in range(600):
            if got[-1:] == ["m49"]:
                break
            await asyncio.sleep(0.05)
        assert [m for m in got if m != "probe"] == sent
        assert other == []
        # a compare-and-set write publishes with it, and only when it wrote
        del got[:]
        assert await a.put_versioned("kiosk", "k1", "v1", expected_version=0, publish=("kiosks", "wrote v1")) == 1
        assert await a.put_versioned("kiosk", "k1", "v1", expected_version=0, publish=("kiosks", "lost")) is None
        assert await a.put_versioned("kiosk", "k1", "v2", expected_version=1, publish=("kiosks", "wrote v2")) == 2
        for _ in range(600):
            if got[-1:] == ["wrote v2"]:
                break
            await asyncio.sleep(0.05)
        assert got == ["wrote v1", "wrote v2"]
    finally:
        for task in (listener, listener2):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_listen_on_a_closed_store_fails(make_store: StoreMaker, kind: str) -> None:
    s = make_store()
    await s.close()
    from eid_gateway.store.base import StoreError

    with pytest.raises(StoreError):
        await s.listen("kiosks").__anext__()
