"""SqliteRequestStore / SqliteReplayCache shared by separate OS processes (a service running several
workers): each issued request ID is consumed by exactly one of them, each assertion ID accepted by
exactly one, and expired entries are refused by all."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from saml.stores import SqliteReplayCache, SqliteRequestStore


def _later() -> datetime:
    """Five minutes from now, read when a test runs (never at import: a slow suite may reach the test
    minutes after collecting it)."""
    return datetime.now(UTC) + timedelta(minutes=5)


def _race(kind: str, path: str, items: Sequence[str], barrier: Barrier, out: Any, later: datetime) -> None:
    """One competing process: connect, wait for the others, then try every item once."""
    if kind == "consume":
        store = SqliteRequestStore(path)
        len(store)  # connected before the start signal
        barrier.wait(timeout=60)
        out.put([store.consume(item) for item in items])
    else:
        cache = SqliteReplayCache(path)
        len(cache)
        barrier.wait(timeout=60)
        out.put([cache.add_if_new(item, expires_at=later) for item in items])


def _run(kind: str, path: Path, items: Sequence[str], processes: int = 2) -> list[list[bool]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(kind, str(path), list(items), barrier, out, _later())) for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        answers: list[list[bool]] = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0] * processes
    return answers


def test_each_request_id_is_consumed_by_one_process(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = SqliteRequestStore(path)
    ids = [f"_r{i}" for i in range(300)]
    for request_id in ids:
        store.add(request_id, expires_at=_later())
    store.add("_expired", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    a, b = _run("consume", path, ids + ["_expired", "_unknown"])
    assert all(x != y for x, y in zip(a[:300], b[:300], strict=True))  # exactly one True per ID
    assert a[300:] == b[300:] == [False, False]
    assert len(store) == 0


def test_each_assertion_id_is_accepted_by_one_process(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    ids = [f"_a{i}" for i in range(300)]
    a, b = _run("assertion", path, ids)
    assert all(x != y for x, y in zip(a, b, strict=True))
    assert not SqliteReplayCache(path).add_if_new("_a7", expires_at=_later())
