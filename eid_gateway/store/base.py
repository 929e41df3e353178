"""The ``Store`` port: short-lived flow state and one-time values, shared by all gateway nodes.

Everything here has a TTL. The operations are chosen so that each is one atomic step in SQLite (one
statement) and in Redis (one command or one Lua script): a flow's state moves only by compare-and-set,
and a one-time value is accepted by exactly one caller, however many nodes race for it. The same test
suite (tests/gateway/test_store.py) runs against every implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class StoreError(Exception):
    """The store failed (unreachable, corrupt); callers answer with a generic error."""


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


class Store(Protocol):
    """Flow state and one-time values. All times are seconds since the epoch (the store's clock)."""

    async def create_flow(self, ref: str, state: str, data: Mapping[str, Any], ttl: float) -> FlowRecord:
        """Insert a new flow; :class:`FlowExists` if ``ref`` is taken (even by an expired, unswept one)."""
        ...

    async def get_flow(self, ref: str) -> FlowRecord | None:
        """The flow, or ``None`` when unknown or expired."""
        ...

    async def update_flow(
        self, ref: str, data: Mapping[str, Any], *, expected_version: int
    ) -> FlowRecord | None:
        """Replace ``data`` if the flow is still at ``expected_version``; ``None`` if it moved or expired."""
        ...

    async def transition(
        self,
        ref: str,
        from_state: str,
        to_state: str,
        changes: Mapping[str, Any] | None = None,
    ) -> FlowRecord | None:
        """Atomic compare-and-set of the state (merging ``changes`` into data); ``None`` if not in
        ``from_state`` (or expired). Exactly one of several concurrent callers wins."""
        ...

    async def consume_once(self, namespace: str, value: str, ttl: float) -> bool:
        """True for the first caller only (until ``ttl`` passes): replay caches for request IDs,
        assertion IDs, TC token references, eID sessions."""
        ...

    async def put_value(self, namespace: str, key: str, value: str, ttl: float) -> None:
        """Remember ``value`` under ``key`` (overwriting) until ``ttl`` passes."""
        ...

    async def take_value(self, namespace: str, key: str) -> str | None:
        """Atomically read and delete: the first caller gets the value, everyone else ``None``
        (issued request IDs, OIDC codes)."""
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
