"""BER-TLV as smart cards use it (ISO/IEC 7816-4): APDU data objects, CV certificates' inner fields.

Only the small subset EAC needs: tags of one to four octets, definite lengths up to four octets. Parsing
is strict (no trailing garbage, no indefinite lengths) because every input here comes from a card or the
network. The one reader of a TLV header is :func:`_header`; :func:`total_length` is the same reader for a
file that arrives in chunks (EF.CardAccess, data groups), so the kiosk and the eID-Server agree on where
a data object ends.
"""

from __future__ import annotations

from dataclasses import dataclass


class TlvError(ValueError):
    """Bytes that are not well-formed BER-TLV."""


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes

    def encode(self) -> bytes:
        return encode(self.tag, self.value)


def _tag_bytes(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode(tag: int, value: bytes) -> bytes:
    """One data object: tag ‖ length ‖ value."""
    return _tag_bytes(tag) + encode_length(len(value)) + value


def _header(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(tag, length, position of the value) of the data object at ``pos``; ``None`` if ``data`` ends
    inside the header. Raises :class:`TlvError` for a header no card sends (overlong tag or length
    field, indefinite length)."""
    start = pos
    if pos >= len(data):
        return None
    first = data[pos]
    pos += 1
    if first & 0x1F == 0x1F:
        while True:
            if pos - start > 3:
                raise TlvError("overlong tag")
            if pos >= len(data):
                return None
            b = data[pos]
            pos += 1
            if not b & 0x80:
                break
    tag = int.from_bytes(data[start:pos], "big")
    if pos >= len(data):
        return None
    length = data[pos]
    pos += 1
    if length == 0x80:
        raise TlvError("indefinite length is not allowed")
    if length > 0x80:
        count = length & 0x7F
        if count > 4:
            raise TlvError("bad length field")
        if pos + count > len(data):
            return None
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, length, pos


def total_length(head: bytes) -> int | None:
    """Header plus value length of the data object that ``head`` begins with; ``None`` while ``head``
    is too short to hold its header (read more). Raises :class:`TlvError` for a malformed header."""
    header = _header(head, 0)
    if header is None:
        return None
    _, length, value_pos = header
    return value_pos + length


def read_one(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    """The data object at ``pos`` and the position after it."""
    header = _header(data, pos)
    if header is None:
        raise TlvError("truncated: the data ends inside a tag or length")
    tag, length, pos = header
    if pos + length > len(data):
        raise TlvError("value runs past the end of the data")
    return Tlv(tag, data[pos : pos + length]), pos + length


def parse_all(data: bytes) -> list[Tlv]:
    """All data objects of ``data`` (which must hold nothing else)."""
    out: list[Tlv] = []
    pos = 0
    while pos < len(data):
        item, pos = read_one(data, pos)
        out.append(item)
    return out


def parse_single(data: bytes, tag: int | None = None) -> Tlv:
    """Exactly one data object (of ``tag`` when given)."""
    item, end = read_one(data)
    if end != len(data):
        raise TlvError("trailing bytes after the data object")
    if tag is not None and item.tag != tag:
        raise TlvError(f"expected tag {tag:X}, found {item.tag:X}")
    return item


def find(items: list[Tlv], tag: int) -> bytes | None:
    """The value of the first object with ``tag``; ``None`` when absent."""
    for item in items:
        if item.tag == tag:
            return item.value
    return None
