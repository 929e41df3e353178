"""Retries and a circuit breaker around any :class:`~eid_gateway.core.port.EidServer`.

Why this shape: an eID-Server outage must not make every citizen wait for a timeout, so after a run of
failures the breaker fails calls at once for a while (the citizen sees "service unavailable" at once)
and then lets one trial call through. Retries are bounded and only where a repeat cannot do harm:

- getServerInfo is read-only: repeated on any unavailability;
- getResult is repeated only when the request provably never reached the server
  (:class:`~eid_gateway.backends.tls.EidNotDelivered`), with the same RequestCounter: after a timeout or
  a reset mid-answer the server may already have answered and closed the session, and a repeat would
  be refused as an invalid counter / session;
- useID is never repeated (a second session nobody uses, and a second PSK).

Counting: unavailability and protocol errors (malformed, forged answers) count as failures; a proper
error result (cancel, wrong PIN) or "no result yet" is the server working and counts as success.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from eid_gateway.backends.tls import EidNotDelivered
from eid_gateway.core.port import (
    EidProtocolError,
    EidRequest,
    EidServer,
    EidServerUnavailable,
    EidSession,
    ServerInfo,
)
from eid_gateway.identity import Identity

T = TypeVar("T")
BACKOFF_SECONDS: Final = 0.1


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(EidServerUnavailable):
    """The breaker is open: the eID-Server failed repeatedly and is not asked until the reset time."""


class CircuitBreaker:
    """Consecutive-failure breaker: ``failures`` in a row open it for ``reset_seconds``; then one trial
    call is let through (half open), whose outcome closes or re-opens it."""

    def __init__(self, failures: int = 5, reset_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic):
        if failures < 1 or reset_seconds <= 0:
            raise ValueError("failures must be >= 1 and reset_seconds > 0")
        self.threshold = failures
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def before_call(self) -> None:
        """Raise :class:`CircuitOpen` unless a call may go out now."""
        state = self.state
        if state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and self._trial_running):
            raise CircuitOpen("eID-Server circuit breaker is open after repeated failures")
        if state is BreakerState.HALF_OPEN:
            self._trial_running = True

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        self._trial_running = False
        if self._opened_at is not None:  # the trial failed: open again for a full period
            self._opened_at = self._clock()
            return
        self._failures += 1
        if self._failures >= self.threshold:
            self._opened_at = self._clock()

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        self.before_call()
        try:
            result = await make()
        except (EidServerUnavailable, EidProtocolError):
            self.record_failure()
            raise
        except asyncio.CancelledError:  # the caller gave up: says nothing about the server
            self._trial_running = False
            raise
        except Exception:
            # A proper answer (an error result, not ready yet): the server works.
            self.record_success()
            raise
        self.record_success()
        return result


class ResilientEidServer:
    """The :class:`EidServer` port with a circuit breaker and bounded retries in front of ``inner``."""

    def __init__(
        self,
        inner: EidServer,
        *,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
        backoff: float = BACKOFF_SECONDS,
    ):
        self.inner = inner
        self.retries = retries
        self.breaker = breaker or CircuitBreaker()
        self.backoff = backoff

    async def _repeat(self, make: Callable[[], Awaitable[T]], retry_on: type[Exception]) -> T:
        attempt = 0
        while True:
            try:
                return await self.breaker.call(make)
            except CircuitOpen:
                raise
            except retry_on:
                if attempt >= self.retries:
                    raise
                attempt += 1
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))

    async def start_session(self, request: EidRequest) -> EidSession:
        return await self.breaker.call(lambda: self.inner.start_session(request))

    async def fetch_result(self, session: EidSession, request_counter: int) -> Identity:
        return await self._repeat(lambda: self.inner.fetch_result(session, request_counter), EidNotDelivered)

    async def server_info(self) -> ServerInfo:
        return await self._repeat(self.inner.server_info, EidServerUnavailable)

    async def close(self) -> None:
        await self.inner.close()


def breaker_of(backend: object) -> CircuitBreaker | None:
    """The circuit breaker inside a chain of wrappers (each keeps the wrapped port as ``inner``)."""
    seen = 0
    while backend is not None and seen < 8:
        if isinstance(backend, ResilientEidServer):
            return backend.breaker
        backend = getattr(backend, "inner", None)
        seen += 1
    return None
