"""Against a real pcscd with the vpcd virtual reader and the virtual ID card over the vpcd socket."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from smartcard import scard

from cardreader.cli import readers_main
from cardreader.model import KioskSnapshot, ReaderState, ServiceState
from cardreader.monitor import PcscMonitor
from cardreader.testing.fixtures import wait_until

SLOT0 = "Virtual PCD 00 00"


class Recorder:
    def __init__(self):
        self.snaps: list[tuple[float, KioskSnapshot]] = []
        self.lock = threading.Lock()

    def __call__(self, snap):
        with self.lock:
            self.snaps.append((time.monotonic(), snap))

    @property
    def last(self):
        with self.lock:
            return self.snaps[-1][1] if self.snaps else None

    def slot0(self):
        last = self.last
        if last is None or last.service is not ServiceState.OK:
            return None
        return next((r for r in last.readers if r.name == SLOT0), None)

    def wait_slot0(self, state, timeout=5.0):
        return wait_until(lambda: (r := self.slot0()) is not None and r.state is state and r, timeout)


@pytest.fixture
def recorder(pcscd):
    rec = Recorder()
    mon = PcscMonitor(rec, retry_interval=0.2)
    mon.start()
    yield rec
    mon.stop()
    assert mon._thread is not None and not mon._thread.is_alive()


def test_virtual_reader_appears(recorder):
    empty = recorder.wait_slot0(ReaderState.EMPTY)
    assert empty.card is None
    assert empty.reader_pace is None  # vpcd has no SCardControl: no PACE in the reader


def test_inserted_card_is_recognised_as_id_card_with_pace_parameters(recorder, vcard):
    recorder.wait_slot0(ReaderState.EMPTY)
    vcard.insert()
    reader = recorder.wait_slot0(ReaderState.ID_CARD)
    assert reader.card.atr == "3B8A80018031F873F741E082900075" and reader.card.atr_known_eid
    (pace,) = reader.card.pace
    assert (pace.protocol, pace.version, pace.parameter_id) == ("0.4.0.127.0.7.2.2.4.2.2", 2, 13)
    assert pace.parameter_name == "brainpoolP256r1"
    assert reader.card.chip_authentication == ("id-CA-ECDH-AES-CBC-CMAC-128",)
    # it was really read over PC/SC: SELECT MF, SELECT EF.CardAccess, READ BINARY
    assert [a[:2] for a in vcard.apdus[:3]] == [b"\x00\xa4", b"\x00\xa4", b"\x00\xb0"]


def test_card_without_card_access_is_other_card(recorder, vcard):
    vcard.card.files.clear()
    vcard.insert()
    try:
        reader = recorder.wait_slot0(ReaderState.OTHER_CARD)
    except AssertionError:
        print(recorder.snaps, vcard.apdus)
        raise
    assert reader.card.atr_known_eid and reader.card.pace == ()  # the ATR alone is not trusted
    assert reader.detail == "no EF.CardAccess"


def test_removal_is_seen_within_one_second(recorder, vcard):
    vcard.insert()
    recorder.wait_slot0(ReaderState.ID_CARD)
    t0 = time.monotonic()
    vcard.remove()
    recorder.wait_slot0(ReaderState.EMPTY, timeout=3)
    with recorder.lock:
        seen = next(
            t
            for t, s in reversed(recorder.snaps)
            if any(r.name == SLOT0 and r.state is ReaderState.EMPTY for r in s.readers)
        )
    assert seen - t0 < 1.0, f"removal seen after {seen - t0:.2f} s"


def test_reinsertion_is_read_again(recorder, vcard):
    vcard.insert()
    recorder.wait_slot0(ReaderState.ID_CARD)
    n = len(vcard.apdus)
    vcard.remove()
    recorder.wait_slot0(ReaderState.EMPTY)
    vcard.insert()
    recorder.wait_slot0(ReaderState.ID_CARD)
    assert len(vcard.apdus) > n


def test_card_held_exclusively_is_in_use_then_recognised(pcscd, vcard):
    vcard.insert()
    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hr == 0
    rec = Recorder()
    mon = PcscMonitor(rec, retry_interval=0.2)
    handle = None
    try:
        # another application (think AusweisApp) holds the card exclusively
        hr, handle, _ = wait_until(
            lambda: (
                (
                    r := scard.SCardConnect(
                        ctx, SLOT0, scard.SCARD_SHARE_EXCLUSIVE, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
                    )
                )[0]
                == 0
                and r
            ),
            5,
        )
        mon.start()
        try:
            held = rec.wait_slot0(ReaderState.IN_USE)  # a state, not a crash
        except AssertionError:
            print(rec.snaps)
            raise
        assert held.card is None
        scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        handle = None
        try:
            rec.wait_slot0(ReaderState.ID_CARD)
        except AssertionError:
            print(rec.snaps)
            raise
    finally:
        mon.stop()
        if handle is not None:
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(ctx)


def test_idle_watch_burns_no_cpu(recorder):
    recorder.wait_slot0(ReaderState.EMPTY)
    c0 = time.process_time()
    time.sleep(1.0)
    used = time.process_time() - c0
    assert used < 0.05, f"{used:.3f} s CPU in 1 s idle"


def test_pcscd_stop_and_restart_is_a_state_then_recovers(recorder, pcscd, vcard):
    if not pcscd.owned:
        pytest.skip("a system pcscd is running; this test needs to stop and start its own")
    vcard.insert()
    recorder.wait_slot0(ReaderState.ID_CARD)
    pcscd.stop()
    down = wait_until(lambda: (s := recorder.last) is not None and s.service is ServiceState.PCSC_UNAVAILABLE and s)
    assert down.detail in ("SCARD_E_NO_SERVICE", "SCARD_F_COMM_ERROR", "SCARD_E_SERVICE_STOPPED")
    vcard.remove()  # vpcd went away with pcscd
    pcscd.start()
    recorder.wait_slot0(ReaderState.EMPTY, timeout=5)
    vcard.insert()
    recorder.wait_slot0(ReaderState.ID_CARD, timeout=5)


def test_readers_one_shot(pcscd, vcard, capsys):
    vcard.insert()
    wait_until(lambda: "German ID card" in _one_shot(capsys), 5)
    out = _one_shot(capsys)
    assert "PACE id-PACE-ECDH-GM-AES-CBC-CMAC-128 (v2, parameters 13 = brainpoolP256r1)" in out
    assert f"{SLOT0}: German ID card" in out
    assert readers_main(["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["service"] == "ok"


def _one_shot(capsys):
    assert readers_main([]) == 0
    return capsys.readouterr().out


def test_readers_watch_prints_changes_and_stops_on_sigterm(pcscd, vcard):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from cardreader.cli import readers_main; sys.exit(readers_main(sys.argv[1:]))",
            "--watch",
            "--json",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = json.loads(proc.stdout.readline())
        assert first["service"] == "ok"
        vcard.insert()
        while True:
            doc = json.loads(proc.stdout.readline())
            slot0 = next(r for r in doc["readers"] if r["name"] == SLOT0)
            if slot0["state"] == "id_card":
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_comfort_reader_pace_capabilities_through_part10(recorder, pcscd):
    if pcscd.pace_reader is None:
        pytest.skip("test PACE reader not built (needs gcc and libpcsclite-dev) or a system pcscd is running")
    status = wait_until(
        lambda: (s := recorder.last) is not None and next((r for r in s.readers if r.name == pcscd.pace_reader), None)
    )
    assert status.reader_pace == ("eID", "generic")  # GET_FEATURE_REQUEST -> EXECUTE_PACE -> capabilities
    assert status.state is ReaderState.EMPTY
    # vpcd answers no SCardControl: its slots report no PACE, without an error state
    assert recorder.slot0().reader_pace is None and recorder.slot0().detail is None


def test_readers_one_shot_shows_reader_pace(pcscd, capsys):
    if pcscd.pace_reader is None:
        pytest.skip("test PACE reader not built (needs gcc and libpcsclite-dev) or a system pcscd is running")
    assert readers_main([]) == 0
    out = capsys.readouterr().out
    assert f"{pcscd.pace_reader}: no card\n  reader does PACE itself: eID, generic" in out


def test_card_pulled_mid_read_is_a_state_not_a_crash(recorder, pcscd):
    from cardreader.testing.fixtures import wait_reader_empty
    from cardreader.testing.vcard import VirtualIdCard

    recorder.wait_slot0(ReaderState.EMPTY)
    card = VirtualIdCard(behaviour="vanish_on_read")
    card.insert()
    wait_until(lambda: any(a[1] == 0xB0 for a in card.apdus))  # it was being read when it left
    card.remove()
    wait_reader_empty()
    recorder.wait_slot0(ReaderState.EMPTY)
    seen = {r.state for _, s in recorder.snaps for r in s.readers if r.name == SLOT0}
    assert ReaderState.ID_CARD not in seen
    # the watch goes on: a good card afterwards is recognised
    good = VirtualIdCard()
    good.insert()
    try:
        recorder.wait_slot0(ReaderState.ID_CARD)
    finally:
        good.remove()
        wait_reader_empty()


def test_card_with_broken_answers_is_unreadable(recorder, pcscd):
    from cardreader.testing.fixtures import wait_reader_empty
    from cardreader.testing.vcard import VirtualIdCard

    card = VirtualIdCard(behaviour="garbage")
    card.insert()
    try:
        bad = recorder.wait_slot0(ReaderState.CARD_UNREADABLE)
        assert bad.detail == "malformed response"
    finally:
        card.remove()
        wait_reader_empty()
