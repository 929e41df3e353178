"""eID-Interface sessions in a SQLite file, so that several processes of one server share them.

The rules are :class:`~eid_gateway.eid.interface_sessions.SessionRules`; this is only their storage.
A session's useID request and outcome are kept as the TR-03130 messages themselves (the project's
codec, :mod:`eid_gateway.eid.messages`), not pickled: the file holds nothing that runs code when read.
The request is stored without its PSK (nothing after useID needs the key), and no PSK key is stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from eid_gateway.eid.interface_sessions import PendingCardStep, SessionRules
from eid_gateway.eid.messages import (
    GetResultResponse,
    Psk,
    UseIDRequest,
    build_get_result_response,
    build_use_id_request,
    parse_get_result_response,
    parse_use_id_request,
)
from saml.stores import SqliteFile
from saml.xml import parse_xml, to_bytes

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS interface_sessions (
    id TEXT PRIMARY KEY,
    psk_id TEXT NOT NULL UNIQUE,
    request BLOB NOT NULL,
    expires REAL NOT NULL,
    last_counter INTEGER NOT NULL DEFAULT 0,
    outcome BLOB
);
CREATE INDEX IF NOT EXISTS interface_sessions_expires ON interface_sessions (expires);
"""


def _encode_request(req: UseIDRequest) -> bytes:
    return to_bytes(build_use_id_request(replace(req, psk=None)))


def _encode_outcome(outcome: GetResultResponse) -> bytes:
    return to_bytes(build_get_result_response(outcome))


class SqliteSessionStorage:
    """A :class:`~eid_gateway.eid.interface_sessions.SessionStorage` in one SQLite file (WAL)."""

    def __init__(self, path: Path | str) -> None:
        self.db = SqliteFile(path, _SCHEMA)
        self._tx: sqlite3.Connection | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.transaction() as conn:
            self._tx = conn
            try:
                yield
            finally:
                self._tx = None

    def _c(self) -> sqlite3.Connection:
        assert self._tx is not None, "called outside transaction()"
        return self._tx

    def prune(self, now: datetime) -> None:
        self._c().execute("DELETE FROM interface_sessions WHERE expires <= ?", (now.timestamp(),))

    def count(self) -> int:
        (n,) = self._c().execute("SELECT count(*) FROM interface_sessions").fetchone()
        return int(n)

    def has_psk(self, psk_id: str) -> bool:
        return self._c().execute("SELECT 1 FROM interface_sessions WHERE psk_id = ?", (psk_id,)).fetchone() is not None

    def insert(self, session_id: str, psk: Psk, request: UseIDRequest, expires: datetime) -> None:
        self._c().execute(
            "INSERT INTO interface_sessions (id, psk_id, request, expires) VALUES (?, ?, ?, ?)",
            (session_id, psk.id, _encode_request(request), expires.timestamp()),
        )

    def progress(self, session_id: str) -> tuple[int, bool] | None:
        row = (
            self._c()
            .execute("SELECT last_counter, outcome IS NOT NULL FROM interface_sessions WHERE id = ?", (session_id,))
            .fetchone()
        )
        return None if row is None else (int(row[0]), bool(row[1]))

    def set_counter(self, session_id: str, counter: int) -> None:
        self._c().execute("UPDATE interface_sessions SET last_counter = ? WHERE id = ?", (counter, session_id))

    def take_outcome(self, session_id: str) -> GetResultResponse | None:
        row = (
            self._c().execute("DELETE FROM interface_sessions WHERE id = ? RETURNING outcome", (session_id,)).fetchone()
        )
        if row is None or row[0] is None:
            return None
        return parse_get_result_response(parse_xml(row[0]))

    def drop(self, session_id: str) -> None:
        self._c().execute("DELETE FROM interface_sessions WHERE id = ?", (session_id,))

    def card_step_of(self, psk_id: str, now: datetime) -> PendingCardStep | None:
        with self.db.connection() as c:
            row = c.execute(
                "SELECT id, request, outcome IS NOT NULL FROM interface_sessions WHERE psk_id = ? AND expires > ?",
                (psk_id, now.timestamp()),
            ).fetchone()
        if row is None:
            return None
        return PendingCardStep(row[0], parse_use_id_request(parse_xml(row[1])), bool(row[2]))

    def set_outcome_once(self, session_id: str, outcome: GetResultResponse, now: datetime) -> bool:
        data = _encode_outcome(outcome)
        with self.db.connection() as c:
            changed = c.execute(
                "UPDATE interface_sessions SET outcome = ? WHERE id = ? AND outcome IS NULL AND expires > ?",
                (data, session_id, now.timestamp()),
            ).rowcount
        return changed == 1

    def close(self) -> None:
        self.db.close()


def sqlite_session_rules(path: Path | str, ttl: timedelta, max_sessions: int) -> SessionRules:
    """The eID-Interface session rules over the sessions in the SQLite file ``path``."""
    return SessionRules(SqliteSessionStorage(path), ttl, max_sessions)
