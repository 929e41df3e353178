"""The PC/SC test environment is this run's own: a second pcscd (own socket, own vpcd port) runs next to
the session's, and neither sees the other's readers or cards, so two test runs on one machine do not meet."""

import json
import os
import subprocess
import sys
from pathlib import Path

from cardreader.model import ReaderState
from cardreader.monitor import PcscMonitor
from cardreader.testing.fixtures import wait_until
from cardreader.testing.pcscd import PCSCD_SOCKET, SOCKET_ENV, VPCD_PORT_ENV, Pcscd, build_reader_config, free_vpcd_port
from cardreader.testing.vcard import VPCD_PORT, VirtualIdCard

SLOT0 = "Virtual PCD 00 00"


def readers_json(socket_path: Path) -> dict:
    """`eid-gateway readers --json` in a child process pointed at *socket_path* (libpcsclite reads the
    socket name once per process, so another daemon needs another process)."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cardreader.cli import readers_main; sys.exit(readers_main(sys.argv[1:]))",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, SOCKET_ENV: str(socket_path)},
    )
    return json.loads(out.stdout)


def slot0_state(doc: dict) -> str | None:
    return next((r["state"] for r in doc.get("readers", []) if r["name"] == SLOT0), None)


def test_session_pcscd_is_private(pcscd):
    assert os.environ[SOCKET_ENV] == str(pcscd.socket_path) != str(PCSCD_SOCKET)
    assert pcscd.socket_path.is_socket()
    assert int(os.environ[VPCD_PORT_ENV]) == pcscd.vpcd_port != VPCD_PORT


def test_second_pcscd_next_to_the_session_one_sees_only_its_own_card(pcscd, tmp_path):
    seen = []
    mon = PcscMonitor(seen.append, retry_interval=0.2)
    mon.start()
    port = free_vpcd_port()
    conf, _ = build_reader_config(tmp_path, port)
    other = Pcscd(conf, tmp_path / "pcscd.comm")
    other.start()
    card = VirtualIdCard(port=port)
    try:
        assert port != pcscd.vpcd_port
        card.insert()
        doc = wait_until(lambda: (d := readers_json(other.socket_path)) and slot0_state(d) == "id_card" and d, 15)
        assert doc["service"] == "ok"
        # the session's daemon, on its own socket, still has an empty slot 0
        wait_until(lambda: seen and any(r.name == SLOT0 and r.state is ReaderState.EMPTY for r in seen[-1].readers))
        assert all(r.state is not ReaderState.ID_CARD for s in seen for r in s.readers if r.name == SLOT0)
        assert slot0_state(readers_json(pcscd.socket_path)) == "empty"
    finally:
        card.remove()
        mon.stop()
        other.stop()
    assert not (tmp_path / "pcscd.comm").exists()  # removed on stop: clients see "no service" at once
    down = readers_json(tmp_path / "pcscd.comm")
    assert down["service"] == "pcsc_unavailable"
