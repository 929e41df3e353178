"""The ``Store`` port: short-lived flow state and one-time values, shared by all gateway nodes.

Everything here has a TTL except the small durable maps and the audit trail. The operations are chosen so that
each is one atomic step in SQLite (one statement or one short transaction) and in Redis (one command or one
Lua script): a flow's state moves only by compare-and-set, and a one-time value is accepted by exactly one
caller, however many nodes race for it. Each call is one round trip to the store, which is what a cluster of
gateway nodes pays per sign-in. The same test suite (tests/store/) runs against every implementation.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


class StoreError(Exception):
    """The store failed (unreachable, corrupt); callers answer with a generic error."""


class StoreUnavailable(StoreError):
    """The store cannot be reached right now (connection refused, timeout); the request may be retried."""


class FlowExists(StoreError):
    """``create_flow`` was called with a reference that is already in use."""


@dataclass(frozen=True)
class FlowRecord:
    """One pending sign-in. ``data`` is JSON-compatible; ``version`` grows with every change."""

    ref: str
    state: str
    data: Mapping[str, Any]
    version: int
    expires_at: float


@dataclass(frozen=True)
class OnceClaim:
    """A one-time value consumed together with a state transition (see :meth:`Store.transition`)."""

    namespace: str
    value: str
    ttl: float


@dataclass(frozen=True)
class Counter:
    """One rate-limit counter: ``key`` in ``namespace`` counted in fixed windows of ``window`` seconds."""

    namespace: str
    key: str
    window: float


@dataclass(frozen=True)
class AuditEntry:
    """One audit record as stored: its position, the chain value of the one before, its own chain value
    (a keyed hash over ``seq``, ``prev`` and ``body``, see :mod:`eid_gateway.audit`), and the record."""

    seq: int
    prev: str
    mac: str
    body: str


@dataclass(frozen=True)
class Versioned:
    """A value of a versioned map with its version (1 for the first write, +1 with each change)."""

    value: str
    version: int


@dataclass(frozen=True)
class LogEntry:
    """One entry of a time-ordered log (e.g. a kiosk's history): ``at`` seconds since the epoch."""

    at: float
    body: str


#: What :meth:`Store.audit_append` reports as the tail of an empty trail.
EMPTY_TAIL: Final = AuditEntry(0, "", "", "")


class Store(Protocol):
    """Flow state, one-time values, rate-limit counters and the audit trail.

    All times are seconds since the epoch read from the store's clock. Namespaces are short code
    constants (letters, digits, ``_``, ``-``); flow data keys likewise.
    """

    async def create_flow(self, ref: str, state: str, data: Mapping[str, Any], ttl: float) -> FlowRecord:
        """Insert a new flow; :class:`FlowExists` if ``ref`` is taken (even by an expired, unswept one)."""
        ...

    async def get_flow(self, ref: str) -> FlowRecord | None:
        """The flow, or ``None`` when unknown or expired."""
        ...

    async def update_flow(self, ref: str, data: Mapping[str, Any], *, expected_version: int) -> FlowRecord | None:
        """Replace ``data`` if the flow is still at ``expected_version``; ``None`` if it moved or expired."""
        ...

    async def transition(
        self,
        ref: str,
        from_state: str,
        to_state: str,
        changes: Mapping[str, Any] | None = None,
        *,
        once: OnceClaim | None = None,
    ) -> FlowRecord | None:
        """Atomic compare-and-set of the state; ``None`` if not in ``from_state`` (or expired). Exactly
        one of several concurrent callers wins.

        ``changes`` is merged into the data at the top level: each key replaces the old value whole,
        ``None`` removes the key. With ``once``, that one-time value is consumed in the same step: if it
        was consumed before, nothing changes and the answer is ``None`` (one round trip instead of two).
        """
        ...

    async def consume_once(self, namespace: str, value: str, ttl: float) -> bool:
        """True for the first caller only (until ``ttl`` passes): replay caches for request IDs,
        assertion IDs, eID sessions, client assertion IDs."""
        ...

    async def put_value(self, namespace: str, key: str, value: str, ttl: float) -> None:
        """Remember ``value`` under ``key`` (overwriting) until ``ttl`` passes."""
        ...

    async def get_value(self, namespace: str, key: str) -> str | None:
        """The value under ``key``, or ``None`` when unknown or expired (the value stays)."""
        ...

    async def take_value(self, namespace: str, key: str) -> str | None:
        """Atomically read and delete: the first caller gets the value, everyone else ``None``
        (issued request IDs, OIDC codes)."""
        ...

    async def map_set(self, namespace: str, key: str, value: str) -> None:
        """Set ``key`` in the small durable map ``namespace`` (no TTL; e.g. each kiosk's last state)."""
        ...

    async def map_all(self, namespace: str) -> dict[str, str]:
        """Every entry of the map ``namespace`` (meant for small maps: up to some thousand keys)."""
        ...

    async def map_delete(self, namespace: str, key: str) -> bool:
        """Remove ``key`` from the map; ``False`` if it was not there."""
        ...

    async def get_versioned(self, namespace: str, key: str) -> Versioned | None:
        """The entry of the versioned map ``namespace`` (durable, no TTL), or ``None``."""
        ...

    async def put_versioned(
        self, namespace: str, key: str, value: str, *, expected_version: int, publish: tuple[str, str] | None = None
    ) -> int | None:
        """Compare-and-set: write ``value`` if the entry is still at ``expected_version`` (0: absent);
        the new version, or ``None`` when another writer came first (read again and decide again).
        With ``publish`` = (channel, message), the message is published in the same step if it was written."""
        ...

    async def all_versioned(self, namespace: str) -> dict[str, Versioned]:
        """Every entry of the versioned map ``namespace`` (small maps: up to some thousand keys)."""
        ...

    async def log_append(self, namespace: str, key: str, entries: Sequence[LogEntry]) -> None:
        """Append to the log ``key`` of ``namespace`` (durable until :meth:`log_prune`)."""
        ...

    async def log_read(self, namespace: str, key: str, *, since: float, limit: int) -> list[LogEntry]:
        """The newest ``limit`` entries with ``at >= since``, oldest first (equal times: append order)."""
        ...

    async def log_prune(self, namespace: str, before: float) -> int:
        """Delete every entry of every log in ``namespace`` with ``at < before``; how many went."""
        ...

    async def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to every :meth:`listen` on ``channel``, on every node (best effort: a
        listener that was disconnected misses it and must read the state again)."""
        ...

    def listen(self, channel: str) -> AsyncIterator[str]:
        """The messages published on ``channel`` from now on, in order; :class:`StoreError` when the
        store is lost (listen again, after reading the state again)."""
        ...

    async def hit(self, counters: Sequence[Counter]) -> list[int]:
        """Count one event on each counter (all in one round trip); returns each counter's total in
        its current window, this event included. Shared by every node on the store."""
        ...

    async def audit_tail(self) -> AuditEntry | None:
        """The last audit record, or ``None`` while the trail is empty."""
        ...

    async def audit_append(self, entries: Sequence[AuditEntry]) -> AuditEntry | None:
        """Append ``entries`` (consecutive ``seq``, each ``prev`` = the previous ``mac``) if the first
        one follows the current tail (``seq`` = tail + 1, ``prev`` = tail's ``mac``; seq 1 and ``""``
        on an empty trail); ``None`` then. Otherwise nothing is written and the answer is the current
        tail (``EMPTY_TAIL`` for an empty trail), so the caller can chain again without another read."""
        ...

    async def audit_read(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Up to ``limit`` stored audit records with ``seq`` > ``after_seq``, in ``seq`` order."""
        ...

    async def sweep(self) -> int:
        """Delete expired entries; returns how many went."""
        ...

    async def ping(self) -> None:
        """Raise :class:`StoreError` unless the store answers (readiness probe)."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


def window_index(now: float, window: float) -> int:
    """The fixed window ``now`` falls in (the same on every node: windows start at multiples)."""
    return int(now // window)


def window_remaining(now: float, window: float) -> float:
    """Seconds until the current window ends (a 429's Retry-After)."""
    return window - (now % window)


def check_names(what: str, names: Iterable[str]) -> None:
    """Namespaces and flow data keys are code constants: refuse anything else (``ValueError``)."""
    for name in names:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{what} must be 1-64 letters, digits, '_' or '-'")
