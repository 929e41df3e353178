"""The two pieces of state a relying service needs for SAML: issued requests and seen assertion IDs.

Both are Protocols so that a deployment can put them in a shared database (several nodes must not both
accept one response); the package itself is sans-I/O, so the Protocols are synchronous. The in-memory
implementations are thread-safe and forget entries once they expire.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable


def _now() -> datetime:
    return datetime.now(timezone.utc)


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
        if expires_at.tzinfo is None or now.tzinfo is None:
            raise ValueError("store times must be timezone-aware")
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
