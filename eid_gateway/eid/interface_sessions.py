"""The session rules of the TR-03130 eID-Interface, sans-I/O, shared by every eID-Server we run.

useID opens a session (TTL, a cap on open sessions, unique PSK ids); the card step sets a session's
outcome once; getResult follows the RequestCounter rules: a counter that does not grow ends the session
(as poseidas does), and any final answer ends it too, so a result is delivered once.

The rules live once, in :class:`SessionRules`, over a small :class:`SessionStorage`: in memory
(:class:`SessionTable`, for one process; the PAOS eID-Server keeps per-session protocol state next to
it) or in a SQLite file shared by several processes
(:mod:`eid_gateway.eid.interface_sessions_sqlite`). Each rule runs inside one storage transaction (the
table's reentrant lock, or one short ``BEGIN IMMEDIATE``); the card step is split so that deciding the
outcome (PIN check, attribute release) holds no lock: :meth:`SessionRules.settle` then sets the outcome
only if none is set yet, in one atomic step. An owner of a :class:`SessionTable` that combines methods,
or keeps state of its own next to the sessions, holds :attr:`SessionTable.lock` around them.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

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


@dataclass(frozen=True)
class PendingCardStep:
    """What the card step needs of the session named in the TC Token; ``done``: an outcome is set."""

    session_id: str
    request: UseIDRequest
    done: bool


class SessionStorage(Protocol):
    """Where the open sessions live. Every method but :meth:`card_step_of` and :meth:`set_outcome_once`
    runs inside :meth:`transaction`; those two are atomic on their own."""

    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside happens at once for every process sharing the storage."""
        ...

    def prune(self, now: datetime) -> None:
        """Forget the sessions whose TTL has passed."""
        ...

    def count(self) -> int: ...

    def has_psk(self, psk_id: str) -> bool: ...

    def insert(self, session_id: str, psk: Psk, request: UseIDRequest, expires: datetime) -> None: ...

    def progress(self, session_id: str) -> tuple[int, bool] | None:
        """(last RequestCounter, outcome set) of an open session."""
        ...

    def set_counter(self, session_id: str, counter: int) -> None: ...

    def take_outcome(self, session_id: str) -> GetResultResponse | None:
        """End the session, returning its outcome."""
        ...

    def drop(self, session_id: str) -> None: ...

    def card_step_of(self, psk_id: str, now: datetime) -> PendingCardStep | None:
        """The unexpired session whose TC Token carried ``psk_id`` (the eID-Client's SessionIdentifier)."""
        ...

    def set_outcome_once(self, session_id: str, outcome: GetResultResponse, now: datetime) -> bool:
        """Set the outcome of an unexpired session that has none yet; False if there is none to set."""
        ...

    def close(self) -> None: ...


class SessionRules:
    """The eID-Interface session rules over one :class:`SessionStorage`."""

    def __init__(self, storage: SessionStorage, ttl: timedelta, max_sessions: int):
        self.storage = storage
        self._ttl = ttl
        self._max = max_sessions

    def __len__(self) -> int:
        with self.storage.transaction():
            return self.storage.count()

    def open(self, req: UseIDRequest, now: datetime, ecard_server_address: str) -> UseIDResponse:
        """useID after the server's own checks of ``req``: a new session, or the TR-03130 refusal."""
        store = self.storage
        with store.transaction():
            store.prune(now)
            if store.count() >= self._max:
                return UseIDResponse(error_result(results.TOO_MANY_OPEN_SESSIONS))
            psk = req.psk or Psk(secrets.token_hex(16), secrets.token_hex(32))
            if store.has_psk(psk.id):
                return UseIDResponse(error_result(results.INVALID_PSK))
            sid = secrets.token_hex(32)
            store.insert(sid, psk, req, now + self._ttl)
        return UseIDResponse(
            Result(results.MAJOR_OK), session_id=sid, ecard_server_address=ecard_server_address, psk=psk
        )

    def result(self, req: GetResultRequest, now: datetime) -> GetResultResponse:
        """getResult with the RequestCounter rules."""
        return self._result(req.session_id, req.request_counter, now)

    def result_next(self, session_id: str, now: datetime) -> GetResultResponse:
        """getResult with the next RequestCounter (an interface without SOAP, e.g. SAML's refresh)."""
        return self._result(session_id, None, now)

    def _result(self, session_id: str, counter: int | None, now: datetime) -> GetResultResponse:
        store = self.storage
        with store.transaction():
            store.prune(now)
            progress = store.progress(session_id)
            if progress is None:
                return GetResultResponse(error_result(results.INVALID_SESSION))
            last, done = progress
            counter = last + 1 if counter is None else counter
            if counter <= last:
                store.drop(session_id)  # as poseidas does: a replayed counter ends the session
                return GetResultResponse(error_result(results.INVALID_COUNTER))
            if not done:
                store.set_counter(session_id, counter)
                return GetResultResponse(error_result(results.NO_RESULT_YET))
            outcome = store.take_outcome(session_id)  # any final answer ends the session
        assert outcome is not None
        return outcome

    def card_step_of(self, psk_id: str, now: datetime) -> PendingCardStep | None:
        """The session a card step names, read without a lock (the outcome is decided from it)."""
        return self.storage.card_step_of(psk_id, now)

    def settle(self, session_id: str, outcome: GetResultResponse, now: datetime) -> bool:
        """Finish the card step: True for the one caller that set the outcome of the unexpired session."""
        return self.storage.set_outcome_once(session_id, outcome, now)

    def close(self) -> None:
        self.storage.close()


