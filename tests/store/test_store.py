"""The Store contract, on SQLite and on a real redis-server (see conftest.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from eid_gateway.store.base import EMPTY_TAIL, AuditEntry, Counter, FlowExists, OnceClaim, Store, StoreError
from eid_gateway.store.sqlite import SqliteStore
from helpers.clocks import FakeClock

from .conftest import StoreMaker


async def test_flow_roundtrip_and_ttl(store: Store, clock: FakeClock) -> None:
    created = await store.create_flow("r1", "pending", {"a": 1, "b": {"c": "d"}, "l": []}, ttl=60)
    assert created.version == 1
    got = await store.get_flow("r1")
    assert got is not None and got.state == "pending" and got.data == {"a": 1, "b": {"c": "d"}, "l": []}
    assert got.expires_at == pytest.approx(created.expires_at)
    clock.offset = 59
    assert await store.get_flow("r1") is not None
    clock.offset = 61
    assert await store.get_flow("r1") is None
    assert await store.transition("r1", "pending", "starting") is None  # expired flows do not move
    assert await store.update_flow("r1", {}, expected_version=1) is None
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


async def test_transition_merges_at_the_top_level_only(store: Store) -> None:
    """A nested object in ``changes`` replaces the old one whole (the same on every store)."""
    await store.create_flow("r", "a", {"session": {"id": "s", "psk": "p"}, "n": [1, 2]}, ttl=60)
    moved = await store.transition("r", "a", "b", {"session": {"id": "t"}, "n": [3]})
    assert moved is not None and moved.data == {"session": {"id": "t"}, "n": [3]}


async def test_transition_has_one_winner_under_concurrency(store: Store) -> None:
    await store.create_flow("r", "card", {}, ttl=60)
    results = await asyncio.gather(*(store.transition("r", "card", "fetching", {"n": i}) for i in range(50)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    got = await store.get_flow("r")
    assert got is not None and got.data == winners[0].data and got.version == 2


async def test_transition_with_once_claim(store: Store, clock: FakeClock) -> None:
    await store.create_flow("a", "starting", {}, ttl=60)
    await store.create_flow("b", "starting", {}, ttl=60)
    claim = OnceClaim("eid_session", "sess-1", 60)
    moved = await store.transition("a", "starting", "card", {"s": 1}, once=claim)
    assert moved is not None and moved.state == "card"
    # the same session ID for another flow: refused, and flow b is left untouched
    assert await store.transition("b", "starting", "card", {"s": 1}, once=claim) is None
    b = await store.get_flow("b")
    assert b is not None and b.state == "starting" and b.version == 1
    # a transition that fails does not consume the claim
    assert await store.transition("a", "starting", "card", once=OnceClaim("eid_session", "sess-2", 60)) is None
    assert await store.consume_once("eid_session", "sess-2", 60)


async def test_update_flow_checks_version(store: Store) -> None:
    await store.create_flow("r", "pending", {"n": 0, "old": True}, ttl=60)
    updated = await store.update_flow("r", {"n": 1}, expected_version=1)
    assert updated is not None and updated.version == 2 and updated.data == {"n": 1}
    assert await store.update_flow("r", {"n": 99}, expected_version=1) is None
    got = await store.get_flow("r")
    assert got is not None and got.data == {"n": 1} and got.state == "pending"


async def test_consume_once_is_atomic_under_concurrency(store: Store) -> None:
    results = await asyncio.gather(*(store.consume_once("tctoken", "ref-1", 60) for _ in range(200)))
    assert results.count(True) == 1 and results.count(False) == 199


@pytest.mark.parametrize("round_", range(5))
async def test_two_nodes_accept_each_value_exactly_once(make_store: StoreMaker, round_: int) -> None:
    """Two store objects on one database (two gateway nodes) racing for the same one-time values."""
    a, b = make_store(), make_store()
    for i in range(20):
        await a.create_flow(f"f{i}", "card", {}, ttl=60)
        await a.put_value("oidc_code", f"c{i}", "grant", 60)
    once = await asyncio.gather(*(s.consume_once("assertion", f"id-{i}", 60) for i in range(20) for s in (a, b, a, b)))
    moved = await asyncio.gather(*(s.transition(f"f{i}", "card", "fetching") for i in range(20) for s in (b, a, b, a)))
    taken = await asyncio.gather(*(s.take_value("oidc_code", f"c{i}") for i in range(20) for s in (a, b, a)))
    claimed = await asyncio.gather(
        *(s.transition(f"f{i}", "fetching", "done", once=OnceClaim("x", "same", 60)) for i in range(20) for s in (a, b))
    )
    assert once.count(True) == 20
    assert [m is not None for m in moved].count(True) == 20
    assert taken.count("grant") == 20
    assert [c is not None for c in claimed].count(True) == 1


async def test_consume_once_namespaces_and_expiry(store: Store, clock: FakeClock) -> None:
    assert await store.consume_once("a", "v", 10)
    assert await store.consume_once("b", "v", 10)  # other namespace
    assert not await store.consume_once("a", "v", 10)
    clock.offset = 11
    assert await store.consume_once("a", "v", 10)  # the replay window has passed


async def test_values_get_take_and_expiry(store: Store, clock: FakeClock) -> None:
    await store.put_value("req", "id1", "state with spaces", 30)
    assert await store.get_value("req", "id1") == "state with spaces"
    assert await store.get_value("req", "id1") == "state with spaces"  # get leaves it
    results = await asyncio.gather(*(store.take_value("req", "id1") for _ in range(20)))
    assert results.count("state with spaces") == 1 and results.count(None) == 19
    assert await store.get_value("req", "id1") is None
    await store.put_value("req", "id2", "x", 30)
    await store.put_value("req", "id2", "y", 30)  # overwrites
    assert await store.get_value("req", "id2") == "y"
    clock.offset = 31
    assert await store.get_value("req", "id2") is None
    assert await store.take_value("req", "id2") is None


async def test_durable_maps(make_store: StoreMaker, clock: FakeClock) -> None:
    a, b = make_store(clock), make_store(clock)
    assert await a.map_all("kiosk_state") == {}
    await a.map_set("kiosk_state", "kiosk-1", '{"reader": "card_present"}')
    await b.map_set("kiosk_state", "kiosk-2", "x")
    await b.map_set("kiosk_state", "kiosk-2", "y")  # overwrites
    await a.map_set("other", "kiosk-1", "z")
    clock.offset = 10 * 365 * 86400  # no TTL: still there years later, and not swept
    assert await a.sweep() == 0
    assert await b.map_all("kiosk_state") == {"kiosk-1": '{"reader": "card_present"}', "kiosk-2": "y"}
    assert await a.map_delete("kiosk_state", "kiosk-2") and not await a.map_delete("kiosk_state", "kiosk-2")
    assert await b.map_all("kiosk_state") == {"kiosk-1": '{"reader": "card_present"}'}


async def test_counters_count_per_window(make_store: StoreMaker, clock: FakeClock) -> None:
    a, b = make_store(clock), make_store(clock)
    clock.offset = 100 - (clock() % 100) + 1  # 1 s into a fresh 100 s window
    ip, svc = Counter("start_ip", "k1", 100), Counter("start_service", "demo", 100)
    assert await a.hit([ip, svc]) == [1, 1]
    assert await b.hit([ip]) == [2]  # shared by both nodes
    counts = await asyncio.gather(*(s.hit([ip, svc]) for _ in range(10) for s in (a, b)))
    assert sorted(c[0] for c in counts) == list(range(3, 23))
    clock.offset += 100  # next window starts from 1
    assert await a.hit([ip, svc, Counter("start_ip", "k2", 100)]) == [1, 1, 1]
    assert await a.hit([]) == []


async def test_audit_chain_appends_only_after_the_tail(make_store: StoreMaker) -> None:
    a, b = make_store(), make_store()
    assert await a.audit_tail() is None
    assert await a.audit_append([AuditEntry(2, "", "m1", "{}")]) == EMPTY_TAIL  # must start at 1
    assert await a.audit_append([AuditEntry(1, "x", "m1", "{}")]) == EMPTY_TAIL  # prev of the first is ""
    first = [AuditEntry(1, "", "m1", '{"n":1}'), AuditEntry(2, "m1", "m2", '{"n":2}')]
    assert await a.audit_append(first) is None
    # node b, not knowing about them, tries to append at seq 1 again: refused with the current tail
    assert await b.audit_append([AuditEntry(1, "", "zz", "{}")]) == first[1]
    assert await b.audit_tail() == first[1]
    assert await b.audit_append([AuditEntry(3, "m2", "m3", '{"n":3}')]) is None
    assert await a.audit_read() == [*first, AuditEntry(3, "m2", "m3", '{"n":3}')]
    assert [e.seq for e in await a.audit_read(after_seq=1, limit=1)] == [2]
    # racing appends of the same position: exactly one lands
    racers = await asyncio.gather(
        *(s.audit_append([AuditEntry(4, "m3", f"m4{i}", "{}")]) for i, s in enumerate((a, b) * 10))
    )
    assert racers.count(None) == 1
    assert all(r is None or r.seq == 4 for r in racers)
    assert len(await a.audit_read()) == 4


async def test_audit_trail_chains_across_nodes(make_store: StoreMaker) -> None:
    """Two nodes' trails writing concurrently produce one verifiable chain with every record."""
    from eid_gateway.audit import AuditTrail, verify_chain

    key = b"k" * 32
    trails = [AuditTrail(make_store(), key, backend="simulator") for _ in range(2)]
    await asyncio.gather(
        *(
            t.record(t.make(service="demo", frontend="saml", result="success", flow_ref=f"r{i}"))
            for i in range(40)
            for t in trails
        )
    )
    entries = await trails[0].store.audit_read(0, 1000)
    assert len(entries) == 80 and verify_chain(entries, key).ok
    assert sum(t.written for t in trails) == 80


