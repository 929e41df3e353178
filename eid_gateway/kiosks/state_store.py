"""The port that keeps each kiosk's shared state, its history, and carries changes between nodes.

`SharedKioskStateStore` over the gateway's `Store` (SQLite file: several workers on one machine; Redis:
several nodes): per kiosk one versioned record written by compare-and-set, the history as a log per
kiosk, and a channel on which every node publishes what it wrote. `MemoryKioskStateStore` is the same
for one process (tests, and the kiosk app without a store).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Final, Protocol

from eid_gateway.kiosks.history import HistoryError, KioskEvent, event_from_json, event_to_json
from eid_gateway.store.base import LogEntry, Store, Versioned

__all__ = ["KioskEvent", "KioskStateStore", "MemoryKioskStateStore", "SharedKioskStateStore", "Versioned"]


class KioskStateStore(Protocol):
    async def get(self, kiosk_id: str) -> Versioned | None:
        """The kiosk's state (:func:`eid_gateway.kiosks.kiosk_state.state_to_json`) and its version."""
        ...

    async def put(self, kiosk_id: str, state: str, *, expected_version: int, message: str) -> int | None:
        """Compare-and-set (0: not there yet); the new version, or None when another write came first.
        ``message`` goes to every node (:meth:`changes`) in the same step when the state was written."""
        ...

    async def load_all(self) -> dict[str, Versioned]: ...

    def changes(self) -> AsyncIterator[str]:
        """The messages of :meth:`put` on any node from now on (StoreError when the store is lost)."""
        ...

    async def add_history(self, kiosk_id: str, events: Sequence[KioskEvent]) -> None: ...

    async def kiosk_history(self, kiosk_id: str, *, since: float, limit: int = 1000) -> list[KioskEvent]:
        """The newest ``limit`` events of one kiosk at or after ``since`` (seconds since the epoch),
        oldest first. Entries this version cannot read are skipped."""
        ...

    async def prune_history(self, before: float) -> int:
        """Delete every kiosk's events older than ``before``; how many went."""
        ...

    async def close(self) -> None: ...


class MemoryKioskStateStore:
    """One process: dicts and an in-memory fan-out."""

    def __init__(self) -> None:
        self._rows: dict[str, Versioned] = {}
        self._history: dict[str, list[KioskEvent]] = {}
        self._listeners: set[asyncio.Queue[str]] = set()

    async def get(self, kiosk_id: str) -> Versioned | None:
        return self._rows.get(kiosk_id)

    async def put(self, kiosk_id: str, state: str, *, expected_version: int, message: str) -> int | None:
        cur = self._rows.get(kiosk_id)
        if (cur.version if cur is not None else 0) != expected_version:
            return None
        self._rows[kiosk_id] = Versioned(state, expected_version + 1)
        for q in self._listeners:
            q.put_nowait(message)
        return expected_version + 1

    async def load_all(self) -> dict[str, Versioned]:
        return dict(self._rows)

    async def changes(self) -> AsyncIterator[str]:
        q: asyncio.Queue[str] = asyncio.Queue()
        self._listeners.add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._listeners.discard(q)

    async def add_history(self, kiosk_id: str, events: Sequence[KioskEvent]) -> None:
        self._history.setdefault(kiosk_id, []).extend(events)

    async def kiosk_history(self, kiosk_id: str, *, since: float, limit: int = 1000) -> list[KioskEvent]:
        events = sorted((e for e in self._history.get(kiosk_id, []) if e.at >= since), key=lambda e: e.at)
        return events[-limit:] if limit > 0 else []

    async def prune_history(self, before: float) -> int:
        n = 0
        for kid, events in self._history.items():
            keep = [e for e in events if e.at >= before]
            n += len(events) - len(keep)
            self._history[kid] = keep
        return n

    async def close(self) -> None:
        return None


class SharedKioskStateStore:
    """Kiosk states, history and change messages in the gateway's own `Store`, so that every node and
    worker on that store (SQLite file or Redis) sees the same kiosks and history."""

    NAMESPACE: Final = "kiosk"
    HISTORY: Final = "kiosk_history"
    CHANNEL: Final = "kiosks"

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, kiosk_id: str) -> Versioned | None:
        return await self._store.get_versioned(self.NAMESPACE, kiosk_id)

    async def put(self, kiosk_id: str, state: str, *, expected_version: int, message: str) -> int | None:
        return await self._store.put_versioned(
            self.NAMESPACE, kiosk_id, state, expected_version=expected_version, publish=(self.CHANNEL, message)
        )

    async def load_all(self) -> dict[str, Versioned]:
        return await self._store.all_versioned(self.NAMESPACE)

    def changes(self) -> AsyncIterator[str]:
        return self._store.listen(self.CHANNEL)

    async def add_history(self, kiosk_id: str, events: Sequence[KioskEvent]) -> None:
        await self._store.log_append(self.HISTORY, kiosk_id, [LogEntry(e.at, event_to_json(e)) for e in events])

    async def kiosk_history(self, kiosk_id: str, *, since: float, limit: int = 1000) -> list[KioskEvent]:
        out = []
        for entry in await self._store.log_read(self.HISTORY, kiosk_id, since=since, limit=limit):
            try:
                out.append(event_from_json(entry.body))
            except HistoryError:
                continue
        return out

    async def prune_history(self, before: float) -> int:
        return await self._store.log_prune(self.HISTORY, before)

    async def close(self) -> None:
        return None  # the gateway owns and closes the store
