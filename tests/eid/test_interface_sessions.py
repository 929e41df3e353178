"""The shared eID-Interface session rules and useID argument checks (used by the simulator and the
embedded eID-Server; their own tests cover the same rules through SOAP and PAOS). The rules run over
both storages: memory and a SQLite file (processes sharing the file: test_sessions_processes.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eid_gateway.eid import messages, results
from eid_gateway.eid.interface_server import use_id_refusal
from eid_gateway.eid.interface_sessions import InterfaceSession, SessionRules, SessionTable
from eid_gateway.eid.interface_sessions_sqlite import sqlite_session_rules

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ADDRESS = "https://eid.example/paos"


def _req(psk: messages.Psk | None = None, **ops: messages.Selection) -> messages.UseIDRequest:
    operations = {name: messages.Selection.PROHIBITED for name in messages.OPERATION_NAMES}
    operations.update(ops or {"GivenNames": messages.Selection.REQUIRED})
    return messages.UseIDRequest(operations=operations, psk=psk)


@dataclass
class _Tagged(InterfaceSession):
    tag: str | None = None


MakeRules = Callable[..., SessionRules]
TTL = timedelta(minutes=10)
DONE = messages.GetResultResponse(messages.Result(results.MAJOR_OK))


@pytest.fixture(params=["memory", "sqlite"])
def make_rules(request: pytest.FixtureRequest, tmp_path: Path) -> MakeRules:
    def make(max_sessions: int = 3) -> SessionRules:
        if request.param == "memory":
            return SessionTable(InterfaceSession, TTL, max_sessions)
        return sqlite_session_rules(tmp_path / "sessions.sqlite3", TTL, max_sessions)

    return make


def _table(max_sessions: int = 3) -> tuple[SessionTable[_Tagged], list[str]]:
    dropped: list[str] = []
    table = SessionTable(_Tagged, timedelta(minutes=10), max_sessions, lambda s: dropped.append(s.session_id))
    return table, dropped


def test_open_indexes_by_session_and_psk() -> None:
    table, _ = _table()
    resp = table.open(_req(), NOW, ADDRESS)
    assert resp.result.ok and resp.ecard_server_address == ADDRESS
    assert resp.session_id is not None and resp.psk is not None
    sess = table.get(resp.session_id)
    assert isinstance(sess, _Tagged) and table.by_psk_id(resp.psk.id) is sess and len(table) == 1


def test_cap_and_duplicate_psk_are_refused(make_rules: MakeRules) -> None:
    table = make_rules(max_sessions=2)
    psk = messages.Psk("ab" * 8, "cd" * 32)
    assert table.open(_req(psk), NOW, ADDRESS).result.ok
    assert table.open(_req(psk), NOW, ADDRESS).result.minor == results.INVALID_PSK
    assert table.open(_req(), NOW, ADDRESS).result.ok
    assert table.open(_req(), NOW, ADDRESS).result.minor == results.TOO_MANY_OPEN_SESSIONS


def test_counter_rules(make_rules: MakeRules) -> None:
    table = make_rules()
    sid = table.open(_req(), NOW, ADDRESS).session_id
    assert sid is not None
    assert table.result(messages.GetResultRequest(sid, 1), NOW).result.minor == results.NO_RESULT_YET
    assert table.result(messages.GetResultRequest(sid, 3), NOW).result.minor == results.NO_RESULT_YET  # may skip
    assert table.result(messages.GetResultRequest(sid, 3), NOW).result.minor == results.INVALID_COUNTER
    assert len(table) == 0
    assert table.result(messages.GetResultRequest(sid, 4), NOW).result.minor == results.INVALID_SESSION


def test_counter_rules_and_drop_hook() -> None:
    table, dropped = _table()
    sid = table.open(_req(), NOW, ADDRESS).session_id
    assert sid is not None
    assert table.result(messages.GetResultRequest(sid, 1), NOW).result.minor == results.NO_RESULT_YET
    assert table.result(messages.GetResultRequest(sid, 1), NOW).result.minor == results.INVALID_COUNTER
    assert dropped == [sid] and table.get(sid) is None
    assert table.result(messages.GetResultRequest(sid, 2), NOW).result.minor == results.INVALID_SESSION


def test_final_answer_is_delivered_once_and_the_card_step_counts_once(make_rules: MakeRules) -> None:
    table = make_rules()
    resp = table.open(_req(), NOW, ADDRESS)
    assert resp.session_id is not None and resp.psk is not None
    pending = table.card_step_of(resp.psk.id, NOW)
    assert pending is not None and pending.session_id == resp.session_id and not pending.done
    assert pending.request.operations == _req().operations
    assert table.settle(resp.session_id, DONE, NOW)
    failed = messages.GetResultResponse(messages.Result(results.MAJOR_ERROR, results.CANCELLATION_BY_USER))
    assert not table.settle(resp.session_id, failed, NOW)  # the first outcome stays
    again = table.card_step_of(resp.psk.id, NOW)
    assert again is not None and again.done
    assert table.result_next(resp.session_id, NOW) == DONE
    assert table.result(messages.GetResultRequest(resp.session_id, 2), NOW).result.minor == results.INVALID_SESSION
    assert table.card_step_of(resp.psk.id, NOW) is None and len(table) == 0
    assert not table.settle(resp.session_id, DONE, NOW)


def test_result_next_counts_on(make_rules: MakeRules) -> None:
    table = make_rules()
    sid = table.open(_req(), NOW, ADDRESS).session_id
    assert sid is not None
    assert table.result(messages.GetResultRequest(sid, 5), NOW).result.minor == results.NO_RESULT_YET
    assert table.result_next(sid, NOW).result.minor == results.NO_RESULT_YET  # counter 6
    assert table.result(messages.GetResultRequest(sid, 6), NOW).result.minor == results.INVALID_COUNTER


def test_expired_sessions_are_gone(make_rules: MakeRules) -> None:
    table = make_rules(max_sessions=1)
    resp = table.open(_req(), NOW, ADDRESS)
    assert resp.session_id is not None and resp.psk is not None
    end = NOW + TTL
    assert table.card_step_of(resp.psk.id, end - timedelta(seconds=1)) is not None
    assert table.card_step_of(resp.psk.id, end) is None
    assert not table.settle(resp.session_id, DONE, end)
    assert table.result(messages.GetResultRequest(resp.session_id, 1), end).result.minor == results.INVALID_SESSION
    assert table.open(_req(), end, ADDRESS).result.ok and len(table) == 1  # the cap counts live sessions


def test_final_answer_is_delivered_once_through_the_hook() -> None:
    table, dropped = _table()
    resp = table.open(_req(), NOW, ADDRESS)
    assert resp.session_id is not None and resp.psk is not None
    sess = table.get(resp.session_id)
    assert sess is not None
    sess.outcome = messages.GetResultResponse(messages.Result(results.MAJOR_OK))
    assert table.result(messages.GetResultRequest(resp.session_id, 1), NOW) is sess.outcome
    assert dropped == [resp.session_id] and table.by_psk_id(resp.psk.id) is None


def test_expired_sessions_are_pruned_through_the_hook() -> None:
    table, dropped = _table()
    sid = table.open(_req(), NOW, ADDRESS).session_id
    table.prune(NOW + timedelta(minutes=9))
    assert dropped == []
    table.prune(NOW + timedelta(minutes=10))
    assert dropped == [sid] and len(table) == 0


def test_use_id_refusal() -> None:
    assert use_id_refusal(_req()) is None
    nothing = messages.UseIDRequest(
        operations={name: messages.Selection.PROHIBITED for name in messages.OPERATION_NAMES}
    )
    assert use_id_refusal(nothing) == results.MISSING_ARGUMENT
    assert use_id_refusal(_req(AgeVerification=messages.Selection.REQUIRED)) == results.MISSING_ARGUMENT
