"""The session rules of the TR-03130 eID-Interface, sans-I/O, shared by every eID-Server we run.

useID opens a session (TTL, a cap on open sessions, unique PSK ids); getResult follows the
RequestCounter rules: a counter that does not grow ends the session (as poseidas does), and any final
answer ends it too, so a result is delivered once. :meth:`SessionTable.open` and
:meth:`SessionTable.result` take the table's (reentrant) lock; an owner that combines the other methods,
or keeps state of its own next to the sessions, holds :attr:`SessionTable.lock` around them.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from eid_gateway.eid import results
from eid_gateway.eid.interface_server import error_result
from eid_gateway.eid.messages import GetResultRequest, GetResultResponse, Psk, Result, UseIDRequest, UseIDResponse


@dataclass
class InterfaceSession:
    """One useID session; ``outcome`` is set once the card step has finished (successfully or not)."""

    session_id: str
    psk: Psk
    request: UseIDRequest
    expires: datetime
    last_counter: int = 0
    outcome: GetResultResponse | None = None


S = TypeVar("S", bound=InterfaceSession)


class SessionTable(Generic[S]):
    """Open sessions by session id and by PSK id; ``on_drop`` lets the owner forget its own indexes."""

    def __init__(
        self,
        session_type: type[S],
        ttl: timedelta,
        max_sessions: int,
        on_drop: Callable[[S], None] | None = None,
    ):
        self._type = session_type
        self._ttl = ttl
        self._max = max_sessions
        self._on_drop = on_drop
        self._sessions: OrderedDict[str, S] = OrderedDict()
        self._by_psk: dict[str, str] = {}
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> S | None:
        return self._sessions.get(session_id)

    def by_psk_id(self, psk_id: str) -> S | None:
        """The session whose TC Token carried ``psk_id`` (the eID-Client's SessionIdentifier)."""
        sid = self._by_psk.get(psk_id)
        return self._sessions.get(sid) if sid is not None else None

    def prune(self, now: datetime) -> None:
        for sid in [s for s, sess in self._sessions.items() if sess.expires <= now]:
            self.drop(sid)

    def drop(self, session_id: str) -> None:
        sess = self._sessions.pop(session_id, None)
        if sess is not None:
            self._by_psk.pop(sess.psk.id, None)
            if self._on_drop is not None:
                self._on_drop(sess)

    def open(self, req: UseIDRequest, now: datetime, ecard_server_address: str) -> UseIDResponse:
        """useID after the server's own checks of ``req``: a new session, or the TR-03130 refusal."""
        with self.lock:
            return self._open(req, now, ecard_server_address)

    def _open(self, req: UseIDRequest, now: datetime, ecard_server_address: str) -> UseIDResponse:
        self.prune(now)
        if len(self._sessions) >= self._max:
            return UseIDResponse(error_result(results.TOO_MANY_OPEN_SESSIONS))
        psk = req.psk or Psk(secrets.token_hex(16), secrets.token_hex(32))
        if psk.id in self._by_psk:
            return UseIDResponse(error_result(results.INVALID_PSK))
        sid = secrets.token_hex(32)
        self._sessions[sid] = self._type(sid, psk, req, now + self._ttl)
        self._by_psk[psk.id] = sid
        return UseIDResponse(
            Result(results.MAJOR_OK), session_id=sid, ecard_server_address=ecard_server_address, psk=psk
        )

    def result(self, req: GetResultRequest, now: datetime) -> GetResultResponse:
        """getResult with the RequestCounter rules."""
        with self.lock:
            return self._result(req, now)

    def _result(self, req: GetResultRequest, now: datetime) -> GetResultResponse:
        self.prune(now)
        sess = self._sessions.get(req.session_id)
        if sess is None:
            return GetResultResponse(error_result(results.INVALID_SESSION))
        if req.request_counter <= sess.last_counter:
            self.drop(req.session_id)  # as poseidas does: a replayed counter ends the session
            return GetResultResponse(error_result(results.INVALID_COUNTER))
        sess.last_counter = req.request_counter
        if sess.outcome is None:
            return GetResultResponse(error_result(results.NO_RESULT_YET))
        self.drop(req.session_id)  # any final answer ends the session
        return sess.outcome
