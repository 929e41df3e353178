"""BER-TLV (:mod:`tr03110.tlv`): one header reader, used on whole data (``read_one``) and on a file that
arrives in chunks (``total_length``: the kiosk's EF.CardAccess, the eID-Server's data groups).

Expected lengths are counted by hand from ISO/IEC 7816-4's rules, not computed with the module."""

from __future__ import annotations

import pytest

from tr03110 import tlv


@pytest.mark.parametrize(
    ("head", "total"),
    [
        (b"\x31\x05", 2 + 5),
        (b"\x31\x81\x81", 3 + 0x81),
        (b"\x7f\x21\x82\x01\x2c", 5 + 300),  # two-octet tag (CV certificate), two length octets
        (b"\x5f\x1f\x00", 3),
        (b"\x7f\x4e\x84\x00\x01\x00\x00", 7 + 0x10000),  # four length octets: the most a card sends
    ],
)
def test_total_length_from_the_header_alone(head: bytes, total: int) -> None:
    assert tlv.total_length(head) == total
    assert tlv.total_length(head + b"\x00" * 10) == total  # what follows the header does not count


@pytest.mark.parametrize("head", [b"", b"\x31", b"\x7f", b"\x7f\x21", b"\x31\x82\x01", b"\x7f\xff\xff"])
def test_total_length_asks_for_more_while_the_header_is_incomplete(head: bytes) -> None:
    assert tlv.total_length(head) is None
    with pytest.raises(tlv.TlvError, match="truncated"):
        tlv.read_one(head)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"\x31\x80\x00\x00", "indefinite"),
        (b"\x31\x85\x00\x00\x00\x00\x01", "length field"),
        (b"\x1f\x81\x81\x81\x81\x01\x00", "overlong tag"),
    ],
)
def test_malformed_headers_are_refused_by_both_readers(head: bytes, message: str) -> None:
    with pytest.raises(tlv.TlvError, match=message):
        tlv.total_length(head)
    with pytest.raises(tlv.TlvError, match=message):
        tlv.read_one(head)


@pytest.mark.parametrize(
    "obj",
    [
        tlv.encode(0x31, b"\x00" * 5),
        tlv.encode(0x61, b"\x01" * 0x81),
        tlv.encode(0x7F21, b"\x02" * 300),
        tlv.encode(0x7F4E, b"\x03" * 70000),
    ],
)
def test_total_length_agrees_with_read_one(obj: bytes) -> None:
    item, end = tlv.read_one(obj)
    assert end == len(obj) == tlv.total_length(obj)
    header = len(obj) - len(item.value)
    for cut in range(header):
        assert tlv.total_length(obj[:cut]) is None
    assert tlv.total_length(obj[:header]) == len(obj)
    with pytest.raises(tlv.TlvError, match="past the end"):
        tlv.read_one(obj[:-1])
