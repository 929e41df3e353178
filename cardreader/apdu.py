"""The few APDUs a kiosk sends (ISO/IEC 7816-4), and reading EF.CardAccess through any transmit.

Only file access that needs no PACE: select the master file and read EF.CardAccess (file ID 011C,
short file ID 0x1C). The transmit function is injected so that the sequence is testable without a
reader and the same code runs over PC/SC and against the virtual card.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cardreader.security_infos import MAX_CARD_ACCESS_SIZE

CARD_ACCESS_FID = b"\x01\x1c"
CARD_ACCESS_SFI = 0x1C
SW_OK = 0x9000
SW_END_OF_FILE = 0x6282


class ApduError(Exception):
    """A response APDU is malformed or reports an error status."""


class CardStatusError(ApduError):
    def __init__(self, what: str, sw: int) -> None:
        super().__init__(f"{what} failed with status {sw:04X}")
        self.sw = sw


@dataclass(frozen=True)
class Response:
    data: bytes
    sw: int


def parse_response(raw: bytes) -> Response:
    if len(raw) < 2:
        raise ApduError("response APDU shorter than a status word")
    return Response(data=bytes(raw[:-2]), sw=(raw[-2] << 8) | raw[-1])


def select_mf() -> bytes:
    """SELECT the master file by its ID 3F00, no response data (P2=0C)."""
    return bytes([0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00])


def select_ef(fid: bytes) -> bytes:
    """SELECT an elementary file under the current DF by file ID, no response data."""
    if len(fid) != 2:
        raise ValueError("file ID must be 2 bytes")
    return bytes([0x00, 0xA4, 0x02, 0x0C, 0x02]) + fid


def read_binary(offset: int, length: int, sfi: int | None = None) -> bytes:
    """READ BINARY; with *sfi* the first read selects the file implicitly (offset < 256 only)."""
    if not 0 < length <= 256:
        raise ValueError("READ BINARY length must be 1..256")
    le = length & 0xFF
    if sfi is not None:
        if not 0 < sfi < 31 or not 0 <= offset < 256:
            raise ValueError("short file ID read needs SFI 1..30 and offset < 256")
        return bytes([0x00, 0xB0, 0x80 | sfi, offset, le])
    if not 0 <= offset < 0x8000:
        raise ValueError("READ BINARY offset out of range")
    return bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, le])


def der_total_length(head: bytes) -> int | None:
    """Total length (header + content) of the DER element starting *head*, or None if *head* is short."""
    if len(head) < 2:
        return None
    first = head[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 3:
        raise ApduError("EF.CardAccess has an unsupported DER length")
    if len(head) < 2 + n:
        return None
    return 2 + n + int.from_bytes(head[2 : 2 + n], "big")


Transmit = Callable[[bytes], bytes]


def read_card_access(transmit: Transmit, chunk: int = 0xDF) -> bytes:
    """Read EF.CardAccess: select it, then READ BINARY until the DER SET is complete.

    Reads only as far as the outer DER length says, so padding after the structure is not read.
    """
    resp = parse_response(transmit(select_mf()))
    if resp.sw != SW_OK:
        raise CardStatusError("SELECT MF", resp.sw)
    resp = parse_response(transmit(select_ef(CARD_ACCESS_FID)))
    if resp.sw != SW_OK:
        raise CardStatusError("SELECT EF.CardAccess", resp.sw)
    data = b""
    total: int | None = None
    while total is None or len(data) < total:
        want = chunk if total is None else min(chunk, total - len(data))
        resp = parse_response(transmit(read_binary(len(data), want)))
        if resp.sw not in (SW_OK, SW_END_OF_FILE):
            raise CardStatusError("READ BINARY EF.CardAccess", resp.sw)
        if not resp.data:
            break
        data += resp.data
        if total is None:
            total = der_total_length(data)
            if total is not None and total > MAX_CARD_ACCESS_SIZE:
                raise ApduError("EF.CardAccess announces a size larger than any real one")
        if resp.sw == SW_END_OF_FILE:
            break
    if total is None or len(data) < total:
        raise ApduError("EF.CardAccess ended before its DER structure")
    return data[:total]
