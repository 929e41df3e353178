"""The small port that keeps each kiosk's last report across gateway restarts.

One entry per kiosk, overwritten on every state change. `MemoryKioskStateStore` for tests and single
runs, `SharedKioskStateStore` over the gateway's `Store` (its durable maps) for the gateway itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from eid_gateway.store.base import Store


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


class SharedKioskStateStore:
    """Kiosk states in the gateway's own `Store` (a durable map), so that they survive restarts and
    every node on a shared store (SQLite file or Redis) sees the same last states."""

    NAMESPACE = "kiosk_state"

    def __init__(self, store: Store) -> None:
        self._store = store

    async def load_all(self) -> list[StoredKiosk]:
        rows = await self._store.map_all(self.NAMESPACE)
        out = []
        for kiosk_id, text in rows.items():
            row = json.loads(text)
            out.append(StoredKiosk(kiosk_id, row["status"], float(row["last_seen"]), float(row["changed_at"])))
        return out

    async def save(self, record: StoredKiosk) -> None:
        row = {"status": record.status, "last_seen": record.last_seen, "changed_at": record.changed_at}
        await self._store.map_set(self.NAMESPACE, record.kiosk_id, json.dumps(row, separators=(",", ":")))

    async def close(self) -> None:
        return None  # the gateway owns and closes the store
