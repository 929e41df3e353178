"""Fuzzing the parsers of what cards, card readers and CV-certificate issuers send (DER / BER-TLV / APDUs):
only the declared error types may come out. Seeds are built by the project's own encoders (the CVC
chain maker, the card emulator, the data group encoder, the virtual card's EF.CardAccess)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest

from cardreader.atr import GERMAN_ID_ATRS, AtrError, parse_atr
from cardreader.features import FeatureError, parse_feature_tlvs, parse_pace_capabilities
from cardreader.testing.vcard import npa_card_access
from certs.cvc_chain import CvcChain, make_chain
from eid_gateway.eidserver import datagroups, emulator
from eid_gateway.eidserver.cardsecurity import CardSecurityError, parse_card_security
from eid_gateway.simulator.identities import default_identities
from tr03110 import apdu, tlv
from tr03110.apdu import ApduError, read_card_access
from tr03110.cvc import CertificateDescription, Chat, CvcFormatError, parse_certificate_description, parse_cvc
from tr03110.security_infos import SecurityInfosError, parse_security_infos

from .mutate import binary_mutants, fuzz, fuzz_binary

TODAY = datetime.date(2026, 3, 1)


@pytest.fixture(scope="module")
def chain() -> CvcChain:
    return make_chain(today=TODAY)


def test_cv_certificates(chain: CvcChain) -> None:
    fuzz_binary(parse_cvc, [chain.cvca, chain.dv, chain.terminal], 1500, 21, (CvcFormatError,))


def test_certificate_descriptions(chain: CvcChain) -> None:
    with_hashes = CertificateDescription(
        issuer_name="DV",
        subject_name="Stadt",
        terms_of_usage="Bedingungen",
        issuer_url="https://dv.example",
        subject_url="https://stadt.example",
        redirect_url="https://stadt.example/r",
        comm_certificates=(b"\x11" * 32, b"\x22" * 32),
    ).encode()
    fuzz_binary(parse_certificate_description, [chain.description, with_hashes], 1000, 22, (CvcFormatError,))


def test_chat() -> None:
    samples = [
        bytes.fromhex("7f4c12060904007f00070301020253050000001801"),
        bytes.fromhex("7f4c0e060904007f0007030102035301c3"),
    ]
    fuzz_binary(Chat.decode, samples, 1000, 23, (CvcFormatError,))


def test_ef_card_access() -> None:
    samples = [
        npa_card_access(),
        npa_card_access(8),
        emulator.security_infos(with_public_key=False),
        emulator.security_infos(with_public_key=True),
    ]
    fuzz_binary(parse_security_infos, samples, 1500, 24, (SecurityInfosError,))


def test_ef_card_security() -> None:
    fuzz_binary(parse_card_security, [emulator.card_security()], 600, 25, (CardSecurityError,))


def test_data_groups() -> None:
    groups = datagroups.encode_all(default_identities(TODAY)["erika"].data)
    numbers = sorted(groups)

    def inputs() -> Iterator[tuple[int, bytes]]:
        for i, n in enumerate(numbers):
            for data in binary_mutants([groups[n]], 2000 // len(numbers), seed=260 + i):
                yield n, data

    def decode(item: tuple[int, bytes]) -> object:
        return datagroups.decode(*item)

    tally = fuzz("eidserver.datagroups.decode", decode, inputs(), (datagroups.DataGroupError,))
    tally.check(min_inputs=2000 // len(numbers) * len(numbers))


def test_atr() -> None:
    samples = sorted(GERMAN_ID_ATRS) + [bytes.fromhex("3B0200AB"), bytes.fromhex("3F9600801F438031E073FE211B6307")]
    fuzz_binary(parse_atr, samples, 2000, 27, (AtrError,))


def test_reader_features() -> None:
    features = [bytes.fromhex("060442342C00070442342C010A0442342C02120442342C03200442342C04"), b""]
    fuzz_binary(parse_feature_tlvs, features, 1000, 28, (FeatureError,))
    capabilities = [bytes.fromhex("00000000010040"), bytes.fromhex("0000000002000160")]
    fuzz_binary(parse_pace_capabilities, capabilities, 1000, 29, (FeatureError,))


def test_read_card_access_over_a_fuzzed_card() -> None:
    """The kiosk reads EF.CardAccess in chunks and trusts the DER length it announces only so far."""
    good = npa_card_access()

    def read(card_file: bytes) -> bytes:
        def transmit(command: bytes) -> bytes:
            if command[1] == 0xA4:
                return b"\x90\x00"
            offset = (command[2] << 8) | command[3]
            chunk = card_file[offset : offset + (command[4] or 256)]
            return chunk + (b"\x90\x00" if offset + len(chunk) < len(card_file) else b"\x62\x82")

        return read_card_access(transmit, chunk=16)

    tally = fuzz("tr03110.apdu.read_card_access", read, binary_mutants([good], 1500, seed=30), (ApduError,))
    tally.check(min_inputs=1500)
    heads = [good[:4], b"\x31\x82\x01\x00", b"\x31\x84\xff\xff\xff\xff"]
    fuzz_binary(tlv.total_length, heads, 500, 31, (tlv.TlvError,))
    fuzz_binary(apdu.ResponseApdu.decode, [b"\x90\x00", good + b"\x90\x00"], 500, 32, (ApduError,))


def test_ber_tlv(chain: CvcChain) -> None:
    samples = [
        chain.terminal,
        emulator.card_security(),
        tlv.encode(0x87, b"\x01" + b"\x00" * 16) + tlv.encode(0x99, b"\x90\x00") + tlv.encode(0x8E, b"\x00" * 8),
    ]
    fuzz_binary(tlv.parse_all, samples, 2000, 33, (tlv.TlvError,))
    fuzz_binary(tlv.parse_single, samples, 1000, 34, (tlv.TlvError,))


def test_apdus() -> None:
    commands = [
        apdu.CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x01\x1c").encode(),
        apdu.CommandApdu(0x0C, 0xB0, 0x81, 0x00, b"", 256).encode(),
        apdu.CommandApdu(0x00, 0x2A, 0x00, 0xBE, b"\x7f" * 300, 65536).encode(),
        apdu.CommandApdu(0x00, 0x22, 0x81, 0xA4, b"", 1000).encode(),
    ]
    fuzz_binary(apdu.CommandApdu.decode, commands, 1500, 35, (apdu.ApduError,))
    fuzz_binary(apdu.ResponseApdu.decode, [b"\x90\x00", b"\x01\x02\x63\x00"], 500, 36, (apdu.ApduError,))
