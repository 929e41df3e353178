"""A server-sent event stream read on a thread of its own, every event kept with its arrival time, so a
test can act (post to another node, kill an agent) and then wait for the event it caused."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    at: float  # time.monotonic() when the event's last line arrived
    name: str
    data: Any


@dataclass
class EventStream:
    """``GET path`` on ``conn`` (an open connection: a test may pin it to one worker process)."""

    conn: http.client.HTTPConnection
    path: str
    headers: dict[str, str]
    events: list[Event] = field(default_factory=list)
    status: int | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    def start(self) -> EventStream:
        self.conn.request("GET", self.path, headers=self.headers)
        resp = self.conn.getresponse()
        self.status = resp.status
        if resp.status != 200:
            raise AssertionError(f"event stream answered {resp.status}: {resp.read()[:300]!r}")
        if self.conn.sock is not None:
            self.conn.sock.settimeout(None)  # a quiet stream is not an error; close() ends the read

        def read() -> None:
            name, data = "", None
            try:
                while True:
                    raw = resp.fp.readline()
                    if not raw:
                        return
                    line = raw.decode("utf-8").rstrip("\n")
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                    elif line == "" and name:
                        with self._cond:
                            self.events.append(Event(time.monotonic(), name, data))
                            self._cond.notify_all()
                        name, data = "", None
            except (OSError, ValueError):
                return

        self._thread = threading.Thread(target=read, daemon=True)
        self._thread.start()
        return self

    def wait_for(
        self, predicate: Callable[[Event], bool], *, after: int = 0, timeout: float = 30.0
    ) -> tuple[int, Event]:
        """The first event from index ``after`` on that satisfies ``predicate`` (its index, the event)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(after, len(self.events)):
                    if predicate(self.events[i]):
                        return i, self.events[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    names = [(e.name, str(e.data)[:120]) for e in self.events[after:]][-10:]
                    raise AssertionError(f"no such event within {timeout} s; last events: {names}")
                self._cond.wait(left)

    def __len__(self) -> int:
        with self._cond:
            return len(self.events)

    def close(self) -> None:
        if self.conn.sock is not None:
            try:
                import socket

                self.conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conn.close()
        if self._thread is not None:
            self._thread.join(10)
