"""EAC crypto against independent references.

- AES-CMAC: RFC 4493 section 4 test vectors.
- KDF: the PACE password key of PIN 123456 for AES-128 as AusweisApp's KDF test states it.
- Secure Messaging: AusweisApp 1.26.2's SecureMessaging test vectors (keys "F1234567890ABCDE" /
  "1234567890ABCDEF"), computed by its C++/OpenSSL implementation.
- Chip Authentication and Restricted Identification: AusweisApp's simulator-card test vectors (its
  static CA key, RI key 1, fixed nonce): our token and RI hash must equal what that card answers.
- Terminal Authentication: our plain r‖s signature verified by `cryptography`'s ECDSA after DER
  conversion, and refused when any signed octet changes.
TR-03110 part 3 itself publishes no worked example for CA/SM with AES that we could use offline.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from eid_gateway.eidserver.emulator import CA_NONCE, CA_PRIVATE, RI_PRIVATE
from eid_gateway.eidserver.sm import SecureMessaging, SecureMessagingError, pad, unpad
from tr03110 import crypto, oids, tlv
from tr03110.apdu import CommandApdu, ResponseApdu

RFC4493_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")


@pytest.mark.parametrize(
    ("message", "mac"),
    [
        ("", "bb1d6929e95937287fa37d129b756746"),
        ("6bc1bee22e409f96e93d7e117393172a", "070a16b46b4d4144f79bdd9dd04a287c"),
        (
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411",
            "dfa66747de9ae63030ca32611497c827",
        ),
    ],
)
def test_cmac_rfc4493(message: str, mac: str) -> None:
    assert crypto.aes_cmac(RFC4493_KEY, bytes.fromhex(message)) == bytes.fromhex(mac)[:8]


def test_kdf_pace_password_vector() -> None:
    assert crypto.kdf(b"123456", None, 3, 16).hex() == "591468cda83d65219cccb8560233600f"


def test_kdf_counter_and_lengths() -> None:
    secret = bytes(range(32))
    assert crypto.kdf_enc(secret, b"n") != crypto.kdf_mac(secret, b"n")
    assert len(crypto.kdf_enc(secret, None, 32)) == 32 and len(crypto.kdf_enc(secret, None, 24)) == 24


def _ausweisapp_sm() -> SecureMessaging:
    return SecureMessaging(b"F1234567890ABCDE", b"1234567890ABCDEF")


@pytest.mark.parametrize(
    ("plain", "protected"),
    [
        ("00222030", "0C2220300A8E086733A03D8E9AC66900"),
        ("0022203008", "0C2220300D9701088E0844B066BC91C77C4500"),
        ("0022203000", "0C2220300D9701008E0875F18DD4F6B913D500"),
        ("00222030000000", "0C22203000000E970200008E08E5A6AE57AD293C450000"),
        ("0022203004D0D1D2D300", "0C22203020871101CC30C03DBE01213486B74CE1F48F5C499701008E08A822685D1780FADD00"),
        (
            "00222030000004D0D1D2D30000",
            "0C222030000021871101CC30C03DBE01213486B74CE1F48F5C49970200008E08C076CEC6A1CC26020000",
        ),
    ],
)
def test_secure_messaging_matches_ausweisapp(plain: str, protected: str) -> None:
    sm = _ausweisapp_sm()
    assert sm.wrap_command(CommandApdu.decode(bytes.fromhex(plain))).encode().hex().upper() == protected


def test_secure_messaging_counter_sequence_matches_ausweisapp() -> None:
    sm = _ausweisapp_sm()
    cmd = CommandApdu.decode(bytes.fromhex("00222030000004D0D1D2D30000"))
    got = [sm.wrap_command(cmd).encode().hex().upper() for _ in range(4)]
    assert got[1] == "0C22203000002187110140EADE1A656A226767536A7CEC2AC6F9970200008E08451D5C632AB4EE240000"
    assert got[3] == "0C222030000021871101252538E3EBAD320FCD01905459F6B6E0970200008E080F1C93C6D9BDBCF20000"


def test_secure_messaging_round_trip_and_tamper() -> None:
    terminal, card = _ausweisapp_sm(), _ausweisapp_sm()
    wrapped = terminal.wrap_command(CommandApdu(0x00, 0xB0, 0x81, 0x00, b"", 256))
    plain = card.unwrap_command(wrapped)
    assert (plain.ins, plain.p1, plain.le) == (0xB0, 0x81, 256)
    response = card.wrap_response(ResponseApdu(b"\x61\x04\x13\x02ID", 0x9000))
    assert terminal.unwrap_response(response) == ResponseApdu(b"\x61\x04\x13\x02ID", 0x9000)
    # a flipped cryptogram bit, a replay (wrong counter) and a lost channel are all refused
    terminal2, card2 = _ausweisapp_sm(), _ausweisapp_sm()
    card2.unwrap_command(terminal2.wrap_command(CommandApdu(0x00, 0xB0, 0x81, 0x00, b"", 256)))
    good = card2.wrap_response(ResponseApdu(b"secret", 0x9000))
    bad = bytearray(good.data)
    bad[4] ^= 1
    with pytest.raises(SecureMessagingError, match="MAC"):
        _copy(terminal2).unwrap_response(ResponseApdu(bytes(bad), 0x9000))
    terminal2.ssc += 2
    with pytest.raises(SecureMessagingError, match="MAC"):
        terminal2.unwrap_response(good)
    with pytest.raises(SecureMessagingError, match="dropped the channel"):
        _ausweisapp_sm().unwrap_response(ResponseApdu(b"", 0x6982))


def _copy(sm: SecureMessaging) -> SecureMessaging:
    return SecureMessaging(sm.k_enc, sm.k_mac, sm.ssc)


def test_padding() -> None:
    assert pad(b"") == b"\x80" + bytes(15)
    assert len(pad(bytes(16))) == 32
    assert unpad(pad(b"abc")) == b"abc"
    with pytest.raises(SecureMessagingError):
        unpad(bytes(16))


def test_chip_authentication_token_matches_ausweisapp_simulator_card() -> None:
    """AusweisApp's simulator card answers this terminal key with nonce 0001…07 and token 82F3A939…"""
    terminal_point = bytes.fromhex(
        "0493ECE64A5A0CA9DF88F34D274DB546BB7AE657B85D269FBAAD2A47195654A4DE136E3A8A92081DD88C578D056EC5607"
        "FFA3C53A7B9A652958FDB114757F65B7B"
    )
    secret = crypto.ecdh_x(crypto.private_key_from_scalar(CA_PRIVATE), terminal_point)
    k_mac = crypto.kdf_mac(secret, CA_NONCE)
    token = crypto.authentication_token(k_mac, oids.ID_CA_ECDH_AES_CBC_CMAC_128, terminal_point)
    assert token.hex().upper() == "82F3A9399B577955"
    crypto.verify_authentication_token(k_mac, oids.ID_CA_ECDH_AES_CBC_CMAC_128, terminal_point, token)
    with pytest.raises(crypto.AuthenticationTokenMismatch):
        crypto.verify_authentication_token(k_mac, oids.ID_CA_ECDH_AES_CBC_CMAC_128, terminal_point, bytes(8))


