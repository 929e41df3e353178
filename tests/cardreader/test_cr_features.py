import struct

import pytest

from cardreader.features import (
    FEATURE_EXECUTE_PACE,
    FEATURE_VERIFY_PIN_DIRECT,
    FeatureError,
    get_pace_capabilities_command,
    parse_feature_tlvs,
    parse_pace_capabilities,
    scard_ctl_code,
)
from cardreader.identify import reader_pace_from

# GET_FEATURE_REQUEST answer of a comfort reader (shape as pcsc-lite's ccid driver sends it):
# VERIFY_PIN_DIRECT, MODIFY_PIN_DIRECT, IFD_PIN_PROPERTIES, GET_TLV_PROPERTIES, EXECUTE_PACE.
COMFORT_READER = bytes.fromhex("06044234 2C0007044234 2C010A044234 2C0212044234 2C0320044234 2C04".replace(" ", ""))


def test_scard_ctl_code_linux_and_windows():
    assert scard_ctl_code(3400, "linux") == 0x42000D48
    assert scard_ctl_code(3400, "win32") == 0x00313520


def test_feature_tlvs_include_execute_pace():
    features = parse_feature_tlvs(COMFORT_READER)
    assert features[FEATURE_VERIFY_PIN_DIRECT] == 0x42342C00
    assert features[FEATURE_EXECUTE_PACE] == 0x42342C04
    assert len(features) == 5


def test_empty_feature_list():
    assert parse_feature_tlvs(b"") == {}


@pytest.mark.parametrize(
    "data, reason",
    [(b"\x20", "truncated in its header"), (b"\x20\x02\x00\x01", "length 2"), (b"\x20\x04\x42\x34", "truncated")],
)
def test_bad_feature_tlvs(data, reason):
    with pytest.raises(FeatureError, match=reason):
        parse_feature_tlvs(data)


def test_pace_capabilities_command():
    assert get_pace_capabilities_command() == b"\x01\x00\x00"


def _reply(result, out):
    return struct.pack("<IH", result, len(out)) + out


def test_pace_capabilities_seven_byte_form():
    caps = parse_pace_capabilities(_reply(0, b"\x70"))  # eSign + eID + generic
    assert (caps.esign, caps.eid, caps.generic, caps.destroy_channel) == (True, True, True, False)
    assert caps.names() == ["eSign", "eID", "generic"]


def test_pace_capabilities_with_length_byte():
    caps = parse_pace_capabilities(_reply(0, b"\x01\xe0"))
    assert caps.names() == ["eID", "generic", "DestroyPACEChannel"]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\x00\x00", "shorter"),
        (_reply(0xF0000001, b"\x70"), "refused"),
        (struct.pack("<IH", 0, 3) + b"\x70", "does not match"),
        (_reply(0, b""), "missing"),
        (_reply(0, b"\x05\x70"), "malformed"),
    ],
)
def test_bad_pace_capabilities(data, reason):
    with pytest.raises(FeatureError, match=reason):
        parse_pace_capabilities(data)


def test_reader_pace_summary():
    features = parse_feature_tlvs(COMFORT_READER)
    assert reader_pace_from(features, parse_pace_capabilities(_reply(0, b"\x60"))) == ("eID", "generic")
    assert reader_pace_from(features, None) == ()
    assert reader_pace_from({FEATURE_VERIFY_PIN_DIRECT: 1}, None) is None
