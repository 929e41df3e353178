"""ISO/IEC 7816-4 command and response APDUs (short and extended length), as bytes on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

SW_OK: Final = 0x9000


class ApduError(ValueError):
    """Bytes that are not a well-formed APDU."""


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
                return cls(cla, ins, p1, p2, body[1:1 + lc], body[-1] or 256)
            raise ApduError("short APDU length mismatch")
        if len(body) == 3:  # extended, Le only
            return cls(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big") or 65536)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ApduError("extended Lc of zero")
        if len(body) == 3 + lc:
            return cls(cla, ins, p1, p2, body[3:], None)
        if len(body) == 5 + lc:
            return cls(cla, ins, p1, p2, body[3:3 + lc], int.from_bytes(body[-2:], "big") or 65536)
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
            raise ApduError("response APDU without status word")
        return cls(raw[:-2], int.from_bytes(raw[-2:], "big"))
