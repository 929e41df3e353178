"""One kiosk's shared state and how each kiosk message changes it (pure functions, no I/O).

The state is what every gateway node must agree on: the last snapshot, the agent's sequence
(instance id + number), when it was last heard from, whether it announced a stop, when its credential
was last refused. Each node reads it from the store, applies one of the functions here and writes it
back by compare-and-set (:mod:`eid_gateway.kiosks.service`), so a message applied on node A is never
undone by an older one racing on node B: an older or equal sequence of the same agent instance is
dropped, whatever the order. Each step also says which history events it caused, so exactly the node
whose write won records them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from cardreader.model import KioskSnapshot, ModelError, snapshot_from_json, snapshot_to_json
from eid_gateway.kiosks.history import (
    AGENT_OFFLINE,
    AGENT_ONLINE,
    CREDENTIAL_REFUSED,
    READER_ADDED,
    READER_REMOVED,
    READER_STATE,
    SERVICE,
    KioskEvent,
)

#: refusals closer together than this are not written again (a guess flood costs no store writes)
REFUSAL_WRITE_SECONDS = 1.0


class StateError(ValueError):
    """A stored kiosk state that cannot be read (another version wrote it, or it is damaged)."""


@dataclass(frozen=True)
class KioskState:
    snapshot: KioskSnapshot | None = None
    last_seen: float | None = None
    changed_at: float | None = None
    instance: str | None = None
    seq: int = -1
    #: the agent instance whose full state the snapshot is (a restarted agent is asked to resend)
    state_instance: str | None = None
    agent_queue: int = 0
    agent_dropped: int = 0
    #: when the agent announced a clean stop (None while it runs)
    stopped_at: float | None = None
    #: the last time the kiosk API refused a credential for this kiosk
    refused_at: float | None = None
    #: the ``last_seen`` whose silence (missed heartbeat) is already in the history
    silence_noted: float | None = None


@dataclass(frozen=True)
class Ack:
    applied: bool
    want_state: bool


@dataclass(frozen=True)
class Step:
    """The outcome of one message: the new state to write (None: nothing to write), the answer to the
    agent, the history events, and whether dashboards need the whole row or only the new "seen" time."""

    state: KioskState | None
    ack: Ack
    events: tuple[KioskEvent, ...] = ()
    seen_only: bool = False


def state_to_json(s: KioskState) -> str:
    doc: dict[str, Any] = {
        "snapshot": None if s.snapshot is None else snapshot_to_json(s.snapshot),
        "last_seen": s.last_seen,
        "changed_at": s.changed_at,
        "instance": s.instance,
        "seq": s.seq,
        "state_instance": s.state_instance,
        "agent_queue": s.agent_queue,
        "agent_dropped": s.agent_dropped,
        "stopped_at": s.stopped_at,
        "refused_at": s.refused_at,
        "silence_noted": s.silence_noted,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _opt_float(doc: dict[str, Any], name: str) -> float | None:
    v = doc.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise StateError(f"{name} is not a number")
    return float(v)


def _opt_str(doc: dict[str, Any], name: str) -> str | None:
    v = doc.get(name)
    if v is not None and not isinstance(v, str):
        raise StateError(f"{name} is not a string")
    return v


def _int(doc: dict[str, Any], name: str, default: int) -> int:
    v = doc.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise StateError(f"{name} is not an integer")
    return v


def state_from_json(text: str) -> KioskState:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise StateError("not JSON") from None
    if not isinstance(doc, dict):
        raise StateError("not an object")
    try:
        snapshot = None if doc.get("snapshot") is None else snapshot_from_json(doc["snapshot"])
    except ModelError as exc:
        raise StateError(f"snapshot: {exc}") from None
    return KioskState(
        snapshot=snapshot,
        last_seen=_opt_float(doc, "last_seen"),
        changed_at=_opt_float(doc, "changed_at"),
        instance=_opt_str(doc, "instance"),
        seq=_int(doc, "seq", -1),
        state_instance=_opt_str(doc, "state_instance"),
        agent_queue=_int(doc, "agent_queue", 0),
        agent_dropped=_int(doc, "agent_dropped", 0),
        stopped_at=_opt_float(doc, "stopped_at"),
        refused_at=_opt_float(doc, "refused_at"),
        silence_noted=_opt_float(doc, "silence_noted"),
    )


# --- liveness ----------------------------------------------------------------------------------------


def is_silent(s: KioskState, now: float, stale_after: float) -> bool:
    """A heartbeat is missed: nothing heard for longer than ``stale_after`` (never heard: True)."""
    return s.last_seen is None or now - s.last_seen > stale_after


def is_down(s: KioskState, now: float, stale_after: float) -> bool:
    return s.stopped_at is not None or is_silent(s, now, stale_after)


def refused_lately(s: KioskState, now: float, stale_after: float) -> bool:
    """A refusal counts until a valid report comes after it, or for one stale window."""
    if s.refused_at is None or (s.last_seen is not None and s.last_seen >= s.refused_at):
        return False
    return now - s.refused_at <= stale_after


# --- the steps ---------------------------------------------------------------------------------------


def _is_new(s: KioskState, instance: str, seq: int) -> bool:
    """True when (instance, seq) is new; an agent restart brings a new instance and starts over."""
    return not (s.instance == instance and seq <= s.seq)


def _online_events(s: KioskState, now: float, stale_after: float) -> tuple[KioskEvent, ...]:
    """Back online after being down. A silence that no node's clock tick noted yet (the agent came back
    before the next tick, e.g. on a busy node) goes into the history first, dated when it became one."""
    if not is_down(s, now, stale_after):
        return ()
    if s.stopped_at is None and s.last_seen is not None and s.silence_noted != s.last_seen:
        return (KioskEvent(s.last_seen + stale_after, AGENT_OFFLINE, detail="silent"), KioskEvent(now, AGENT_ONLINE))
    return (KioskEvent(now, AGENT_ONLINE),)


def snapshot_events(old: KioskSnapshot | None, new: KioskSnapshot, now: float) -> tuple[KioskEvent, ...]:
    """What changed between two snapshots: the PC/SC service, readers coming and going, and each
    reader's state (card type in, card out, errors), with the PC/SC error name as detail."""
    out: list[KioskEvent] = []
    if old is None or old.service != new.service or old.detail != new.detail:
        if old is not None or new.service.value != "ok" or new.detail:
            out.append(KioskEvent(now, SERVICE, state=new.service.value, detail=new.detail))
    before = {r.name: r for r in old.readers} if old is not None else {}
    after = {r.name: r for r in new.readers}
    for name, r in after.items():
        was = before.get(name)
        if was is None:
            out.append(KioskEvent(now, READER_ADDED, reader=name, state=r.state.value, detail=r.detail))
        elif was.state != r.state or was.detail != r.detail:
            out.append(KioskEvent(now, READER_STATE, reader=name, state=r.state.value, detail=r.detail))
    for name in before:
        if name not in after:
            out.append(KioskEvent(now, READER_REMOVED, reader=name))
    return tuple(out)


