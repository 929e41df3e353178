"""The two pieces of state a relying service needs for SAML: issued requests and seen assertion IDs.

Both are Protocols so that a deployment can put them in a shared database (several nodes must not both
accept one response); the package itself is sans-I/O, so the Protocols are synchronous. The in-memory
implementations are thread-safe and forget entries once they expire; the SQLite ones (stdlib
``sqlite3``, one local file in WAL mode) give the same answers to several processes of one machine,
each operation being one statement or one short ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol, runtime_checkable


def _now() -> datetime:
    return datetime.now(UTC)


def _check_aware(*times: datetime) -> None:
    if any(t.tzinfo is None for t in times):
        raise ValueError("store times must be timezone-aware")


@runtime_checkable
class RequestStore(Protocol):
    """Outstanding AuthnRequest IDs, each answerable exactly once."""

    def add(self, request_id: str, *, expires_at: datetime) -> None:
        """Remember an issued request until ``expires_at``."""

    def consume(self, request_id: str, *, now: datetime | None = None) -> bool:
        """Atomically forget ``request_id``; True only if it was known and not expired."""


@runtime_checkable
class ReplayCache(Protocol):
    """One-time identifiers (assertion IDs) seen so far, kept until they could no longer be accepted."""

    def add_if_new(self, identifier: str, *, expires_at: datetime, now: datetime | None = None) -> bool:
        """Atomically record ``identifier``; False if it was already recorded and has not expired."""


class _ExpiringSet:
    """A dict of identifier -> expiry guarded by one lock, purged of expired entries as it is used."""

    def __init__(self, max_entries: int) -> None:
        self._entries: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def _purge(self, now: datetime) -> None:
        expired = [k for k, exp in self._entries.items() if exp <= now]
        for key in expired:
            del self._entries[key]

    def insert(self, key: str, expires_at: datetime, now: datetime, *, only_new: bool) -> bool:
        _check_aware(expires_at, now)
        with self._lock:
            current = self._entries.get(key)
            if only_new and current is not None and current > now:
                return False
            if len(self._entries) >= self._max:
                self._purge(now)
                if len(self._entries) >= self._max:
                    # Refusing is safer than evicting: an evicted assertion ID could be replayed.
                    raise OverflowError("store is full")
            self._entries[key] = expires_at
            return True

    def pop(self, key: str, now: datetime) -> bool:
        with self._lock:
            expiry = self._entries.pop(key, None)
            return expiry is not None and expiry > now

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class InMemoryRequestStore:
    """A :class:`RequestStore` for one process."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._set = _ExpiringSet(max_entries)

    def add(self, request_id: str, *, expires_at: datetime) -> None:
        self._set.insert(request_id, expires_at, _now(), only_new=False)

    def consume(self, request_id: str, *, now: datetime | None = None) -> bool:
        return self._set.pop(request_id, now or _now())

    def __len__(self) -> int:
        return len(self._set)


