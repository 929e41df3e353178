"""pytest fixtures for a real pcscd + vpcd and the virtual ID card (TEST FACILITY).

Import them into a conftest.py (`from cardreader.testing.fixtures import pcscd, vcard, wait_until`).
Only one pcscd may run per machine, so the daemon is a process-wide singleton shared by every conftest
that imports these fixtures. Tests skip - with the reason - only when pcscd or vpcd is not installed.
"""

from __future__ import annotations

import atexit
import tempfile
import time
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from cardreader.testing.pcscd import (
    PACE_READER_NAME,
    Pcscd,
    build_reader_config,
    missing_parts,
    pcscd_running,
)
from cardreader.testing.vcard import VirtualIdCard

T = TypeVar("T")


class SharedPcscd:
    """The session's pcscd. `owned` is False when a system pcscd was already running (no restarts)."""

    def __init__(self) -> None:
        self.daemon: Pcscd | None = None
        self.owned = False
        #: the test PACE reader's name when our pcscd has it (built with gcc), else None
        self.pace_reader: str | None = None

    def ensure(self) -> None:
        if self.daemon is not None and self.daemon.proc is not None and self.daemon.proc.poll() is None:
            return
        if self.daemon is None and pcscd_running():
            self.owned = False
            return
        if self.daemon is None:
            work = Path(tempfile.mkdtemp(prefix="eid-pcscd-"))
            conf = build_reader_config(work)
            self.pace_reader = PACE_READER_NAME + " 00 00" if conf is not None else None
            self.daemon = Pcscd(config_dir=conf)
            atexit.register(self.daemon.stop)
        self.owned = True
        self.daemon.start()

    def stop(self) -> None:
        if not self.owned or self.daemon is None:
            raise RuntimeError("this test session does not own pcscd")
        self.daemon.stop()

    def start(self) -> None:
        if not self.owned or self.daemon is None:
            raise RuntimeError("this test session does not own pcscd")
        self.daemon.start()


_SHARED = SharedPcscd()


@pytest.fixture(scope="session")
def pcscd_session() -> Iterator[SharedPcscd]:
    missing = missing_parts()
    if missing:
        pytest.skip("PC/SC test parts not installed: " + ", ".join(missing) + " (./dev test installs them)")
    _SHARED.ensure()
    yield _SHARED
    if _SHARED.owned and _SHARED.daemon is not None:
        _SHARED.daemon.stop()


@pytest.fixture
def pcscd(pcscd_session: SharedPcscd) -> SharedPcscd:
    """pcscd running (restarted if a previous test stopped it)."""
    pcscd_session.ensure()
    return pcscd_session


@pytest.fixture
def vcard(pcscd: SharedPcscd) -> Iterator[VirtualIdCard]:
    """A virtual nPA, not yet inserted; removed after the test."""
    card = VirtualIdCard()
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


def wait_until(predicate: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Return the predicate's first truthy value; fail the test after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
