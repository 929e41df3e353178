"""EF.CardSecurity (CMS) and the data groups (pyasn1), with their failure modes."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from eid_gateway.eid.messages import PersonalData
from eid_gateway.eidserver import datagroups
from eid_gateway.eidserver.cardsecurity import CardSecurityError, parse_card_security, parse_security_infos
from eid_gateway.eidserver.emulator import (
    CA_KEY_ID,
    CA_PRIVATE,
    _document_signer,
    card_files,
    card_security,
    security_infos,
    simulator_files,
)
from eid_gateway.identity import PartialDate, Place
from eid_gateway.simulator.identities import default_identities
from tr03110 import crypto, oids


def test_card_security_parses_and_verifies() -> None:
    cs = parse_card_security(card_security())
    assert cs.signature_verified and cs.signer is not None
    key = cs.key(None)
    assert key.key_id == CA_KEY_ID
    assert key.point == crypto.point(crypto.private_key_from_scalar(CA_PRIVATE).public_key())
    assert cs.ca_infos[0].protocol == oids.ID_CA_ECDH_AES_CBC_CMAC_128 and cs.ca_infos[0].key_id == CA_KEY_ID
    with pytest.raises(CardSecurityError, match="keyId 7"):
        cs.key(7)


def test_card_security_signature_by_another_key_is_refused() -> None:
    _, cert = _document_signer()
    forged = card_security((ec.generate_private_key(ec.SECP256R1()), cert))
    with pytest.raises(CardSecurityError, match="signature does not verify"):
        parse_card_security(forged)


def test_card_security_with_changed_content_is_refused() -> None:
    good = card_security()
    content = security_infos(with_public_key=True)
    i = good.index(content)
    tampered = bytearray(good)
    tampered[i + len(content) - 3] ^= 0x01  # a bit of the CA public key
    with pytest.raises(CardSecurityError, match="messageDigest"):
        parse_card_security(bytes(tampered))


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x02\x01\x00", b"\x04\x00", card_security() + b"\x00"])
def test_card_security_garbage(data: bytes) -> None:
    with pytest.raises(CardSecurityError):
        parse_card_security(data)


def test_card_access_has_no_ca_key() -> None:
    keys, infos = parse_security_infos(security_infos(with_public_key=False))
    assert keys == () and infos[0].key_id == CA_KEY_ID


@pytest.mark.parametrize("name", sorted(default_identities()))
def test_data_groups_round_trip(name: str) -> None:
    data = replace(default_identities()[name].data, restricted_id=None)
    assert datagroups.personal_data(datagroups.encode_all(data)) == data


def test_data_group_encodings_match_the_card_layout() -> None:
    # DG9 free text place: 69 { A1 { 0C "BERLIN" } }; DG8 NumericString; DG18 OCTET STRING (BCD-like hex)
    assert datagroups.encode(9, Place(freetext="BERLIN")).hex().upper() == "690AA1080C064245524C494E"
    assert datagroups.encode(8, PartialDate(1964, 8, 12)) == bytes.fromhex("680A12083139363430383132")
    assert datagroups.encode(18, "02760503150000") == bytes.fromhex("72090407" + "02760503150000")
    assert datagroups.decode(8, bytes.fromhex("680A1208313934362020202020")[:12]) == PartialDate(1946)
    assert datagroups.decode(17, datagroups.encode(17, Place(street="A", city="B", country="D"))) == Place(
        street="A", city="B", country="D"
    )


@pytest.mark.parametrize(
    ("n", "data", "message"),
    [
        (4, b"\x64\x03\x0c\x01", "does not decode"),
        (4, bytes.fromhex("64030C01410000"), "trailing"),
        (8, bytes.fromhex("6806120431393634"), "yyyymmdd"),
        (3, bytes.fromhex("630A12083230323920202020"), "incomplete"),
        (11, b"\x6b\x00", "not supported"),
        (1, bytes.fromhex("6404130249 44".replace(" ", "")), "does not decode"),
    ],
)
def test_data_group_errors_name_no_content(n: int, data: bytes, message: str) -> None:
    with pytest.raises(datagroups.DataGroupError, match=message) as exc:
        datagroups.decode(n, data)
    assert "ERIKA" not in str(exc.value)


def test_simulator_files_for_set_card() -> None:
    files = simulator_files(PersonalData(given_names="ANNA", family_names="TEST", date_of_expiry="2030-01-01"))
    ids = {(f["fileId"], f["shortFileId"]) for f in files}
    assert {("2F00", "1E"), ("011C", "1C"), ("011D", "1D"), ("0104", "04"), ("0105", "05"), ("0103", "03")} <= ids
    assert all(len(f["content"]) % 2 == 0 for f in files)
    assert len(card_files(PersonalData())) == 3
