"""The embedded default :class:`~eid_gateway.store.base.Store`: one SQLite file in WAL mode.

Each operation is a single SQL statement (an UPSERT with a condition, or an UPDATE/DELETE with
``RETURNING``) or one short ``BEGIN IMMEDIATE`` transaction, so it is atomic even when several
processes share the file. The audit trail is a table that triggers keep append-only. All database work runs on
one dedicated thread, so the event loop never waits on disk I/O; the connection is used from that
thread only.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

from eid_gateway.store.base import (
    EMPTY_TAIL,
    AuditEntry,
    Counter,
    FlowExists,
    FlowRecord,
    LogEntry,
    OnceClaim,
    StoreError,
    Versioned,
    check_names,
    window_index,
)
from saml.stores import open_shared_sqlite, truncate_wal

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
CREATE TABLE IF NOT EXISTS counters (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    win INTEGER NOT NULL,
    n INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (ns, key, win)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS counters_expiry ON counters(expires_at);
CREATE TABLE IF NOT EXISTS maps (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versioned (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_key ON logs(ns, key, at);
CREATE INDEX IF NOT EXISTS logs_age ON logs(ns, at);
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    at REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    prev TEXT NOT NULL,
    mac TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TABLE IF NOT EXISTS audit_tail (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq INTEGER NOT NULL,
    mac TEXT NOT NULL
);
"""

_FLOW_COLUMNS = "ref, state, data, version, expires_at"


def _record(row: tuple[Any, ...] | None) -> FlowRecord | None:
    if row is None:
        return None
    ref, state, data, version, expires_at = row
    return FlowRecord(ref, state, json.loads(data), int(version), float(expires_at))


def _json(data: Mapping[str, Any]) -> str:
    return json.dumps(dict(data), separators=(",", ":"), sort_keys=True)


