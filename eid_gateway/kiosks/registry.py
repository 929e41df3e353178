"""Last known state per kiosk, staleness, and fan-out of changes to dashboards (no HTTP here).

The agent numbers its messages (instance id + sequence number) and retries until acknowledged, so
the registry drops what it has already applied: a retried or reordered message never rolls a kiosk
back. After a gateway restart the registry asks each agent, in the heartbeat answer, to resend its
whole state (`want_state`), so a card inserted before the restart is still shown.

Liveness: a kiosk is ``offline`` when its agent announced a clean stop, or when a heartbeat is missed
(silent for longer than :attr:`KioskSettings.stale_after_seconds`); ``credential_refused`` when the
gateway refused its credential lately and nothing valid came since. Both override the last reader
lines, which are not true any more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cardreader.model import KioskSnapshot, ModelError, ReaderStatus, snapshot_from_json, snapshot_to_json
from eid_gateway.kiosks.settings import KioskEntry, KioskSettings
from eid_gateway.kiosks.state_store import StoredKiosk

UNKNOWN = "unknown"
OFFLINE = "offline"
REFUSED = "credential_refused"
#: the status words that mean "this kiosk's readers are not known now" (eid_kiosk_up 0)
DOWN_WORDS = (UNKNOWN, OFFLINE, REFUSED)


@dataclass
class KioskRecord:
    entry: KioskEntry
    snapshot: KioskSnapshot | None = None
    last_seen: float | None = None
    changed_at: float | None = None
    instance: str | None = None
    seq: int = -1
    state_instance: str | None = None
    stale: bool = True
    agent_queue: int = 0
    agent_dropped: int = 0
    #: when the agent announced a clean stop (None while it runs)
    stopped_at: float | None = None
    #: the last time the kiosk API refused a credential for this kiosk
    refused_at: float | None = None
    #: the status word dashboards were last told (the word itself moves with the clock)
    shown: str = UNKNOWN

    @property
    def summary(self) -> str:
        return self.snapshot.summary if self.snapshot is not None else UNKNOWN


@dataclass(frozen=True)
class Ack:
    applied: bool
    want_state: bool


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

    # -- persistence --------------------------------------------------------------------------
    def restore(self, rows: list[StoredKiosk]) -> None:
        """Load last states saved before a restart; they stay stale until the kiosk reports again."""
        for row in rows:
            rec = self.records.get(row.kiosk_id)
            if rec is None:
                continue
            try:
                rec.snapshot = snapshot_from_json(row.status)
            except ModelError:
                continue
            rec.last_seen, rec.changed_at = row.last_seen, row.changed_at
            rec.stale = True
            rec.shown = self.status_word(rec)

    def stored(self, kiosk_id: str) -> StoredKiosk | None:
        rec = self.records[kiosk_id]
        if rec.snapshot is None or rec.last_seen is None:
            return None
        return StoredKiosk(kiosk_id, snapshot_to_json(rec.snapshot), rec.last_seen, rec.changed_at or rec.last_seen)

    # -- updates ------------------------------------------------------------------------------
    def _sequence(self, rec: KioskRecord, instance: str, seq: int) -> bool:
        """True when (instance, seq) is new; an agent restart brings a new instance and starts over."""
        if rec.instance == instance and seq <= rec.seq:
            self.counters["duplicate"] += 1
            return False
        rec.instance, rec.seq = instance, seq
        return True

    def record_state(
        self, kiosk_id: str, instance: str, seq: int, snapshot: KioskSnapshot, queue: int = 0, dropped: int = 0
    ) -> Ack:
        rec = self.records[kiosk_id]
        if not self._sequence(rec, instance, seq):
            return Ack(applied=False, want_state=False)
        now = self.clock()
        self.counters["state"] += 1
        if snapshot != rec.snapshot:
            rec.changed_at = now
        rec.snapshot, rec.state_instance = snapshot, instance
        rec.last_seen, rec.stale, rec.stopped_at = now, False, None
        rec.agent_queue, rec.agent_dropped = queue, dropped
        self.publish(kiosk_id)
        return Ack(applied=True, want_state=False)

    def record_heartbeat(self, kiosk_id: str, instance: str, seq: int, queue: int = 0, dropped: int = 0) -> Ack:
        rec = self.records[kiosk_id]
        want = rec.snapshot is None or rec.state_instance != instance
        if not self._sequence(rec, instance, seq):
            return Ack(applied=False, want_state=want)
        self.counters["heartbeat"] += 1
        was_stale = rec.stale or rec.stopped_at is not None
        rec.last_seen, rec.stale, rec.stopped_at = self.clock(), False, None
        rec.agent_queue, rec.agent_dropped = queue, dropped
        if was_stale or want:
            self.publish(kiosk_id)
        else:
            self.publish(kiosk_id, heartbeat_only=True)
        return Ack(applied=True, want_state=want)

    def record_offline(self, kiosk_id: str, instance: str, seq: int) -> Ack:
        """The agent stops cleanly: the kiosk is offline now, not after missed heartbeats."""
        rec = self.records[kiosk_id]
        if not self._sequence(rec, instance, seq):
            return Ack(applied=False, want_state=False)
        self.counters["offline"] += 1
        rec.stopped_at = self.clock()
        self.publish(kiosk_id)
        return Ack(applied=True, want_state=False)

    def record_refused(self, kiosk_id: str) -> None:
        """The kiosk API refused a credential for this (configured) kiosk."""
        rec = self.records.get(kiosk_id)
        if rec is None:
            return
        rec.refused_at = self.clock()
        if self.status_word(rec) != rec.shown:
            self.publish(kiosk_id)

    def refresh_staleness(self) -> list[str]:
        """Mark kiosks offline whose heartbeat is overdue (and refusals that aged out); publish changes."""
        now = self.clock()
        limit = self.settings.stale_after_seconds
        changed = []
        for kid, rec in self.records.items():
            rec.stale = rec.last_seen is None or now - rec.last_seen > limit
            if self.status_word(rec) != rec.shown:
                changed.append(kid)
                self.publish(kid)
        return changed

    # -- views --------------------------------------------------------------------------------
    def _refused_lately(self, rec: KioskRecord) -> bool:
        if rec.refused_at is None or (rec.last_seen is not None and rec.last_seen >= rec.refused_at):
            return False
        return self.clock() - rec.refused_at <= self.settings.stale_after_seconds

    def status_word(self, rec: KioskRecord) -> str:
        """A kiosk that reports validly shows its readers; a refused credential only shows while the
        kiosk is not reporting (someone guessing at a working kiosk's token does not hide it)."""
        down = rec.last_seen is None or rec.stale or rec.stopped_at is not None
        if down and self._refused_lately(rec):
            return REFUSED
        if rec.last_seen is None:
            return UNKNOWN
        return OFFLINE if down else rec.summary

    def offline_since(self, rec: KioskRecord) -> tuple[float | None, str | None]:
        """Since when and why (``stopped``: announced; ``silent``: heartbeat missed) a kiosk is offline."""
        if rec.stopped_at is not None:
            return rec.stopped_at, "stopped"
        if rec.last_seen is not None and rec.stale:
            return rec.last_seen, "silent"
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
            "refused_at": _iso(rec.refused_at),
            "last_seen": _iso(rec.last_seen),
            "changed_at": _iso(rec.changed_at),
            "service": snap.service.value if snap is not None else None,
            "detail": snap.detail if snap is not None else None,
            "readers": [_reader_row(r) for r in snap.readers] if snap is not None else [],
            "agent_queue": rec.agent_queue,
            "agent_dropped": rec.agent_dropped,
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
            {"type": "seen", "id": kiosk_id, "last_seen": _iso(rec.last_seen)}
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