def on_state(
    s: KioskState,
    instance: str,
    seq: int,
    snapshot: KioskSnapshot,
    queue: int,
    dropped: int,
    now: float,
    stale_after: float,
) -> Step:
    if not _is_new(s, instance, seq):
        return Step(None, Ack(applied=False, want_state=False))
    events = _online_events(s, now, stale_after) + (
        snapshot_events(s.snapshot, snapshot, now) if snapshot != s.snapshot else ()
    )
    new = replace(
        s,
        snapshot=snapshot,
        state_instance=instance,
        instance=instance,
        seq=seq,
        changed_at=now if snapshot != s.snapshot else s.changed_at,
        last_seen=now,
        stopped_at=None,
        agent_queue=queue,
        agent_dropped=dropped,
    )
    return Step(new, Ack(applied=True, want_state=False), events)


def on_heartbeat(
    s: KioskState, instance: str, seq: int, queue: int, dropped: int, now: float, stale_after: float
) -> Step:
    want = s.snapshot is None or s.state_instance != instance
    if not _is_new(s, instance, seq):
        return Step(None, Ack(applied=False, want_state=want))
    events = _online_events(s, now, stale_after)
    new = replace(
        s, instance=instance, seq=seq, last_seen=now, stopped_at=None, agent_queue=queue, agent_dropped=dropped
    )
    return Step(new, Ack(applied=True, want_state=want), events, seen_only=not events and not want)


def on_offline(s: KioskState, instance: str, seq: int, now: float) -> Step:
    """The agent stops cleanly: the kiosk is offline now, not after missed heartbeats."""
    if not _is_new(s, instance, seq):
        return Step(None, Ack(applied=False, want_state=False))
    events = () if s.stopped_at is not None else (KioskEvent(now, AGENT_OFFLINE, detail="stopped"),)
    return Step(replace(s, instance=instance, seq=seq, stopped_at=now), Ack(applied=True, want_state=False), events)


def on_refused(s: KioskState, now: float, stale_after: float) -> Step:
    """The kiosk API refused a credential for this (configured) kiosk."""
    nothing = Step(None, Ack(applied=False, want_state=False))
    if s.refused_at is not None and 0 <= now - s.refused_at < REFUSAL_WRITE_SECONDS:
        return nothing
    events = () if refused_lately(s, now, stale_after) else (KioskEvent(now, CREDENTIAL_REFUSED),)
    return Step(replace(s, refused_at=now), Ack(applied=True, want_state=False), events)


def on_clock(s: KioskState, now: float, stale_after: float) -> Step:
    """Time passed: a missed heartbeat goes into the history once (the first node to notice writes it)."""
    if s.last_seen is None or s.stopped_at is not None or not is_silent(s, now, stale_after):
        return Step(None, Ack(applied=False, want_state=False))
    if s.silence_noted == s.last_seen:
        return Step(None, Ack(applied=False, want_state=False))
    event = KioskEvent(now, AGENT_OFFLINE, detail="silent")
    return Step(replace(s, silence_noted=s.last_seen), Ack(applied=True, want_state=False), (event,))
