"""Several OS processes on one SQLite sessions file, as the workers of `eid-gateway serve --workers N`:
for every session exactly one of them wins the card step, the result, the PSK id; the cap holds for
all of them together; a restart keeps the open sessions and the TTL still ends them.

Each race starts separate interpreters (multiprocessing "spawn") that open their own connection,
meet at a barrier and then go through the same list of sessions."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from eid_gateway.eid import results
from eid_gateway.eid.interface_sessions_sqlite import sqlite_session_rules
from eid_gateway.eid.messages import GetResultRequest, Psk, Selection, UseIDRequest
from eid_gateway.simulator.core import CardStepError, SimulatedEidServer, SimulatorConfig
from saml.keys import KeyPair, generate_key_pair

TTL = timedelta(minutes=10)
ADDRESS = "https://gw.example/eid-sim/paos"
REQUEST = UseIDRequest(operations={"GivenNames": Selection.REQUIRED, "FamilyNames": Selection.ALLOWED})
N = 150


def _core(path: Path, key: KeyPair, max_sessions: int = 1000) -> SimulatedEidServer:
    return SimulatedEidServer(
        SimulatorConfig(
            "https://gw.example", key, key.certificate, max_sessions=max_sessions, session_ttl=TTL, sessions=path
        )
    )


def _race(kind: str, path: str, items: Sequence[str], barrier: Barrier, out: Any, now: datetime) -> None:
    """One competing process: connect, wait for the others, then try every item once."""
    attempt: Callable[[str], str]
    connect: Callable[[], int]
    if kind == "card_step":
        core = _core(Path(path), generate_key_pair("ec-p256"))
        connect = core.open_sessions

        def attempt(psk_id: str) -> str:
            try:
                return core.card_step(psk_id, "erika", "123456", now=now).major
            except CardStepError as exc:
                return str(exc.status)
    else:
        rules = sqlite_session_rules(path, TTL, 100)
        connect = rules.__len__
        if kind == "get_result":

            def attempt(sid: str) -> str:
                answer = rules.result(GetResultRequest(sid, 1), now)
                return "ok" if answer.result.ok and answer.personal_data is not None else str(answer.result.minor)
        else:  # "open": the item is the PSK id the caller chose

            def attempt(psk_id: str) -> str:
                answer = rules.open(UseIDRequest(REQUEST.operations, psk=Psk(psk_id, "cd" * 32)), now, ADDRESS)
                return "ok" if answer.result.ok else str(answer.result.minor)

    connect()  # connected (and the schema in place) before the start signal
    barrier.wait(timeout=60)
    out.put([attempt(item) for item in items])


def _run(kind: str, path: Path, items_per_process: Sequence[Sequence[str]], now: datetime) -> list[list[str]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(items_per_process))
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(kind, str(path), list(items), barrier, out, now)) for items in items_per_process
    ]
    for p in procs:
        p.start()
    try:
        answers: list[list[str]] = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return answers


@pytest.fixture
def now() -> datetime:
    """The tests' "now", read when each test starts (never at import: a slow suite may reach a test
    minutes after collecting it, and the sessions' TTL is measured against the real clock too)."""
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def key() -> KeyPair:
    return generate_key_pair("ec-p256")


def _open(core: SimulatedEidServer, n: int, now: datetime) -> list[tuple[str, str]]:
    sessions = []
    for _ in range(n):
        opened = core.use_id(REQUEST, now)
        assert opened.session_id is not None and opened.psk is not None
        sessions.append((opened.session_id, opened.psk.id))
    return sessions


def test_one_card_step_per_session(tmp_path: Path, key: KeyPair, now: datetime) -> None:
    path = tmp_path / "sessions.sqlite3"
    core = _core(path, key)
    sessions = _open(core, N, now)
    a, b = _run("card_step", path, [[psk for _, psk in sessions]] * 2, now)
    for x, y in zip(a, b, strict=True):
        assert sorted((x, y)) == ["409", results.MAJOR_OK]
    for sid, _ in sessions:  # and the one outcome is what getResult delivers
        answer = core.get_result(GetResultRequest(sid, 1), now)
        assert answer.personal_data is not None and answer.personal_data.given_names == "ERIKA"


def test_one_result_per_session(tmp_path: Path, key: KeyPair, now: datetime) -> None:
    path = tmp_path / "sessions.sqlite3"
    core = _core(path, key)
    sessions = _open(core, N, now)
    for _, psk in sessions:
        core.card_step(psk, "erika", "123456", now=now)
    a, b = _run("get_result", path, [[sid for sid, _ in sessions]] * 2, now)
    for x, y in zip(a, b, strict=True):
        assert sorted((x, y)) == sorted(("ok", results.INVALID_SESSION))
    assert core.open_sessions() == 0


def test_one_session_per_psk_id_and_the_cap_holds_for_all(tmp_path: Path, now: datetime) -> None:
    path = tmp_path / "sessions.sqlite3"
    same = [f"{i:032x}" for i in range(60)]
    a, b = _run("open", path, [same, same], now)
    for x, y in zip(a, b, strict=True):
        assert sorted((x, y)) == sorted(("ok", results.INVALID_PSK))
    # 60 open now; the cap is 100: of 2 x 40 new sessions, exactly 40 more fit
    a, b = _run("open", path, [[f"a{i:031x}" for i in range(40)], [f"b{i:031x}" for i in range(40)]], now)
    assert (a + b).count("ok") == 40 and (a + b).count(results.TOO_MANY_OPEN_SESSIONS) == 40


def test_a_restart_keeps_open_sessions_until_their_ttl(tmp_path: Path, key: KeyPair, now: datetime) -> None:
    path = tmp_path / "sessions.sqlite3"
    [[opened]] = _run("open", path, [["f" * 32]], now)  # opened by a process that is gone now
    assert opened == "ok"
    before = _core(path, key)
    [(first, first_psk), (second, second_psk)] = _open(before, 2, now)
    assert before.get_result(GetResultRequest(first, 1), now).result.minor == results.NO_RESULT_YET
    before.close()
    after = _core(path, key)  # the server restarted
    assert after.open_sessions() == 3
    assert after.card_step(first_psk, "erika", "123456", now=now).major == results.MAJOR_OK
    assert after.get_result(GetResultRequest(first, 1), now).result.minor == results.INVALID_COUNTER  # counter kept
    assert after.card_step("f" * 32, "erika", "123456", now=now).major == results.MAJOR_OK
    with pytest.raises(CardStepError) as gone:
        after.card_step(second_psk, "erika", "123456", now=now + TTL)
    assert gone.value.status == 404
    assert after.get_result(GetResultRequest(second, 1), now + TTL).result.minor == results.INVALID_SESSION
