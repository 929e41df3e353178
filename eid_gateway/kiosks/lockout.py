"""Backoff for staff sign-ins on the kiosk dashboard: failed passwords are counted per client address
and per account in the gateway's Store, so that every node on one SQLite file or one Redis sees the
same counts and locks.

Why before scrypt: a staff password check costs a memory-hard scrypt run and only two run at once. A
locked address or account is answered with 429 and Retry-After without one, so a flood of guesses
cannot hold the scrypt slots that real staff sign-ins wait for.

Why two limits: the per-address limit is lower than the per-account one, so one address guessing is
locked long before the account is, and staff signing in from another address keep working. Only
guessing from many addresses (at least ``per_account / per_address`` of them per window) locks the
account itself, for everyone: the price of bounding distributed guessing. Staff already signed in on a
node keep their remembered sign-in (:class:`eid_gateway.kiosks.auth.StaffAuth`) through such a lock.

Why growing: each lock of the same address or account within ``memory_seconds`` doubles (up to
``max_lock_seconds``), and a failure after a lock ran out, while the window still holds the earlier
failures, locks again at once. A successful sign-in resets nothing: the counters are not the staff
member's to clear, so someone who knows one password (or the address of a real staff member) cannot
wipe another's traces.

Addresses and account names reach the store only as keyed hashes and never the logs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Final, Literal

from aiohttp import web

from eid_gateway.store.base import Counter, Store

log = logging.getLogger("eid_gateway.kiosks")

Scope = Literal["address", "account"]
_LOCKS: Final = "staff_lock"


@dataclass(frozen=True)
class LockoutPolicy:
    """Failed staff sign-ins allowed per fixed window, and how long a lock lasts."""

    window_seconds: float = 900.0
    #: Failures from one client address within a window before the address is locked.
    per_address: int = 5
    #: Failures on one account (from every address) within a window before the account is locked.
    per_account: int = 20
    first_lock_seconds: float = 60.0
    max_lock_seconds: float = 3600.0
    #: How long a lock counts towards the length of the next one.
    memory_seconds: float = 86400.0

    def lock_seconds(self, strikes: int) -> float:
        """The ``strikes``-th lock (1 = first) lasts twice as long as the one before."""
        return float(min(self.max_lock_seconds, self.first_lock_seconds * 2 ** min(strikes - 1, 32)))


@dataclass(frozen=True)
class Locked:
    """A refusal: which limit, and when to try again (whole seconds, at least 1)."""

    scope: Scope
    retry_after: int


@dataclass(eq=False, repr=False)  # a service, not a value (and its key stays out of any repr)
class StaffLockout:
    """Counts failed staff sign-ins and answers whether an address or account is locked."""

    store: Store
    key: bytes
    address_of: Callable[[web.Request], str]
    policy: LockoutPolicy = LockoutPolicy()
    _: KW_ONLY
    clock: Callable[[], float] = time.time

    def _ids(self, request: web.Request, user: str) -> tuple[tuple[Scope, str], tuple[Scope, str]]:
        def mac(kind: str, value: str) -> str:
            return hmac.new(self.key, f"staff {kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:32]

        return ("address", mac("address", self.address_of(request))), ("account", mac("account", user))

    async def locked(self, request: web.Request, user: str) -> Locked | None:
        """The lock on this request's address or on the account ``user``, if any (no counting)."""
        for scope, who in self._ids(request, user):
            until = await self.store.get_value(_LOCKS, f"{scope}:{who}")
            if until is not None:
                return self._refusal(scope, float(until) - self.clock())
        return None

    async def failed(self, request: web.Request, user: str) -> Locked | None:
        """Count one wrong password; the lock it brings about, if any."""
        address, account = self._ids(request, user)
        p = self.policy
        n_address, n_account = await self.store.hit(
            [
                Counter("staff_fail_address", address[1], p.window_seconds),
                Counter("staff_fail_account", account[1], p.window_seconds),
            ]
        )
        lock: Locked | None = None
        for (scope, who), n, limit in ((address, n_address, p.per_address), (account, n_account, p.per_account)):
            if n >= limit:
                lock = await self._lock(scope, who)
        return lock

    async def _lock(self, scope: Scope, who: str) -> Locked:
        [strikes] = await self.store.hit([Counter(f"staff_strike_{scope}", who, self.policy.memory_seconds)])
        seconds = self.policy.lock_seconds(strikes)
        await self.store.put_value(_LOCKS, f"{scope}:{who}", repr(self.clock() + seconds), seconds)
        log.warning("staff sign-in locked scope=%s seconds=%d strike=%d", scope, seconds, strikes)
        return self._refusal(scope, seconds)

    @staticmethod
    def _refusal(scope: Scope, remaining: float) -> Locked:
        return Locked(scope, max(1, math.ceil(remaining)))


def too_many_failures(locked: Locked) -> web.HTTPTooManyRequests:
    """HTTP 429 with Retry-After, saying what happened and for how long."""
    minutes = max(1, math.ceil(locked.retry_after / 60))
    what = "from this address" if locked.scope == "address" else "for this account"
    return web.HTTPTooManyRequests(
        text=f"too many failed staff sign-ins {what}; try again in {minutes} minute(s)\n",
        headers={"Retry-After": str(locked.retry_after), "Cache-Control": "no-store"},
    )
