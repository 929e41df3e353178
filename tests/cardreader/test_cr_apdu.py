import pytest

from cardreader.testing.vcard import CardFiles, npa_card_access
from tr03110.apdu import (
    ApduError,
    CardStatusError,
    ResponseApdu,
    read_binary,
    read_card_access,
    select_ef,
    select_mf,
)


def test_command_encodings():
    assert select_mf() == bytes.fromhex("00A4000C023F00")
    assert select_ef(b"\x01\x1c") == bytes.fromhex("00A4020C02011C")
    assert read_binary(0, 256) == bytes.fromhex("00B0000000")
    assert read_binary(0x123, 16) == bytes.fromhex("00B0012310")
    assert read_binary(0, 8, sfi=0x1C) == bytes.fromhex("00B09C0008")
    with pytest.raises(ValueError):
        read_binary(0, 0)
    with pytest.raises(ValueError):
        read_binary(300, 8, sfi=0x1C)


def test_parse_response():
    r = ResponseApdu.decode(b"\x01\x02\x90\x00")
    assert r.data == b"\x01\x02" and r.sw == 0x9000
    with pytest.raises(ApduError, match="shorter"):
        ResponseApdu.decode(b"\x90")


@pytest.mark.parametrize("chunk", [0xDF, 7, 1])
def test_read_card_access_from_card_logic(chunk):
    card = CardFiles(npa_card_access())
    assert read_card_access(card.apdu, chunk=chunk) == npa_card_access()


def test_read_stops_at_der_end_even_with_padding():
    card = CardFiles(npa_card_access() + b"\x00" * 50)
    assert read_card_access(card.apdu) == npa_card_access()


def test_card_without_card_access():
    card = CardFiles(b"")
    card.files.clear()
    with pytest.raises(CardStatusError) as exc:
        read_card_access(card.apdu)
    assert exc.value.sw == 0x6A82


def test_truncated_file_is_an_error():
    card = CardFiles(npa_card_access()[:20])
    with pytest.raises(ApduError, match="ended before"):
        read_card_access(card.apdu)


def test_virtual_card_status_words():
    card = CardFiles(npa_card_access())
    assert card.apdu(bytes.fromhex("80A4000C00")) == b"\x6e\x00"
    assert card.apdu(bytes.fromhex("0088000000")) == b"\x6d\x00"
    assert card.apdu(bytes.fromhex("00B0000010")) == b"\x69\x86"  # nothing selected
    got = card.apdu(read_binary(0, 4, sfi=0x1C))
    assert got == npa_card_access()[:4] + b"\x90\x00"