S = TypeVar("S", bound=InterfaceSession)


class MemorySessionStorage(Generic[S]):
    """Sessions of one process, as objects of the owner's ``session_type``, by session and PSK id."""

    def __init__(self, session_type: type[S], on_drop: Callable[[S], None] | None = None):
        self._type = session_type
        self._on_drop = on_drop
        self.sessions: OrderedDict[str, S] = OrderedDict()
        self.by_psk: dict[str, str] = {}
        self.lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            yield

    def prune(self, now: datetime) -> None:
        for sid in [s for s, sess in self.sessions.items() if sess.expires <= now]:
            self.drop(sid)

    def count(self) -> int:
        return len(self.sessions)

    def has_psk(self, psk_id: str) -> bool:
        return psk_id in self.by_psk

    def insert(self, session_id: str, psk: Psk, request: UseIDRequest, expires: datetime) -> None:
        self.sessions[session_id] = self._type(session_id, psk, request, expires)
        self.by_psk[psk.id] = session_id

    def progress(self, session_id: str) -> tuple[int, bool] | None:
        sess = self.sessions.get(session_id)
        return None if sess is None else (sess.last_counter, sess.outcome is not None)

    def set_counter(self, session_id: str, counter: int) -> None:
        self.sessions[session_id].last_counter = counter

    def take_outcome(self, session_id: str) -> GetResultResponse | None:
        sess = self.sessions.get(session_id)
        self.drop(session_id)
        return sess.outcome if sess is not None else None

    def drop(self, session_id: str) -> None:
        sess = self.sessions.pop(session_id, None)
        if sess is not None:
            self.by_psk.pop(sess.psk.id, None)
            if self._on_drop is not None:
                self._on_drop(sess)

    def card_step_of(self, psk_id: str, now: datetime) -> PendingCardStep | None:
        with self.lock:
            sid = self.by_psk.get(psk_id)
            sess = self.sessions.get(sid) if sid is not None else None
            if sess is None or sess.expires <= now:
                return None
            return PendingCardStep(sess.session_id, sess.request, sess.outcome is not None)

    def set_outcome_once(self, session_id: str, outcome: GetResultResponse, now: datetime) -> bool:
        with self.lock:
            sess = self.sessions.get(session_id)
            if sess is None or sess.expires <= now or sess.outcome is not None:
                return False
            sess.outcome = outcome
            return True

    def close(self) -> None:
        pass


class SessionTable(SessionRules, Generic[S]):
    """The rules over sessions in memory, whose objects the owner may extend and read (one process);
    ``on_drop`` lets the owner forget its own indexes."""

    def __init__(
        self,
        session_type: type[S],
        ttl: timedelta,
        max_sessions: int,
        on_drop: Callable[[S], None] | None = None,
    ):
        self._memory = MemorySessionStorage(session_type, on_drop)
        super().__init__(self._memory, ttl, max_sessions)
        self.lock = self._memory.lock

    def __len__(self) -> int:
        return len(self._memory.sessions)

    def get(self, session_id: str) -> S | None:
        return self._memory.sessions.get(session_id)

    def by_psk_id(self, psk_id: str) -> S | None:
        """The session whose TC Token carried ``psk_id`` (the eID-Client's SessionIdentifier)."""
        sid = self._memory.by_psk.get(psk_id)
        return self._memory.sessions.get(sid) if sid is not None else None

    def prune(self, now: datetime) -> None:
        with self.lock:
            self._memory.prune(now)

    def drop(self, session_id: str) -> None:
        with self.lock:
            self._memory.drop(session_id)
