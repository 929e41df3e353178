"""PC/SC part 10 reader features and the PACE capability query, sans-I/O.

A comfort reader (PIN pad with PACE) lets AusweisApp do PACE in the reader; the kiosk reports whether
its reader can. GET_FEATURE_REQUEST answers with TLV triples (tag, length 4, big-endian control
code); FEATURE_EXECUTE_PACE (0x20) then answers GetReaderPACECapabilities. pyscard's own feature
parser skips tag 0x20, hence this module.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

FEATURE_VERIFY_PIN_DIRECT = 0x06
FEATURE_MODIFY_PIN_DIRECT = 0x07
FEATURE_IFD_PIN_PROPERTIES = 0x0A
FEATURE_GET_TLV_PROPERTIES = 0x12
FEATURE_EXECUTE_PACE = 0x20

FEATURE_NAMES: dict[int, str] = {
    0x01: "VERIFY_PIN_START",
    0x02: "VERIFY_PIN_FINISH",
    0x03: "MODIFY_PIN_START",
    0x04: "MODIFY_PIN_FINISH",
    0x05: "GET_KEY_PRESSED",
    0x06: "VERIFY_PIN_DIRECT",
    0x07: "MODIFY_PIN_DIRECT",
    0x08: "MCT_READER_DIRECT",
    0x09: "MCT_UNIVERSAL",
    0x0A: "IFD_PIN_PROPERTIES",
    0x0B: "ABORT",
    0x0C: "SET_SPE_MESSAGE",
    0x0D: "VERIFY_PIN_DIRECT_APP_ID",
    0x0E: "MODIFY_PIN_DIRECT_APP_ID",
    0x0F: "WRITE_DISPLAY",
    0x10: "GET_KEY",
    0x11: "IFD_DISPLAY_PROPERTIES",
    0x12: "GET_TLV_PROPERTIES",
    0x13: "CCID_ESC_COMMAND",
    0x20: "EXECUTE_PACE",
}

PACE_FUNCTION_GET_READER_PACE_CAPABILITIES = 0x01

# Bits of the GetReaderPACECapabilities bitmap.
PACE_CAP_ESIGN = 0x10
PACE_CAP_EID = 0x20
PACE_CAP_GENERIC = 0x40
PACE_CAP_DESTROY_CHANNEL = 0x80


class FeatureError(ValueError):
    """A reader answered a part 10 request with bytes that do not follow the format."""


def scard_ctl_code(code: int, platform: str = sys.platform) -> int:
    """SCARD_CTL_CODE as pcsc-lite (0x42000000 + code) or WinSCard (FILE_DEVICE_SMARTCARD) define it."""
    if platform.startswith("win"):
        return (0x31 << 16) | (code << 2)
    return 0x42000000 + code


GET_FEATURE_REQUEST = 3400


def parse_feature_tlvs(data: bytes) -> dict[int, int]:
    """Map feature tag -> control code from a GET_FEATURE_REQUEST answer."""
    features: dict[int, int] = {}
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise FeatureError("feature TLV truncated in its header")
        tag, length = data[pos], data[pos + 1]
        if length != 4:
            raise FeatureError(f"feature 0x{tag:02X} has length {length}, expected 4")
        if pos + 2 + length > len(data):
            raise FeatureError(f"feature 0x{tag:02X} truncated")
        (code,) = struct.unpack(">I", data[pos + 2 : pos + 6])
        features[tag] = code
        pos += 2 + length
    return features


def get_pace_capabilities_command() -> bytes:
    """EstablishPACEChannel-style input for function 1: index, then a 2-byte little-endian length 0."""
    return bytes([PACE_FUNCTION_GET_READER_PACE_CAPABILITIES, 0x00, 0x00])


@dataclass(frozen=True)
class PaceCapabilities:
    esign: bool
    eid: bool
    generic: bool
    destroy_channel: bool

    def names(self) -> list[str]:
        return [
            n
            for n, on in (
                ("eSign", self.esign),
                ("eID", self.eid),
                ("generic", self.generic),
                ("DestroyPACEChannel", self.destroy_channel),
            )
            if on
        ]


def parse_pace_capabilities(data: bytes) -> PaceCapabilities:
    """Parse the reply to GetReaderPACECapabilities.

    Layout: 4-byte result code (0 = success), 2-byte little-endian output length, output. Readers in
    the field (and OpenSC, AusweisApp) send a 1-byte output that is the bitmap itself (7 bytes in
    all); the part 10 amendment text describes a length byte before the bitmap: accept both.
    """
    if len(data) < 6:
        raise FeatureError("PACE capability reply shorter than its header")
    (result,) = struct.unpack("<I", data[0:4])
    if result != 0:
        raise FeatureError(f"reader refused GetReaderPACECapabilities (result 0x{result:08X})")
    (out_len,) = struct.unpack("<H", data[4:6])
    out = data[6:]
    if len(out) != out_len:
        raise FeatureError("PACE capability reply length does not match its content")
    if out_len == 1:
        bitmap = out[0]
    elif out_len == 2 and out[0] == 1:
        bitmap = out[1]
    else:
        raise FeatureError("PACE capability bitmap missing or malformed")
    return PaceCapabilities(
        esign=bool(bitmap & PACE_CAP_ESIGN),
        eid=bool(bitmap & PACE_CAP_EID),
        generic=bool(bitmap & PACE_CAP_GENERIC),
        destroy_channel=bool(bitmap & PACE_CAP_DESTROY_CHANNEL),
    )
