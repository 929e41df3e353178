"""The embedded default :class:`~eid_gateway.store.base.Store`: one SQLite file in WAL mode.

Each operation is a single SQL statement (an UPSERT with a condition, or an UPDATE/DELETE with
``RETURNING``), so it is atomic even when several processes share the file. All database work runs on
one dedicated thread, so the event loop never waits on disk I/O; the connection is used from that
thread only.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from eid_gateway.store.base import FlowExists, FlowRecord, StoreError

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flows (
    ref TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS flows_expiry ON flows(expires_at);
CREATE TABLE IF NOT EXISTS once_values (
    ns TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (ns, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS once_expiry ON once_values(expires_at);
CREATE TABLE IF NOT EXISTS kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expiry ON kv(expires_at);
"""

_FLOW_COLUMNS = "ref, state, data, version, expires_at"


def _record(row: tuple[Any, ...] | None) -> FlowRecord | None:
    if row is None:
        return None
    ref, state, data, version, expires_at = row
    return FlowRecord(ref, state, json.loads(data), int(version), float(expires_at))


def _json(data: Mapping[str, Any]) -> str:
    return json.dumps(dict(data), separators=(",", ":"), sort_keys=True)


class SqliteStore:
    """SQLite store. ``path`` may be ``":memory:"`` for tests (then it is not shared between processes)."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self._path = str(path)
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    # --- plumbing ---------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=5.0)
            # Switching to WAL and creating the schema can meet another process doing the same; SQLite
            # then answers "locked" without calling the busy handler, so retry for a short while.
            deadline = time.monotonic() + 5.0
            while True:
                try:
                    conn.execute("PRAGMA busy_timeout=5000")
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                    conn.executescript(_SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        conn.close()
                        raise
                    time.sleep(0.01)
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError("store is closed")

        def job() -> T:
            return fn(self._connect())

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, job)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {type(exc).__name__}") from exc

    # --- flows --------------------------------------------------------------------------------------------

    async def create_flow(self, ref: str, state: str, data: Mapping[str, Any], ttl: float) -> FlowRecord:
        expires = self._clock() + ttl
        payload = _json(data)

        def op(c: sqlite3.Connection) -> bool:
            try:
                c.execute(
                    "INSERT INTO flows (ref, state, data, version, expires_at) VALUES (?, ?, ?, 1, ?)",
                    (ref, state, payload, expires),
                )
            except sqlite3.IntegrityError:
                return False
            return True

        if not await self._run(op):
            raise FlowExists("flow reference already in use")
        return FlowRecord(ref, state, json.loads(payload), 1, expires)

    async def get_flow(self, ref: str) -> FlowRecord | None:
        now = self._clock()
        return await self._run(
            lambda c: _record(
                c.execute(
                    f"SELECT {_FLOW_COLUMNS} FROM flows WHERE ref = ? AND expires_at > ?", (ref, now)
                ).fetchone()
            )
        )

    async def update_flow(
        self, ref: str, data: Mapping[str, Any], *, expected_version: int
    ) -> FlowRecord | None:
        now = self._clock()
        payload = _json(data)
        return await self._run(
            lambda c: _record(
                c.execute(
                    "UPDATE flows SET data = ?, version = version + 1"
                    " WHERE ref = ? AND version = ? AND expires_at > ?"
                    f" RETURNING {_FLOW_COLUMNS}",
                    (payload, ref, expected_version, now),
                ).fetchone()
            )
        )

    async def transition(
        self,
        ref: str,
        from_state: str,
        to_state: str,
        changes: Mapping[str, Any] | None = None,
    ) -> FlowRecord | None:
        now = self._clock()
        # json_patch is RFC 7396 merge-patch: keys in ``changes`` replace, ``None`` removes a key.
        patch = _json(changes or {})
        return await self._run(
            lambda c: _record(
                c.execute(
                    "UPDATE flows SET state = ?, data = json_patch(data, ?), version = version + 1"
                    " WHERE ref = ? AND state = ? AND expires_at > ?"
                    f" RETURNING {_FLOW_COLUMNS}",
                    (to_state, patch, ref, from_state, now),
                ).fetchone()
            )
        )

    # --- one-time values -------------------------------------------------------------------------------------

    async def consume_once(self, namespace: str, value: str, ttl: float) -> bool:
        now = self._clock()

        def op(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "INSERT INTO once_values (ns, value, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (ns, value) DO UPDATE SET expires_at = excluded.expires_at"
                " WHERE once_values.expires_at <= ?",
                (namespace, value, now + ttl, now),
            )
            return cur.rowcount == 1

        return await self._run(op)

    async def put_value(self, namespace: str, key: str, value: str, ttl: float) -> None:
        expires = self._clock() + ttl

        def op(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO kv (ns, key, value, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                (namespace, key, value, expires),
            )

        await self._run(op)

    async def take_value(self, namespace: str, key: str) -> str | None:
        now = self._clock()

        def op(c: sqlite3.Connection) -> str | None:
            row = c.execute(
                "DELETE FROM kv WHERE ns = ? AND key = ? RETURNING value, expires_at", (namespace, key)
            ).fetchone()
            if row is None or float(row[1]) <= now:
                return None
            return str(row[0])

        return await self._run(op)

    # --- housekeeping -----------------------------------------------------------------------------------------

    async def sweep(self) -> int:
        now = self._clock()

        def op(c: sqlite3.Connection) -> int:
            total = 0
            for table in ("flows", "once_values", "kv"):
                total += c.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,)).rowcount
            return total

        return await self._run(op)

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._closed:
            return

        def op() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, op)
        self._closed = True
        self._executor.shutdown(wait=True)
