"""The agent's outgoing messages and retry pacing, sans-I/O.

States are kept in order until the gateway acknowledges them; a heartbeat is made only when nothing
is waiting (a delivered state proves liveness too). Every state is a whole snapshot, so when the
bound is reached the *oldest* waiting state is dropped - the newest picture always survives - and the
number dropped travels with the next message so the gateway can show it.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from cardreader.model import KioskSnapshot, snapshot_to_json


@dataclass(frozen=True)
class Outgoing:
    kind: Literal["state", "heartbeat", "offline"]
    seq: int
    status: dict[str, Any] | None = None

    def body(self, instance: str, queue: int, dropped: int) -> dict[str, Any]:
        doc: dict[str, Any] = {"instance": instance, "seq": self.seq, "queue": queue, "dropped": dropped}
        if self.status is not None:
            doc["status"] = self.status
        return doc


class Outbox:
    def __init__(self, maxlen: int = 1000, instance: str | None = None) -> None:
        if maxlen < 1:
            raise ValueError("outbox needs room for at least one state")
        self.maxlen = maxlen
        self.instance = instance or secrets.token_urlsafe(12)
        self._queue: deque[Outgoing] = deque()
        self._seq = 0
        self.dropped = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def put_state(self, snapshot: KioskSnapshot) -> Outgoing:
        msg = Outgoing("state", self._next(), snapshot_to_json(snapshot))
        if len(self._queue) >= self.maxlen:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(msg)
        return msg

    def heartbeat(self) -> Outgoing:
        if self._queue:
            raise RuntimeError("heartbeats are only made when no state is waiting")
        return Outgoing("heartbeat", self._next())

    def offline(self) -> Outgoing:
        """The last message of a clean stop; numbered after everything else this instance sent."""
        return Outgoing("offline", self._next())

    def peek(self) -> Outgoing | None:
        return self._queue[0] if self._queue else None

    def done(self, msg: Outgoing) -> None:
        """Remove *msg* after the gateway acknowledged (or definitively refused) it."""
        if self._queue and self._queue[0] is msg:
            self._queue.popleft()

    def body(self, msg: Outgoing) -> dict[str, Any]:
        return msg.body(self.instance, len(self._queue), self.dropped)

    def __len__(self) -> int:
        return len(self._queue)


class Backoff:
    """Exponential backoff with full jitter, capped; reset after a success."""

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        factor: float = 2.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.initial, self.maximum, self.factor, self.rand = initial, maximum, factor, rand
        self.attempt = 0

    def next(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return ceiling / 2 + self.rand() * ceiling / 2  # at least half the ceiling: never a hot loop

    def reset(self) -> None:
        self.attempt = 0
