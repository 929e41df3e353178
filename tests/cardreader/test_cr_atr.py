import pytest

from cardreader.atr import GERMAN_ID_ATRS, AtrError, looks_like_german_id, parse_atr

NPA = bytes.fromhex("3B8A80018031F873F741E082900075")


def test_npa_atr_structure():
    atr = parse_atr(NPA)
    assert atr.convention == "direct"
    assert atr.protocols == (0, 1)
    assert atr.historical == bytes.fromhex("8031F873F741E0829000")
    assert atr.tck_ok is True
    assert atr.hex == "3B 8A 80 01 80 31 F8 73 F7 41 E0 82 90 00 75"


def test_every_known_npa_atr_parses_and_is_recognised():
    for raw in GERMAN_ID_ATRS:
        parse_atr(raw)
        assert looks_like_german_id(raw)


def test_t0_only_atr_has_no_tck():
    atr = parse_atr(bytes.fromhex("3B0200AB"[:6] + "AB"))  # TS, T0 (2 historical bytes), hist
    assert atr.protocols == (0,) and atr.tck_ok is None and atr.historical == bytes.fromhex("00AB")


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("3B", "shorter than 2"),
        ("3C00", "invalid TS"),
        ("3B8A80018031F873F741E082900074", "TCK"),  # check byte off by one
        ("3B8A80018031F873F741E0829000", "no TCK"),
        ("3B8A8001", "historical"),
        ("3B80", "interface bytes"),
        ("3B0100AA", "trailing"),
        ("3B" + "0F" + "00" * 40, "longer than 33"),
    ],
)
def test_malformed_atrs_are_refused_with_reason(raw, reason):
    with pytest.raises(AtrError, match=reason):
        parse_atr(bytes.fromhex(raw))


def test_unknown_card_is_not_an_npa():
    assert not looks_like_german_id(bytes.fromhex("3B8F8001804F0CA000000306030001000000006A"))
