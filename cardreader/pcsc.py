"""Thin adapter over pyscard's low-level PC/SC API (smartcard.scard).

Every call returns a value or raises PcscError carrying the PC/SC return code and its name; nothing
here decides what an error *means* for the kiosk (that is monitor.py's job). The names and numeric
codes are pcsc-lite's / WinSCard's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smartcard import scard

from cardreader.features import GET_FEATURE_REQUEST, scard_ctl_code

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"

# Return codes the monitor maps to states.
S_SUCCESS = 0
E_CANCELLED = 0x80100002
E_INVALID_HANDLE = 0x80100003
E_TIMEOUT = 0x8010000A
E_SHARING_VIOLATION = 0x8010000B
E_NO_SMARTCARD = 0x8010000C
E_UNKNOWN_READER = 0x80100009
E_NOT_READY = 0x80100010
F_COMM_ERROR = 0x80100013
E_READER_UNAVAILABLE = 0x80100017
E_NO_SERVICE = 0x8010001D
E_SERVICE_STOPPED = 0x8010001E
E_NO_READERS_AVAILABLE = 0x8010002E
W_UNRESPONSIVE_CARD = 0x80100066
W_UNPOWERED_CARD = 0x80100067
W_RESET_CARD = 0x80100068
W_REMOVED_CARD = 0x80100069
E_INVALID_VALUE = 0x80100011
E_NOT_TRANSACTED = 0x80100016
E_PROTO_MISMATCH = 0x8010000F
E_UNSUPPORTED_FEATURE = 0x8010001F
E_INSUFFICIENT_BUFFER = 0x80100008

SERVICE_GONE = frozenset({E_NO_SERVICE, E_SERVICE_STOPPED, F_COMM_ERROR, E_INVALID_HANDLE})

_NAMES: dict[int, str] = {}
for _n in dir(scard):
    if _n.startswith(("SCARD_E_", "SCARD_W_", "SCARD_F_", "SCARD_P_")):
        _v = getattr(scard, _n)
        if isinstance(_v, int):
            _NAMES.setdefault(_v & 0xFFFFFFFF, _n)


def error_name(code: int) -> str:
    return _NAMES.get(code & 0xFFFFFFFF, f"0x{code & 0xFFFFFFFF:08X}")


class PcscError(Exception):
    """A PC/SC call returned an error code."""

    def __init__(self, call: str, code: int) -> None:
        self.code = code & 0xFFFFFFFF
        self.name = error_name(self.code)
        super().__init__(f"{call}: {self.name}")


def _check(call: str, hresult: int) -> None:
    if hresult & 0xFFFFFFFF != S_SUCCESS:
        raise PcscError(call, hresult)


# Reader state flags (SCARD_STATE_*), identical in pcsc-lite and WinSCard.
STATE_UNAWARE = 0x0000
STATE_IGNORE = 0x0001
STATE_CHANGED = 0x0002
STATE_UNKNOWN = 0x0004
STATE_UNAVAILABLE = 0x0008
STATE_EMPTY = 0x0010
STATE_PRESENT = 0x0020
STATE_ATRMATCH = 0x0040
STATE_EXCLUSIVE = 0x0080
STATE_INUSE = 0x0100
STATE_MUTE = 0x0200


@dataclass(frozen=True)
class ReaderEvent:
    reader: str
    event_state: int
    atr: bytes

    @property
    def counter(self) -> int:
        """Insert/remove counter pcsc-lite keeps in the upper 16 bits (changes on each re-insertion)."""
        return (self.event_state >> 16) & 0xFFFF

    @property
    def flags(self) -> int:
        return self.event_state & 0xFFFF


class CardConnection:
    """A shared (or direct) connection to one reader; always disconnect with LEAVE_CARD."""

    def __init__(self, handle: Any, protocol: int) -> None:
        self._handle = handle
        self._protocol = protocol

    def transmit(self, apdu: bytes) -> bytes:
        hresult, response = scard.SCardTransmit(self._handle, self._protocol, list(apdu))
        _check("SCardTransmit", hresult)
        return bytes(response)

    def control(self, code: int, data: bytes) -> bytes:
        hresult, response = scard.SCardControl(self._handle, code, list(data))
        _check("SCardControl", hresult)
        return bytes(response)

    def features(self) -> bytes:
        return self.control(scard_ctl_code(GET_FEATURE_REQUEST), b"")

    def close(self) -> None:
        scard.SCardDisconnect(self._handle, scard.SCARD_LEAVE_CARD)


class PcscContext:
    """One SCARDCONTEXT. After pcscd restarts it is dead for good: release it and make a new one."""

    def __init__(self) -> None:
        hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        _check("SCardEstablishContext", hresult)
        self._ctx = ctx
        self._released = False

    def list_readers(self) -> list[str]:
        hresult, readers = scard.SCardListReaders(self._ctx, [])
        if hresult & 0xFFFFFFFF == E_NO_READERS_AVAILABLE:
            return []
        _check("SCardListReaders", hresult)
        return list(readers)

    def get_status_change(self, timeout_ms: int, states: list[tuple[str, int]]) -> list[ReaderEvent]:
        """Block until a reader's state differs from *states* (or the timeout: PcscError E_TIMEOUT)."""
        hresult, new = scard.SCardGetStatusChange(self._ctx, timeout_ms, states)
        _check("SCardGetStatusChange", hresult)
        return [ReaderEvent(reader=r, event_state=s & 0xFFFFFFFF, atr=bytes(a)) for r, s, a in new]

    def connect(self, reader: str, direct: bool = False) -> CardConnection:
        if direct:
            hresult, handle, proto = scard.SCardConnect(self._ctx, reader, scard.SCARD_SHARE_DIRECT, 0)
        else:
            hresult, handle, proto = scard.SCardConnect(
                self._ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
            )
        _check("SCardConnect", hresult)
        return CardConnection(handle, proto)

    def cancel(self) -> None:
        """Wake a blocked get_status_change from another thread (it then raises E_CANCELLED)."""
        if not self._released:
            scard.SCardCancel(self._ctx)

    def release(self) -> None:
        if not self._released:
            self._released = True
            scard.SCardReleaseContext(self._ctx)
