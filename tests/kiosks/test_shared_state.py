"""Kiosk state shared by several nodes through the gateway's store (SQLite file and real redis-server):
compare-and-set on the agent's sequence, liveness decided from the shared state and the clock, the
history (what changed, no personal data, kept ``history_days``), and the stream between nodes.

Two `KioskService` objects on two `Store` objects over one database are two gateway nodes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from cardreader.identify import card_info
from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState
from cardreader.testing.vcard import NPA_ATR, npa_card_access
from eid_gateway.config import RedisSettings
from eid_gateway.kiosks import history as h
from eid_gateway.kiosks.history import KioskEvent
from eid_gateway.kiosks.registry import KioskRegistry
from eid_gateway.kiosks.service import KioskService
from eid_gateway.kiosks.state_store import SharedKioskStateStore
from eid_gateway.store.base import Store
from eid_gateway.store.redis import create_redis_store
from eid_gateway.store.sqlite import SqliteStore
from helpers.clocks import FakeClock
from tr03110.security_infos import parse_security_infos

from .conftest import make_settings

EMPTY = KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.EMPTY),))
_, NPA = card_info(NPA_ATR, parse_security_infos(npa_card_access()))
CARD = KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.ID_CARD, NPA),))
DOWN = KioskSnapshot(ServiceState.PCSC_UNAVAILABLE, (), "SCARD_E_NO_SERVICE")


@pytest.fixture(params=["sqlite", "redis"])
async def make_node(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., tuple[KioskService, Store]]]:
    """Makes gateway nodes (a registry and a service on a store of its own) sharing one database."""
    made: list[Store] = []
    prefix = f"k{secrets.token_hex(5)}:"

    def make(clock: FakeClock, heartbeat: float = 10.0) -> tuple[KioskService, Store]:
        store: Store
        if request.param == "sqlite":
            store = SqliteStore(tmp_path / "gateway.sqlite3", clock=clock, listen_interval=0.02)
        else:
            server = request.getfixturevalue("redis_server")
            store = create_redis_store(RedisSettings(url=server.url, key_prefix=prefix), clock=clock)
        made.append(store)
        registry = KioskRegistry(make_settings(heartbeat=heartbeat, missed=1), clock=clock)
        return KioskService(registry, SharedKioskStateStore(store), clock=clock), store

    yield make
    for s in made:
        await s.close()


async def test_of_two_racing_reports_the_newer_sequence_stays_whatever_the_order(make_node) -> None:
    clock = FakeClock()
    a, _ = make_node(clock)
    b, _ = make_node(clock)
    await a.report_state("mitte-1", "agent-run-1", 0, EMPTY)
    snaps = [CARD, EMPTY]
    for n in range(1, 41):
        newer, older = snaps[n % 2], snaps[(n + 1) % 2]
        # the two messages reach two nodes at once; half the time the newer one is sent first
        first, second = (a, b) if n % 4 < 2 else (b, a)
        send = [
            first.report_state("mitte-1", "agent-run-1", 2 * n + 1, newer),
            second.report_state("mitte-1", "agent-run-1", 2 * n, older),
        ]
        if n % 2:
            send.reverse()
        acks = await asyncio.gather(*send)
        assert acks[0 if not n % 2 else 1].applied  # the newer one is always applied
        for node in (a, b):
            await node.resync()
            rec = node.registry.records["mitte-1"]
            assert (rec.state.seq, rec.snapshot) == (2 * n + 1, newer), f"round {n}"
    # a retry of an old message changes nothing, on either node
    assert not (await b.report_state("mitte-1", "agent-run-1", 5, DOWN)).applied
    await a.resync()
    assert a.registry.records["mitte-1"].state.seq == 81


async def test_a_heartbeat_on_node_a_keeps_the_kiosk_live_on_node_b(make_node) -> None:
    clock = FakeClock()
    a, _ = make_node(clock, heartbeat=10.0)  # offline after 15 s of silence
    b, _ = make_node(clock, heartbeat=10.0)
    await a.report_state("mitte-1", "agent-run-1", 1, CARD)
    await b.resync()
    for seq in range(2, 8):  # every 10 s a heartbeat, always to node A
        clock.advance(10)
        await a.heartbeat("mitte-1", "agent-run-1", seq)
        await b.resync()
        await b.tick()
        assert b.registry.row("mitte-1")["status"] == "id_card"
    clock.advance(16)  # the agent died: node B decides from the shared last_seen and its clock
    await b.tick()
    row = b.registry.row("mitte-1")
    assert row["status"] == "offline" and row["offline_reason"] == "silent"
    await a.tick()  # node A notices too; the silence is in the history once
    events = await b.kiosk_history("mitte-1", since=0)
    assert [e.kind for e in events].count(h.AGENT_OFFLINE) == 1
    # an announced stop on node B shows on node A
    await b.heartbeat("mitte-1", "agent-run-1", 8)
    await b.offline("mitte-1", "agent-run-1", 9)
    await a.resync()
    assert a.registry.row("mitte-1")["offline_reason"] == "stopped"


async def test_a_refusal_on_one_node_is_shown_on_the_other(make_node) -> None:
    clock = FakeClock()
    a, _ = make_node(clock)
    b, _ = make_node(clock)
    await a.refused("mitte-1")
    await a.refused("sued-9")  # not configured: nothing stored
    await b.resync()
    assert b.registry.row("mitte-1")["status"] == "credential_refused"
    assert "sued-9" not in await b.store.load_all()
    for _ in range(50):  # a guess flood costs no write per guess
        await a.refused("mitte-1")
    assert (await b.store.get("mitte-1")).version == 1  # type: ignore[union-attr]


async def test_history_records_changes_without_personal_data_and_is_pruned(make_node) -> None:
    clock = FakeClock()
    a, _ = make_node(clock)
    b, _ = make_node(clock)
    t0 = clock.now
    await a.report_state("mitte-1", "agent-run-1", 1, EMPTY)
    clock.advance(1)
    await b.report_state("mitte-1", "agent-run-1", 2, CARD)  # card in
    clock.advance(1)
    await a.report_state("mitte-1", "agent-run-1", 3, EMPTY)  # card out
    clock.advance(1)
    await a.report_state("mitte-1", "agent-run-1", 3, DOWN)  # a retry: nothing
    await a.report_state("mitte-1", "agent-run-1", 4, DOWN)  # pcscd down, reader gone
    clock.advance(1)
    await b.offline("mitte-1", "agent-run-1", 5)
    clock.advance(1)
    await a.refused("mitte-1")
    clock.advance(1)
    two = KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.EMPTY), ReaderStatus("r1", ReaderState.EMPTY)))
    await b.report_state("mitte-1", "agent-run-2", 1, two)  # restarted, a second reader
    events = await a.kiosk_history("mitte-1", since=0)
    assert [(e.at - t0, e.kind, e.reader, e.state, e.detail) for e in events] == [
        (0, h.AGENT_ONLINE, None, None, None),
        (0, h.READER_ADDED, "r0", "empty", None),
        (1, h.READER_STATE, "r0", "id_card", None),
        (2, h.READER_STATE, "r0", "empty", None),
        (3, h.SERVICE, None, "pcsc_unavailable", "SCARD_E_NO_SERVICE"),
        (3, h.READER_REMOVED, "r0", None, None),
        (4, h.AGENT_OFFLINE, None, None, "stopped"),
        (5, h.CREDENTIAL_REFUSED, None, None, None),
        (6, h.AGENT_ONLINE, None, None, None),
        (6, h.SERVICE, None, "ok", None),
        (6, h.READER_ADDED, "r0", "empty", None),
        (6, h.READER_ADDED, "r1", "empty", None),
    ]
    # card types only: nothing read from the card (its ATR, its PACE parameters) is kept
    stored = json.dumps([e.__dict__ for e in events])
    assert NPA.atr not in stored and "PACE" not in stored
    assert await b.kiosk_history("nord-2", since=0) == []
    assert [e.kind for e in await b.kiosk_history("mitte-1", since=t0 + 5, limit=10)][:2] == [
        h.CREDENTIAL_REFUSED,
        h.AGENT_ONLINE,
    ]
    newest = await b.kiosk_history("mitte-1", since=0, limit=3)  # the newest three, oldest first
    assert [(e.kind, e.reader) for e in newest] == [(h.SERVICE, None), (h.READER_ADDED, "r0"), (h.READER_ADDED, "r1")]
    # kept history_days (30 by default): older events go, newer stay, on every kiosk
    assert a.registry.settings.history_days == 30
    clock.advance(30 * 86400 - 3.5)  # t0 + 30 days + 2.5 s
    assert await b.prune() == 4  # the four events of t0 .. t0 + 2
    left = await a.kiosk_history("mitte-1", since=0)
    assert [e.at - t0 for e in left][:2] == [3, 3] and len(left) == 8


async def test_changes_reach_the_other_nodes_dashboards_live(make_node) -> None:
    clock = FakeClock()
    a, _ = make_node(clock)
    b, _ = make_node(clock)
    follower = asyncio.create_task(b.follow(retry_seconds=0.05))
    sub = b.registry.subscribe()
    try:
        # b follows once its subscription is up; until then a message may go unheard
        for seq in range(1, 200):
            await a.heartbeat("mitte-1", "agent-run-1", seq)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sub.queue.get(), 0.1)
                break
        while not sub.queue.empty():
            sub.queue.get_nowait()
        await a.report_state("mitte-1", "agent-run-1", 1000, CARD)
        ev = await asyncio.wait_for(sub.queue.get(), 30)
        assert ev["type"] == "kiosk" and ev["row"]["status"] == "id_card"
        await a.heartbeat("mitte-1", "agent-run-1", 1001)
        ev = await asyncio.wait_for(sub.queue.get(), 30)
        assert ev == {"type": "seen", "id": "mitte-1", "last_seen": b.registry.row("mitte-1")["last_seen"]}
        await a.offline("mitte-1", "agent-run-1", 1002)
        ev = await asyncio.wait_for(sub.queue.get(), 30)
        assert ev["type"] == "kiosk" and ev["row"]["status"] == "offline" and ev["row"]["offline_reason"] == "stopped"
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


def test_events_read_back_and_damaged_entries_are_refused() -> None:
    e = KioskEvent(1.5, h.READER_STATE, "Virtual PCD 00 00", "id_card", None)
    assert h.event_from_json(h.event_to_json(e)) == e
    for bad in ("", "[]", '{"kind": "nope", "at": 1}', '{"kind": "service", "at": "x"}', '{"kind": "service"}'):
        with pytest.raises(h.HistoryError):
            h.event_from_json(bad)


async def test_a_lost_subscription_is_healed_by_reading_the_states_again(make_node, request) -> None:
    """Redis drops the node's pub/sub connection (a restart, a failover): what was published meanwhile
    is lost, but the node reads every state again (after resubscribing, and every resync_seconds)."""
    if "redis" not in request.node.callspec.id:
        pytest.skip("SQLite has no connection to lose")
    import redis.asyncio as aioredis

    clock = FakeClock()
    a, _ = make_node(clock)
    b, _ = make_node(clock)
    tasks = [asyncio.create_task(b.follow(retry_seconds=0.05)), asyncio.create_task(b.keep(0.05))]
    admin = aioredis.Redis.from_url(request.getfixturevalue("redis_server").url)
    try:
        for seq in range(1, 600):  # until b hears a's writes
            await a.heartbeat("mitte-1", "agent-run-1", seq)
            await asyncio.sleep(0.05)
            if b.registry.records["mitte-1"].state.seq == seq:
                break
        b.resync_seconds = 0.5  # instead of every heartbeat interval (10 s here)
        await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await a.report_state("mitte-1", "agent-run-1", 1000, CARD)  # published while b may not listen
        for _ in range(600):
            if b.registry.records["mitte-1"].snapshot == CARD:
                break
            await asyncio.sleep(0.05)
        assert b.registry.row("mitte-1")["status"] == "id_card"
    finally:
        await admin.aclose()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