class InMemoryReplayCache:
    """A :class:`ReplayCache` for one process."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._set = _ExpiringSet(max_entries)

    def add_if_new(self, identifier: str, *, expires_at: datetime, now: datetime | None = None) -> bool:
        return self._set.insert(identifier, expires_at, now or _now(), only_new=True)

    def __len__(self) -> int:
        return len(self._set)


#: What SQLite keeps beside a database in WAL mode (it creates them with the database file's mode).
SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")


def owner_only_sqlite(path: Path | str) -> None:
    """Create the database file readable by its owner only, and tighten one (and its WAL / shared
    memory files) that an older version or another umask left readable by others."""
    if str(path) == ":memory:":
        return
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for name in ("", *SQLITE_SIDE_FILES):
        try:
            if os.stat(f"{path}{name}").st_mode & 0o077:
                os.chmod(f"{path}{name}", 0o600)
        except FileNotFoundError:
            pass


def open_shared_sqlite(path: Path | str, schema: str, *, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """A connection (autocommit, usable from any one thread at a time) to a SQLite file that several
    processes share: WAL, ``synchronous=NORMAL``, a busy timeout, ``schema`` created if missing.

    The files are their owner's only, and ``secure_delete`` overwrites deleted rows with zeros, so that
    what was deleted (one-time values, personal data after hand-over) is not left in free pages; the
    WAL keeps old page images until a ``wal_checkpoint(TRUNCATE)`` (see :func:`truncate_wal`)."""
    owner_only_sqlite(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout)
    # Switching to WAL and creating the schema can meet another process doing the same; SQLite then
    # answers "locked" without calling the busy handler, so retry for a short while.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA secure_delete=ON")
            conn.executescript(schema)
            return conn
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(0.01)


def truncate_wal(conn: sqlite3.Connection) -> bool:
    """Copy the WAL into the database and truncate it to zero bytes, so that the old page images it held
    (rows since deleted) leave the disk; ``False`` when readers kept it from completing (try later)."""
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy


class SqliteFile:
    """One SQLite file shared by the processes of one machine: WAL, a busy timeout, ``schema`` created
    on first use, one connection per process (opened lazily, so an object made before a fork serves the
    children too) used under a lock by one thread at a time. The file is created readable by its owner
    only."""

    def __init__(self, path: Path | str, schema: str, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._schema = schema
        self._timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = open_shared_sqlite(self.path, self._schema, busy_timeout=self._timeout)
        self._conn, self._pid = conn, os.getpid()
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The connection in autocommit mode: each statement is atomic on its own."""
        with self._lock:
            yield self._connect()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` (the write lock first, so no other process can interleave) to COMMIT;
        ROLLBACK when the block raises."""
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


class _SqliteExpiringSet:
    """:class:`_ExpiringSet` in table ``table`` of a :class:`SqliteFile` (expiry as epoch seconds)."""

    def __init__(self, path: Path | str, table: str, max_entries: int) -> None:
        self._t = table
        self._max = max_entries
        self.db = SqliteFile(
            path,
            f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, expires REAL NOT NULL);"
            f"CREATE INDEX IF NOT EXISTS {table}_expires ON {table} (expires);",
        )

    def insert(self, key: str, expires_at: datetime, now: datetime, *, only_new: bool) -> bool:
        _check_aware(expires_at, now)
        t, ts = self._t, now.timestamp()
        with self.db.transaction() as c:
            if only_new:
                row = c.execute(f"SELECT expires FROM {t} WHERE id = ?", (key,)).fetchone()
                if row is not None and row[0] > ts:
                    return False
            (count,) = c.execute(f"SELECT count(*) FROM {t}").fetchone()
            if count >= self._max:
                c.execute(f"DELETE FROM {t} WHERE expires <= ?", (ts,))
                (count,) = c.execute(f"SELECT count(*) FROM {t}").fetchone()
            full = count >= self._max
            if not full:
                c.execute(f"INSERT OR REPLACE INTO {t} (id, expires) VALUES (?, ?)", (key, expires_at.timestamp()))
        if full:  # after COMMIT, so that the purge above stays done
            # Refusing is safer than evicting: an evicted assertion ID could be replayed.
            raise OverflowError("store is full")
        return True

    def pop(self, key: str, now: datetime) -> bool:
        _check_aware(now)
        with self.db.connection() as c:
            row = c.execute(f"DELETE FROM {self._t} WHERE id = ? RETURNING expires", (key,)).fetchone()
        return row is not None and bool(row[0] > now.timestamp())

    def __len__(self) -> int:
        with self.db.connection() as c:
            (count,) = c.execute(f"SELECT count(*) FROM {self._t}").fetchone()
        return int(count)


class SqliteRequestStore:
    """A :class:`RequestStore` in a SQLite file, shared by the service's processes on one machine."""

    def __init__(self, path: Path | str, max_entries: int = 100_000) -> None:
        self._set = _SqliteExpiringSet(path, "saml_requests", max_entries)

    def add(self, request_id: str, *, expires_at: datetime) -> None:
        self._set.insert(request_id, expires_at, _now(), only_new=False)

    def consume(self, request_id: str, *, now: datetime | None = None) -> bool:
        return self._set.pop(request_id, now or _now())

    def close(self) -> None:
        self._set.db.close()

    def __len__(self) -> int:
        return len(self._set)


class SqliteReplayCache:
    """A :class:`ReplayCache` in a SQLite file, shared by the service's processes on one machine."""

    def __init__(self, path: Path | str, max_entries: int = 1_000_000) -> None:
        self._set = _SqliteExpiringSet(path, "saml_seen_ids", max_entries)

    def add_if_new(self, identifier: str, *, expires_at: datetime, now: datetime | None = None) -> bool:
        return self._set.insert(identifier, expires_at, now or _now(), only_new=True)

    def close(self) -> None:
        self._set.db.close()

    def __len__(self) -> int:
        return len(self._set)
