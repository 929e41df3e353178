"""Which kiosks are on the dashboard: the configured ones (the config file, re-read by reload.py) minus
those an admin removed from the board (the gateway's shared store, so every node agrees).

Why removing also voids the kiosk's credential: a Bürgerbüro removes a kiosk from the board when its
PC is decommissioned, replaced or stolen; a token that still worked would let that PC report (or a
thief pretend to be a kiosk). The removal names the credential hash it voided, so IT brings the
kiosk back by issuing a new credential (``eid-gateway kiosk-credential new``): a different hash in the
config is not removed. Each process re-reads the removals once per tick (1 s), the process that
handled the action at once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Final

from eid_gateway.kiosks.auth import StaffAuth
from eid_gateway.kiosks.registry import KioskRegistry
from eid_gateway.kiosks.reload import use_kiosks
from eid_gateway.kiosks.settings import KioskEntry, KioskSettings
from eid_gateway.store.base import Store

NAMESPACE: Final = "kiosk_removed"


class Board:
    def __init__(self, configured: KioskSettings, registry: KioskRegistry, staff: StaffAuth, store: Store) -> None:
        self.configured = configured
        self.registry = registry
        self.staff = staff
        self.store = store
        #: kiosk id -> the credential hash that was voided with its removal
        self.removed: dict[str, str] = {}

    def active(self) -> KioskSettings:
        kiosks = tuple(k for k in self.configured.kiosks if self.removed.get(k.id) != k.credential_hash)
        return replace(self.configured, kiosks=kiosks)

    def configure(self, settings: KioskSettings) -> None:
        """New settings from the config file (reload.py): kiosks, staff accounts, scrape token."""
        self.configured = settings
        self.staff.use_accounts(settings.staff_accounts(), settings.metrics_token_hash)
        use_kiosks(self.registry, self.active())

    async def sync(self) -> None:
        """Take removals made on any node (at start and once per tick)."""
        rows = await self.store.map_all(NAMESPACE)
        removed = {}
        for kiosk_id, text in rows.items():
            try:
                removed[kiosk_id] = str(json.loads(text)["credential_hash"])
            except (ValueError, KeyError, TypeError):
                continue  # damaged or from another version: not a removal
        if removed != self.removed:
            self.removed = removed
            use_kiosks(self.registry, self.active())

    def entry(self, kiosk_id: str) -> KioskEntry | None:
        """The kiosk as it is on the board now (None: not configured, or removed)."""
        rec = self.registry.records.get(kiosk_id)
        return rec.entry if rec is not None else None

    async def remove(self, entry: KioskEntry, at: float) -> None:
        """Remove *entry* from the board on every node and void its credential."""
        row = {"credential_hash": entry.credential_hash, "at": at}
        await self.store.map_set(NAMESPACE, entry.id, json.dumps(row, separators=(",", ":")))
        self.removed[entry.id] = entry.credential_hash
        use_kiosks(self.registry, self.active())
