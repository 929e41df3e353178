"""ISO/IEC 7816-4 command and response APDUs (short and extended length), as bytes on the wire.

Why here: the eID-Server wraps APDUs in Secure Messaging and the card emulator answers them; the kiosk
sends the few that need no PACE (select the master file, read EF.CardAccess). One codec serves both, and
reading EF.CardAccess takes an injected ``transmit`` so that it runs over PC/SC, against the virtual
card and in tests alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from tr03110 import tlv
from tr03110.security_infos import MAX_CARD_ACCESS_SIZE

SW_OK: Final = 0x9000
SW_END_OF_FILE: Final = 0x6282
CARD_ACCESS_FID: Final = b"\x01\x1c"
CARD_ACCESS_SFI: Final = 0x1C


class ApduError(ValueError):
    """Bytes that are not a well-formed APDU, or a card that answers out of the protocol."""


class CardStatusError(ApduError):
    """The card answered a command with an error status word (``sw``)."""

    def __init__(self, what: str, sw: int) -> None:
        super().__init__(f"{what} failed with status {sw:04X}")
        self.sw = sw


@dataclass(frozen=True)
class CommandApdu:
    """``le``: ``None`` = no response data expected; 256 / 65536 = "as much as there is"."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    @property
    def extended(self) -> bool:
        return len(self.data) > 255 or (self.le is not None and self.le > 256)

    def header(self) -> bytes:
        return bytes([self.cla, self.ins, self.p1, self.p2])

    def encode(self) -> bytes:
        out = bytearray(self.header())
        if self.extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                le = b"\x00\x00" if self.le >= 65536 else self.le.to_bytes(2, "big")
                out += le if self.data else b"\x00" + le
        else:
            if self.data:
                out += bytes([len(self.data)]) + self.data
            if self.le is not None:
                out.append(0 if self.le >= 256 else self.le)
        return bytes(out)

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        if len(raw) < 4:
            raise ApduError("command APDU shorter than its header")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, b"", body[0] or 256)
        if body[0] != 0:  # short
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, body[1:], None)
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, body[1 : 1 + lc], body[-1] or 256)
            raise ApduError("short APDU length mismatch")
        if len(body) == 3:  # extended, Le only
            return cls(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big") or 65536)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ApduError("extended Lc of zero")
        if len(body) == 3 + lc:
            return cls(cla, ins, p1, p2, body[3:], None)
        if len(body) == 5 + lc:
            return cls(cla, ins, p1, p2, body[3 : 3 + lc], int.from_bytes(body[-2:], "big") or 65536)
        raise ApduError("extended APDU length mismatch")


@dataclass(frozen=True)
class ResponseApdu:
    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def decode(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise ApduError("response APDU shorter than a status word")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))


# --- the commands a kiosk sends without PACE --------------------------------------------------------------


def select_mf() -> bytes:
    """SELECT the master file by its ID 3F00, no response data (P2=0C)."""
    return CommandApdu(0x00, 0xA4, 0x00, 0x0C, b"\x3f\x00").encode()


def select_ef(fid: bytes) -> bytes:
    """SELECT an elementary file under the current DF by file ID, no response data."""
    if len(fid) != 2:
        raise ValueError("file ID must be 2 bytes")
    return CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid).encode()


def read_binary(offset: int, length: int, sfi: int | None = None) -> bytes:
    """READ BINARY; with *sfi* the first read selects the file implicitly (offset < 256 only)."""
    if not 0 < length <= 256:
        raise ValueError("READ BINARY length must be 1..256")
    if sfi is not None:
        if not 0 < sfi < 31 or not 0 <= offset < 256:
            raise ValueError("short file ID read needs SFI 1..30 and offset < 256")
        return CommandApdu(0x00, 0xB0, 0x80 | sfi, offset, b"", length).encode()
    if not 0 <= offset < 0x8000:
        raise ValueError("READ BINARY offset out of range")
    return CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, b"", length).encode()


Transmit = Callable[[bytes], bytes]


def read_card_access(transmit: Transmit, chunk: int = 0xDF) -> bytes:
    """Read EF.CardAccess: select it, then READ BINARY until the DER SET is complete.

    Reads only as far as the outer DER length says, so padding after the structure is not read.
    """
    resp = ResponseApdu.decode(transmit(select_mf()))
    if resp.sw != SW_OK:
        raise CardStatusError("SELECT MF", resp.sw)
    resp = ResponseApdu.decode(transmit(select_ef(CARD_ACCESS_FID)))
    if resp.sw != SW_OK:
        raise CardStatusError("SELECT EF.CardAccess", resp.sw)
    data = b""
    total: int | None = None
    while total is None or len(data) < total:
        want = chunk if total is None else min(chunk, total - len(data))
        resp = ResponseApdu.decode(transmit(read_binary(len(data), want)))
        if resp.sw not in (SW_OK, SW_END_OF_FILE):
            raise CardStatusError("READ BINARY EF.CardAccess", resp.sw)
        if not resp.data:
            break
        data += resp.data
        if total is None:
            try:
                total = tlv.total_length(data)
            except tlv.TlvError as exc:
                raise ApduError(f"EF.CardAccess has a malformed DER header: {exc}") from None
            if total is not None and total > MAX_CARD_ACCESS_SIZE:
                raise ApduError("EF.CardAccess announces a size larger than any real one")
        if resp.sw == SW_END_OF_FILE:
            break
    if total is None or len(data) < total:
        raise ApduError("EF.CardAccess ended before its DER structure")
    return data[:total]