async def test_sweep_removes_expired_only(store: Store, clock: FakeClock) -> None:
    await store.create_flow("short", "pending", {}, ttl=5)
    await store.create_flow("long", "pending", {}, ttl=500)
    await store.consume_once("n", "v", 5)
    await store.put_value("k", "v", "x", 5)
    clock.offset = 10
    assert await store.sweep() == 3
    assert await store.get_flow("long") is not None
    assert await store.sweep() == 0
    await store.create_flow("short", "pending", {}, ttl=5)  # the swept reference is free again


async def test_ping_and_closed_store(store: Store) -> None:
    await store.ping()
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()


async def test_bad_names_are_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.create_flow("r", "pending", {"bad key": 1}, ttl=60)
    with pytest.raises(ValueError):
        await store.transition("r", "a", "b", {'x"y': 1})
    with pytest.raises(ValueError):
        await store.hit([Counter("bad:ns", "k", 10)])
    with pytest.raises(ValueError):
        await store.consume_once("a:b", "v", 10)
    with pytest.raises(ValueError):
        await store.put_value("", "k", "v", 10)


# --- SQLite specifics ---------------------------------------------------------------------------------


async def test_sqlite_audit_table_is_append_only(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "a.sqlite3")
    assert await s.audit_append([AuditEntry(1, "", "m1", "{}")]) is None
    await s.close()
    conn = sqlite3.connect(tmp_path / "a.sqlite3")
    for sql in ("UPDATE audit SET body = 'x'", "DELETE FROM audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    conn.close()


async def test_wal_mode(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "w.sqlite3")
    await s.ping()
    await s.close()
    conn = sqlite3.connect(tmp_path / "w.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_event_loop_is_not_blocked(store: Store) -> None:
    """While 400 store operations run, a 5 ms ticker on the loop is never late by more than 50 ms."""
    await store.ping()
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
        await store.create_flow(f"f{i}", "pending", {"i": i, "pad": "x" * 500}, 60)
        await store.transition(f"f{i}", "pending", "card", {"session": "s"})
        await store.consume_once("n", f"v{i}", 60)
        await store.get_flow(f"f{i}")
    stop = True
    await task
    assert worst < 0.05, worst