def _merge_sql(changes: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """SQL for the top-level merge of ``changes`` into the ``data`` column, with its parameters."""
    sets: list[Any] = []
    removes: list[str] = []
    check_names("flow data key", changes)
    for key, value in changes.items():
        if value is None:
            removes.append(f'$."{key}"')
        else:
            sets.extend([f'$."{key}"', json.dumps(value, separators=(",", ":"), sort_keys=True)])
    expr, params = "data", []
    if sets:
        expr = "json_set(data" + ", ?, json(?)" * (len(sets) // 2) + ")"
        params.extend(sets)
    if removes:
        expr = f"json_remove({expr}" + ", ?" * len(removes) + ")"
        params.extend(removes)
    return expr, params


#: how long a published message stays in the notices table (listeners poll far more often)
NOTICE_SECONDS: Final = 300.0


@contextmanager
def _immediate(c: sqlite3.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction around the block: committed at its end unless the block rolled
    it back itself (a compare-and-set that found nothing to do), rolled back on any exception."""
    c.execute("BEGIN IMMEDIATE")
    try:
        yield
        if c.in_transaction:
            c.execute("COMMIT")
    except BaseException:
        if c.in_transaction:
            c.execute("ROLLBACK")
        raise


class SqliteStore:
    """SQLite store. ``path`` may be ``":memory:"`` for tests (then it is not shared between processes).

    :meth:`publish` / :meth:`listen` work across the processes sharing the file: a message is a row of
    ``notices`` and each listener polls for new rows every ``listen_interval`` seconds (one indexed
    query), so a message reaches the other processes within that interval plus a write."""

    def __init__(
        self, path: Path | str, *, clock: Callable[[], float] = time.time, listen_interval: float = 0.1
    ) -> None:
        self._path = str(path)
        self.listen_interval = listen_interval
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        #: Operations run (each one statement or one short transaction); exported as a metric.
        self.round_trips = 0

    # --- plumbing ---------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = open_shared_sqlite(self._path, _SCHEMA, busy_timeout=5.0)
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, count: bool = True) -> T:
        if self._closed:
            raise StoreError("store is closed")
        if count:  # a listener's polls are not requests of the node's work
            self.round_trips += 1

        def job() -> T:
            return fn(self._connect())

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, job)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {type(exc).__name__}") from exc

    # --- flows --------------------------------------------------------------------------------------------

    async def create_flow(self, ref: str, state: str, data: Mapping[str, Any], ttl: float) -> FlowRecord:
        check_names("flow data key", data)
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
                c.execute(f"SELECT {_FLOW_COLUMNS} FROM flows WHERE ref = ? AND expires_at > ?", (ref, now)).fetchone()
            )
        )

    async def update_flow(self, ref: str, data: Mapping[str, Any], *, expected_version: int) -> FlowRecord | None:
        check_names("flow data key", data)
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
        *,
        once: OnceClaim | None = None,
    ) -> FlowRecord | None:
        now = self._clock()
        expr, params = _merge_sql(changes or {})
        sql = (
            f"UPDATE flows SET state = ?, data = {expr}, version = version + 1"
            " WHERE ref = ? AND state = ? AND expires_at > ?"
            f" RETURNING {_FLOW_COLUMNS}"
        )
        args = (to_state, *params, ref, from_state, now)
        if once is None:
            return await self._run(lambda c: _record(c.execute(sql, args).fetchone()))

        def op(c: sqlite3.Connection) -> FlowRecord | None:
            with _immediate(c):
                moved = _record(c.execute(sql, args).fetchone())
                if moved is None or not self._claim(c, once.namespace, once.value, once.ttl, now):
                    c.execute("ROLLBACK")
                    return None
                return moved

        return await self._run(op)

    # --- one-time values -------------------------------------------------------------------------------------

    @staticmethod
    def _claim(c: sqlite3.Connection, namespace: str, value: str, ttl: float, now: float) -> bool:
        cur = c.execute(
            "INSERT INTO once_values (ns, value, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (ns, value) DO UPDATE SET expires_at = excluded.expires_at"
            " WHERE once_values.expires_at <= ?",
            (namespace, value, now + ttl, now),
        )
        return cur.rowcount == 1

    async def consume_once(self, namespace: str, value: str, ttl: float) -> bool:
        check_names("namespace", (namespace,))
        now = self._clock()
        return await self._run(lambda c: self._claim(c, namespace, value, ttl, now))

    async def put_value(self, namespace: str, key: str, value: str, ttl: float) -> None:
        check_names("namespace", (namespace,))
        expires = self._clock() + ttl

        def op(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO kv (ns, key, value, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                (namespace, key, value, expires),
            )

        await self._run(op)

    async def get_value(self, namespace: str, key: str) -> str | None:
        now = self._clock()

        def op(c: sqlite3.Connection) -> str | None:
            row = c.execute(
                "SELECT value FROM kv WHERE ns = ? AND key = ? AND expires_at > ?", (namespace, key, now)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(op)

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

    # --- small durable maps ----------------------------------------------------------------------------------

    async def map_set(self, namespace: str, key: str, value: str) -> None:
        check_names("namespace", (namespace,))
        await self._run(
            lambda c: c.execute(
                "INSERT INTO maps (ns, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
                (namespace, key, value),
            )
        )

    async def map_all(self, namespace: str) -> dict[str, str]:
        rows = await self._run(lambda c: c.execute("SELECT key, value FROM maps WHERE ns = ?", (namespace,)).fetchall())
        return {str(k): str(v) for k, v in rows}

    async def map_delete(self, namespace: str, key: str) -> bool:
        return await self._run(
            lambda c: c.execute("DELETE FROM maps WHERE ns = ? AND key = ?", (namespace, key)).rowcount == 1
        )

    # --- versioned maps, logs, notices ---------------------------------------------------------------------

    async def get_versioned(self, namespace: str, key: str) -> Versioned | None:
        def op(c: sqlite3.Connection) -> Versioned | None:
            row = c.execute(
                "SELECT value, version FROM versioned WHERE ns = ? AND key = ?", (namespace, key)
            ).fetchone()
            return None if row is None else Versioned(str(row[0]), int(row[1]))

        return await self._run(op)

    async def put_versioned(
        self, namespace: str, key: str, value: str, *, expected_version: int, publish: tuple[str, str] | None = None
    ) -> int | None:
        check_names("namespace", (namespace,))
        if publish is not None:
            check_names("channel", (publish[0],))
        now = self._clock()

        def op(c: sqlite3.Connection) -> int | None:
            with _immediate(c):
                if expected_version == 0:
                    cur = c.execute(
                        "INSERT INTO versioned (ns, key, version, value) VALUES (?, ?, 1, ?) ON CONFLICT DO NOTHING",
                        (namespace, key, value),
                    )
                else:
                    cur = c.execute(
                        "UPDATE versioned SET value = ?, version = version + 1"
                        " WHERE ns = ? AND key = ? AND version = ?",
                        (value, namespace, key, expected_version),
                    )
                written = cur.rowcount == 1
                if written and publish is not None:
                    c.execute(
                        "INSERT INTO notices (channel, at, message) VALUES (?, ?, ?)", (publish[0], now, publish[1])
                    )
            return expected_version + 1 if written else None

        return await self._run(op)

    async def all_versioned(self, namespace: str) -> dict[str, Versioned]:
        rows = await self._run(
            lambda c: c.execute("SELECT key, value, version FROM versioned WHERE ns = ?", (namespace,)).fetchall()
        )
        return {str(k): Versioned(str(v), int(n)) for k, v, n in rows}

    async def log_append(self, namespace: str, key: str, entries: Sequence[LogEntry]) -> None:
        check_names("namespace", (namespace,))
        if not entries:
            return
        rows = [(namespace, key, e.at, e.body) for e in entries]
        await self._run(lambda c: c.executemany("INSERT INTO logs (ns, key, at, body) VALUES (?, ?, ?, ?)", rows))

    async def log_read(self, namespace: str, key: str, *, since: float, limit: int) -> list[LogEntry]:
        def op(c: sqlite3.Connection) -> list[LogEntry]:
            rows = c.execute(
                "SELECT at, body FROM logs WHERE ns = ? AND key = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?",
                (namespace, key, since, max(0, limit)),
            ).fetchall()
            return [LogEntry(float(at), str(body)) for at, body in reversed(rows)]

        return await self._run(op)

    async def log_prune(self, namespace: str, before: float) -> int:
        return await self._run(
            lambda c: c.execute("DELETE FROM logs WHERE ns = ? AND at < ?", (namespace, before)).rowcount
        )

    async def publish(self, channel: str, message: str) -> None:
        check_names("channel", (channel,))
        now = self._clock()
        await self._run(
            lambda c: c.execute("INSERT INTO notices (channel, at, message) VALUES (?, ?, ?)", (channel, now, message))
        )

    async def listen(self, channel: str) -> AsyncIterator[str]:
        """Polls ``notices`` (see the class); starts after the newest row present when called."""
        check_names("channel", (channel,))
        last = await self._run(lambda c: int(c.execute("SELECT COALESCE(MAX(id), 0) FROM notices").fetchone()[0]))

        def op(c: sqlite3.Connection) -> list[tuple[int, str]]:
            rows = c.execute(
                "SELECT id, message FROM notices WHERE id > ? AND channel = ? ORDER BY id LIMIT 1000",
                (last, channel),
            ).fetchall()
            return [(int(i), str(m)) for i, m in rows]

        while True:
            rows = await self._run(op, count=False)
            for i, message in rows:
                last = i
                yield message
            if not rows:
                await asyncio.sleep(self.listen_interval)

    # --- rate-limit counters -------------------------------------------------------------------------------

    async def hit(self, counters: Sequence[Counter]) -> list[int]:
        check_names("namespace", (c.namespace for c in counters))
        now = self._clock()
        rows = [
            (c.namespace, c.key, window_index(now, c.window), (window_index(now, c.window) + 1) * c.window)
            for c in counters
        ]

        def op(c: sqlite3.Connection) -> list[int]:
            out: list[int] = []
            with _immediate(c):
                for row in rows:
                    out.append(
                        int(
                            c.execute(
                                "INSERT INTO counters (ns, key, win, n, expires_at) VALUES (?, ?, ?, 1, ?)"
                                " ON CONFLICT (ns, key, win) DO UPDATE SET n = n + 1 RETURNING n",
                                row,
                            ).fetchone()[0]
                        )
                    )
            return out

        return await self._run(op)

    # --- audit trail ----------------------------------------------------------------------------------------

    @staticmethod
    def _tail(c: sqlite3.Connection) -> AuditEntry | None:
        """The high-water mark (the highest record ever appended), with that record if it still exists:
        deleting the newest records leaves the mark behind, so verification sees they are missing."""
        mark = c.execute("SELECT seq, mac FROM audit_tail WHERE one = 1").fetchone()
        if mark is None:
            return None
        row = c.execute("SELECT prev, body FROM audit WHERE seq = ?", (mark[0],)).fetchone()
        prev, body = (str(row[0]), str(row[1])) if row is not None else ("", "")
        return AuditEntry(int(mark[0]), prev, str(mark[1]), body)

    async def audit_tail(self) -> AuditEntry | None:
        return await self._run(self._tail)

    async def audit_append(self, entries: Sequence[AuditEntry]) -> AuditEntry | None:
        if not entries:
            return None

        def op(c: sqlite3.Connection) -> AuditEntry | None:
            with _immediate(c):
                tail = self._tail(c) or EMPTY_TAIL
                if entries[0].seq != tail.seq + 1 or entries[0].prev != tail.mac:
                    c.execute("ROLLBACK")
                    return tail
                c.executemany(
                    "INSERT INTO audit (seq, prev, mac, body) VALUES (?, ?, ?, ?)",
                    [(e.seq, e.prev, e.mac, e.body) for e in entries],
                )
                c.execute(
                    "INSERT INTO audit_tail (one, seq, mac) VALUES (1, ?, ?)"
                    " ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, mac = excluded.mac",
                    (entries[-1].seq, entries[-1].mac),
                )
                return None

        return await self._run(op)

    async def audit_read(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        def op(c: sqlite3.Connection) -> list[AuditEntry]:
            rows = c.execute(
                "SELECT seq, prev, mac, body FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
            return [AuditEntry(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

        return await self._run(op)

    # --- housekeeping -----------------------------------------------------------------------------------------

    async def sweep(self) -> int:
        now = self._clock()

        def op(c: sqlite3.Connection) -> int:
            total = 0
            for table in ("flows", "once_values", "kv", "counters"):
                total += c.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,)).rowcount
            total += c.execute("DELETE FROM notices WHERE at <= ?", (now - NOTICE_SECONDS,)).rowcount
            if self._path != ":memory:":
                truncate_wal(c)  # what was deleted since the last sweep leaves the WAL too
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
