"""pytest fixtures for a real pcscd + vpcd and the virtual ID card (TEST FACILITY).

Import them into a conftest.py (`from cardreader.testing.fixtures import pcscd, vcard, wait_until`).
The run's pcscd is a process-wide singleton shared by every conftest that imports these fixtures, and
it is this run's own (cardreader.testing.pcscd): its own socket, its own vpcd port, so two test runs
on one machine do not meet and the run may stop and restart it. Importing this module points the
process (and every child it starts) at that socket through PCSCLITE_CSOCK_NAME, before any PC/SC
call: libpcsclite reads the variable once per process. Tests skip - with the reason - only when pcscd
or vpcd is not installed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from cardreader.testing.pcscd import (
    PACE_READER_NAME,
    SOCKET_ENV,
    VPCD_PORT_ENV,
    Pcscd,
    build_reader_config,
    free_vpcd_port,
    missing_parts,
)
from cardreader.testing.vcard import VirtualIdCard

T = TypeVar("T")


class SharedPcscd:
    """The session's own pcscd (always ours to stop and restart: `owned` stays True)."""

    owned = True

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="eid-pcscd-"))
        atexit.register(shutil.rmtree, self.workdir, True)
        self.socket_path = self.workdir / "pcscd.comm"
        self.daemon: Pcscd | None = None
        self.vpcd_port: int | None = None
        #: the test PACE reader's name when our pcscd has it (built with gcc), else None
        self.pace_reader: str | None = None

    def ensure(self) -> None:
        if self.daemon is not None and self.daemon.proc is not None and self.daemon.proc.poll() is None:
            return
        if self.daemon is None:
            self.vpcd_port = free_vpcd_port()
            os.environ[VPCD_PORT_ENV] = str(self.vpcd_port)
            conf, pace = build_reader_config(self.workdir, self.vpcd_port)
            self.pace_reader = PACE_READER_NAME + " 00 00" if pace else None
            self.daemon = Pcscd(conf, self.socket_path)
            atexit.register(self.daemon.stop)
        self.daemon.start()

    def stop(self) -> None:
        if self.daemon is None:
            raise RuntimeError("pcscd was not started in this session")
        self.daemon.stop()

    def start(self) -> None:
        if self.daemon is None:
            raise RuntimeError("pcscd was not started in this session")
        self.daemon.start()


_SHARED = SharedPcscd()
# before any PC/SC call of this process: the client library reads it once and keeps it
os.environ[SOCKET_ENV] = str(_SHARED.socket_path)


@pytest.fixture(scope="session")
def pcscd_session() -> Iterator[SharedPcscd]:
    missing = missing_parts()
    if missing:
        pytest.skip("PC/SC test parts not installed: " + ", ".join(missing) + " (./dev test installs them)")
    _SHARED.ensure()
    yield _SHARED
    if _SHARED.daemon is not None:
        _SHARED.daemon.stop()


@pytest.fixture
def pcscd(pcscd_session: SharedPcscd) -> SharedPcscd:
    """pcscd running (restarted if a previous test stopped it)."""
    pcscd_session.ensure()
    return pcscd_session


@pytest.fixture
def vcard(pcscd: SharedPcscd) -> Iterator[VirtualIdCard]:
    """A virtual nPA on this run's vpcd, not yet inserted; removed after the test."""
    card = VirtualIdCard(port=pcscd.vpcd_port)
    yield card
    if card.inserted:
        card.remove()
        wait_reader_empty()


def wait_reader_empty(reader: str = "Virtual PCD 00 00", timeout: float = 3.0) -> None:
    """Block until pcscd has noticed a removal, so the next test starts from an empty slot."""
    from smartcard import scard

    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != 0:
        return
    try:
        state = scard.SCARD_STATE_UNAWARE
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hr, states = scard.SCardGetStatusChange(ctx, 200, [(reader, state)])
            if hr == 0:
                state = states[0][1]
                if state & scard.SCARD_STATE_EMPTY:
                    return
            elif hr & 0xFFFFFFFF != 0x8010000A:  # anything but a timeout: give up quietly
                return
    finally:
        scard.SCardReleaseContext(ctx)


class Deadline:
    """*timeout* seconds from now, for a test's waiting loop (sync here, async in tests/kiosks)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.at = time.monotonic() + timeout

    def check(self) -> None:
        """Fail the test once the time is up."""
        if time.monotonic() > self.at:
            raise AssertionError(f"condition not met within {self.timeout} s")


def wait_until(predicate: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Return the predicate's first truthy value; fail the test after *timeout* seconds."""
    deadline = Deadline(timeout)
    while not (value := predicate()):
        deadline.check()
        time.sleep(interval)
    return value