def test_server_side_ca_derivation_equals_card_side() -> None:
    """Server: ECDH(ephemeral, chip static public) — card: ECDH(static, ephemeral public): same keys."""
    eph = crypto.generate_key()
    chip = crypto.private_key_from_scalar(CA_PRIVATE)
    server = crypto.ecdh_x(eph, crypto.point(chip.public_key()))
    card = crypto.ecdh_x(chip, crypto.point(eph.public_key()))
    assert server == card and len(server) == 32


def test_restricted_identification_matches_ausweisapp_simulator_card() -> None:
    sector = bytes.fromhex(
        "04373CD3BAD6245F6EDEB382E066C57107B84BF5EF2834201AAEA41CC0D4728903083687C8C37C1D005C61BE2C12236410"
        "1C2CBC41FFC3EC48C96E3F1D4F646ABE"
    )
    rid = crypto.restricted_id(crypto.private_key_from_scalar(RI_PRIVATE[1]), sector)
    assert rid.hex().upper() == "6C877EC6E470BCC1C40F5AAC180D90EDB907AC091E33D402BDD3C99CD0DDE503"


def test_ta_signature_verifies_with_cryptography_and_breaks_on_any_change() -> None:
    key = crypto.generate_key()
    data = crypto.ta_data(bytes(20), bytes(8), crypto.point(crypto.generate_key().public_key()), b"\x67\x00")
    sig = crypto.ta_sign(key, data)
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    key.public_key().verify(der, data, ec.ECDSA(hashes.SHA256()))  # raises if wrong
    assert crypto.ta_verify(key.public_key(), data, sig)
    for i in (0, 20, 28, len(data) - 1):
        changed = bytearray(data)
        changed[i] ^= 0x01
        assert not crypto.ta_verify(key.public_key(), bytes(changed), sig)
    assert not crypto.ta_verify(key.public_key(), data, sig[:-1])


def test_points_off_the_curve_are_refused() -> None:
    good = crypto.point(crypto.generate_key().public_key())
    with pytest.raises(crypto.EacCryptoError, match="not on"):
        crypto.public_key_from_point(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(crypto.EacCryptoError, match="uncompressed"):
        crypto.public_key_from_point(b"\x02" + good[1:33])


def test_tlv_strictness() -> None:
    assert tlv.parse_single(tlv.encode(0x7F49, b"x" * 300), 0x7F49).value == b"x" * 300
    for bad in (b"\x30\x80\x00\x00", b"\x30\x05ab", b"\x30\x01a\x00", b"\x5f"):
        with pytest.raises(tlv.TlvError):
            tlv.parse_single(bad)


def test_apdu_codec() -> None:
    for raw in (
        "00A4040C09E80704007F00070302",
        "00B0810000",
        "0084000008",
        "00222030000004D0D1D2D30000",
        "00222030000000",
        "00222030",
    ):
        assert CommandApdu.decode(bytes.fromhex(raw)).encode().hex().upper() == raw
    from tr03110.apdu import ApduError

    with pytest.raises(ApduError):
        CommandApdu.decode(bytes.fromhex("00A4040C09E807"))
