"""The small port that keeps each kiosk's last report across gateway restarts.

The gateway's `Store` is built for short-lived flow state (TTL records, one-time values; it has no
plain read), so kiosk state lives behind this port instead: one row per kiosk, overwritten on every
state change. `MemoryKioskStateStore` for tests and single runs, `SqliteKioskStateStore` for the
embedded default (its own table; may share the gateway's SQLite file).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredKiosk:
    kiosk_id: str
    status: dict[str, Any]  # snapshot_to_json form
    last_seen: float
    changed_at: float


class KioskStateStore(Protocol):
    async def load_all(self) -> list[StoredKiosk]: ...

    async def save(self, record: StoredKiosk) -> None: ...

    async def close(self) -> None: ...


class MemoryKioskStateStore:
    def __init__(self) -> None:
        self._rows: dict[str, StoredKiosk] = {}

    async def load_all(self) -> list[StoredKiosk]:
        return list(self._rows.values())

    async def save(self, record: StoredKiosk) -> None:
        self._rows[record.kiosk_id] = record

    async def close(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS kiosk_state (
    kiosk_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    last_seen REAL NOT NULL,
    changed_at REAL NOT NULL
) WITHOUT ROWID;
"""


class SqliteKioskStateStore:
    """One table; all work on one thread so the event loop never waits on disk."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiosk-state")
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _load(self) -> list[StoredKiosk]:
        rows = self._db().execute("SELECT kiosk_id, status, last_seen, changed_at FROM kiosk_state").fetchall()
        return [StoredKiosk(r[0], json.loads(r[1]), float(r[2]), float(r[3])) for r in rows]

    def _save(self, rec: StoredKiosk) -> None:
        self._db().execute(
            "INSERT INTO kiosk_state (kiosk_id, status, last_seen, changed_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(kiosk_id) DO UPDATE SET status=excluded.status, last_seen=excluded.last_seen, "
            "changed_at=excluded.changed_at",
            (rec.kiosk_id, json.dumps(rec.status, separators=(",", ":")), rec.last_seen, rec.changed_at),
        )

    async def load_all(self) -> list[StoredKiosk]:
        result: list[StoredKiosk] = await self._run(self._load)
        return result

    async def save(self, record: StoredKiosk) -> None:
        await self._run(self._save, record)

    async def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(_close)
        self._executor.shutdown(wait=True)
