"""Each node's view of every kiosk's state, staleness, and fan-out of changes to its dashboards.

The state itself is shared (:mod:`eid_gateway.kiosks.kiosk_state`, kept in the gateway's store and
changed by compare-and-set in :mod:`eid_gateway.kiosks.service`); this registry holds the newest
version this node has seen, applied from its own writes and from what the other nodes publish. A
version older than the one held is ignored, so messages arriving late or twice change nothing.

Liveness: a kiosk is ``offline`` when its agent announced a clean stop, or when a heartbeat is missed
(silent for longer than :attr:`KioskSettings.stale_after_seconds`), decided from the shared
``last_seen`` and this node's clock, so a heartbeat taken by another node counts here too;
``credential_refused`` when the gateway refused its credential lately and nothing valid came since.
Both override the last reader lines, which are not true any more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cardreader.model import KioskSnapshot, ReaderStatus
from eid_gateway.kiosks import kiosk_state as ks
from eid_gateway.kiosks.kiosk_state import KioskState, StateError, Step, state_from_json
from eid_gateway.kiosks.settings import KioskEntry, KioskSettings
from eid_gateway.store.base import Versioned

UNKNOWN = "unknown"
OFFLINE = "offline"
REFUSED = "credential_refused"
#: the status words that mean "this kiosk's readers are not known now" (eid_kiosk_up 0)
DOWN_WORDS = (UNKNOWN, OFFLINE, REFUSED)

__all__ = ["DOWN_WORDS", "OFFLINE", "REFUSED", "UNKNOWN", "KioskRecord", "KioskRegistry", "Subscription"]


@dataclass
class KioskRecord:
    entry: KioskEntry
    #: the newest shared state this node has seen, and its version in the store (0: none yet)
    state: KioskState = field(default_factory=KioskState)
    version: int = 0
    stale: bool = True
    #: the status word dashboards were last told (the word itself moves with the clock)
    shown: str = UNKNOWN

    @property
    def snapshot(self) -> KioskSnapshot | None:
        return self.state.snapshot

    @property
    def summary(self) -> str:
        return self.snapshot.summary if self.snapshot is not None else UNKNOWN


@dataclass(eq=False)  # identity semantics: kept in a set
class Subscription:
    queue: asyncio.Queue[dict[str, Any]]
    overflowed: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _reader_row(r: ReaderStatus) -> dict[str, Any]:
    pace = ""
    if r.card is not None and r.card.pace:
        p = r.card.pace[0]
        pace = p.name.removeprefix("id-PACE-") + (f" / {p.parameter_name}" if p.parameter_name else "")
    return {
        "name": r.name,
        "state": r.state.value,
        "detail": r.detail,
        "card_pace": pace,
        "reader_pace": None if r.reader_pace is None else list(r.reader_pace),
    }


class KioskRegistry:
    """All configured kiosks; unknown kiosk IDs never get a record (their requests are refused)."""

    def __init__(self, settings: KioskSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.records: dict[str, KioskRecord] = {k.id: KioskRecord(entry=k) for k in settings.kiosks}
        self._subs: set[Subscription] = set()
        self.counters: dict[str, int] = {
            "state": 0,
            "heartbeat": 0,
            "offline": 0,
            "duplicate": 0,
            "auth_failure": 0,
            "bad_request": 0,
        }
        self.sub_queue_size = 2000

    # -- the shared state ---------------------------------------------------------------------
    def apply(self, kiosk_id: str, state: KioskState, version: int, *, seen_only: bool = False) -> bool:
        """Take a newer version of a kiosk's shared state and tell this node's dashboards; False when
        the kiosk is not configured here or the version is not newer than the one held."""
        rec = self.records.get(kiosk_id)
        if rec is None or version <= rec.version:
            return False
        rec.state, rec.version = state, version
        rec.stale = ks.is_silent(state, self.clock(), self.settings.stale_after_seconds)
        self.publish(kiosk_id, heartbeat_only=seen_only and self.status_word(rec) == rec.shown)
        return True

    def is_newer(self, kiosk_id: str, version: int) -> bool:
        """True when ``version`` of a configured kiosk is newer than the one held here."""
        rec = self.records.get(kiosk_id)
        return rec is not None and version > rec.version

    def restore(self, rows: dict[str, Versioned]) -> None:
        """Load the shared states (at start, and again when messages may have been missed)."""
        for kiosk_id, row in rows.items():
            if not self.is_newer(kiosk_id, row.version):
                continue  # parsed only when it changes something (every node does this each interval)
            try:
                state = state_from_json(row.value)
            except StateError:
                continue
            self.apply(kiosk_id, state, row.version)

    def count(self, kind: str, step: Step) -> None:
        """Count a kiosk message by what it did (the ``eid_kiosk_messages`` metric)."""
        self.counters[kind if step.state is not None else "duplicate"] += 1

    def refresh_staleness(self) -> list[str]:
        """Mark kiosks offline whose heartbeat is overdue (and refusals that aged out); publish changes."""
        now = self.clock()
        limit = self.settings.stale_after_seconds
        changed = []
        for kid, rec in self.records.items():
            rec.stale = ks.is_silent(rec.state, now, limit)
            if self.status_word(rec) != rec.shown:
                changed.append(kid)
                self.publish(kid)
        return changed

    # -- views --------------------------------------------------------------------------------
    def _refused_lately(self, rec: KioskRecord) -> bool:
        return ks.refused_lately(rec.state, self.clock(), self.settings.stale_after_seconds)

    def status_word(self, rec: KioskRecord) -> str:
        """A kiosk that reports validly shows its readers; a refused credential only shows while the
        kiosk is not reporting (someone guessing at a working kiosk's token does not hide it)."""
        down = rec.state.last_seen is None or rec.stale or rec.state.stopped_at is not None
        if down and self._refused_lately(rec):
            return REFUSED
        if rec.state.last_seen is None:
            return UNKNOWN
        return OFFLINE if down else rec.summary

    def offline_since(self, rec: KioskRecord) -> tuple[float | None, str | None]:
        """Since when and why (``stopped``: announced; ``silent``: heartbeat missed) a kiosk is offline."""
        if rec.state.stopped_at is not None:
            return rec.state.stopped_at, "stopped"
        if rec.state.last_seen is not None and rec.stale:
            return rec.state.last_seen, "silent"
        return None, None

    def row(self, kiosk_id: str) -> dict[str, Any]:
        rec = self.records[kiosk_id]
        snap = rec.snapshot
        since, why = self.offline_since(rec)
        return {
            "id": rec.entry.id,
            "name": rec.entry.name,
            "status": self.status_word(rec),
            "summary": rec.summary,
            "stale": rec.stale,
            "offline_since": _iso(since),
            "offline_reason": why,
            "refused_at": _iso(rec.state.refused_at),
            "last_seen": _iso(rec.state.last_seen),
            "changed_at": _iso(rec.state.changed_at),
            "service": snap.service.value if snap is not None else None,
            "detail": snap.detail if snap is not None else None,
            "readers": [_reader_row(r) for r in snap.readers] if snap is not None else [],
            "agent_queue": rec.state.agent_queue,
            "agent_dropped": rec.state.agent_dropped,
        }

    def rows(self) -> list[dict[str, Any]]:
        return [self.row(k) for k in sorted(self.records)]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self.records.values():
            w = self.status_word(rec)
            out[w] = out.get(w, 0) + 1
        return out

    # -- fan-out ------------------------------------------------------------------------------
    def subscribe(self) -> Subscription:
        sub = Subscription(queue=asyncio.Queue(self.sub_queue_size))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def publish(self, kiosk_id: str, heartbeat_only: bool = False) -> None:
        rec = self.records[kiosk_id]
        rec.shown = self.status_word(rec)
        if not self._subs:
            return
        event = (
            {"type": "seen", "id": kiosk_id, "last_seen": _iso(rec.state.last_seen)}
            if heartbeat_only
            else {"type": "kiosk", "row": self.row(kiosk_id)}
        )
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # A dashboard that cannot keep up is cut off; its browser reconnects and gets a
                # fresh full table, which is better than an unbounded backlog.
                sub.overflowed = True
                sub.closed.set()
                self._subs.discard(sub)

    def close_all(self) -> None:
        for sub in list(self._subs):
            sub.closed.set()
        self._subs.clear()
