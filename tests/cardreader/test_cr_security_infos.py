import pytest
from pyasn1.codec.der import encoder
from pyasn1.type import univ

from cardreader.testing.vcard import npa_card_access
from tr03110.security_infos import (
    ChipAuthenticationDomainParameterInfo,
    ChipAuthenticationInfo,
    PaceDomainParameterInfo,
    PaceInfo,
    SecurityInfosError,
    TerminalAuthenticationInfo,
    UnknownInfo,
    parse_security_infos,
    protocol_name,
)

PACE_GM_AES128 = "0.4.0.127.0.7.2.2.4.2.2"


def _seq(*items):
    """DER SEQUENCE of pyasn1 values or already-encoded bytes."""
    body = b"".join(i if isinstance(i, bytes) else bytes(encoder.encode(i)) for i in items)
    return b"\x30" + bytes([len(body)]) + body


def _set(*entries):
    body = b"".join(sorted(entries))
    return b"\x31" + bytes([len(body)]) + body


def test_npa_card_access():
    infos = parse_security_infos(npa_card_access())
    assert infos.is_eid_capable
    (pace,) = infos.pace
    assert pace == PaceInfo(PACE_GM_AES128, 2, 13)
    assert pace.name == "id-PACE-ECDH-GM-AES-CBC-CMAC-128"
    assert pace.parameter_name == "brainpoolP256r1"
    assert infos.chip_authentication == (ChipAuthenticationInfo("0.4.0.127.0.7.2.2.3.2.2", 2, 41),)
    assert infos.has_terminal_authentication
    kinds = {type(e) for e in infos.entries}
    assert kinds == {
        PaceInfo,
        ChipAuthenticationInfo,
        ChipAuthenticationDomainParameterInfo,
        TerminalAuthenticationInfo,
        UnknownInfo,
    }
    cadp = next(e for e in infos.entries if isinstance(e, ChipAuthenticationDomainParameterInfo))
    assert cadp.key_id == 41 and cadp.algorithm == "0.4.0.127.0.7.1.2"


def test_unknown_oids_are_kept_not_fatal():
    data = _set(
        _seq(univ.ObjectIdentifier(PACE_GM_AES128), univ.Integer(2), univ.Integer(13)),
        _seq(univ.ObjectIdentifier("1.2.3.4.5"), univ.OctetString(b"\x01\x02")),
    )
    infos = parse_security_infos(data)
    unknown = [e for e in infos.entries if isinstance(e, UnknownInfo)]
    assert len(unknown) == 1 and unknown[0].protocol == "1.2.3.4.5"
    assert unknown[0].der.startswith(b"\x30")


def test_pace_info_without_parameter_id_and_domain_parameter_info():
    alg = _seq(univ.ObjectIdentifier("0.4.0.127.0.7.1.2"), univ.Integer(16))
    data = _set(
        _seq(univ.ObjectIdentifier("0.4.0.127.0.7.2.2.4.6.4"), univ.Integer(2)),
        _seq(univ.ObjectIdentifier("0.4.0.127.0.7.2.2.4.2"), alg),
    )
    infos = parse_security_infos(data)
    (pace,) = infos.pace
    assert pace.parameter_id is None and pace.name == "id-PACE-ECDH-CAM-AES-CBC-CMAC-256"
    dp = next(e for e in infos.entries if isinstance(e, PaceDomainParameterInfo))
    assert dp.parameter_id == 16


def test_no_pace_means_not_eid_capable():
    data = _set(_seq(univ.ObjectIdentifier("0.4.0.127.0.7.2.2.2"), univ.Integer(2)))
    assert not parse_security_infos(data).is_eid_capable


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"\x30\x00", "does not start with a SET"),
        (b"\x31\x05\x30\x03", "not DER"),
        (npa_card_access() + b"\x00", "bytes after"),
        (b"\x31\x00", "empty SET"),
        (b"\x31" + b"\x82\x10\x00" + b"\x00" * 4096, "larger than any real"),
    ],
)
def test_malformed_card_access(data, reason):
    with pytest.raises(SecurityInfosError, match=reason):
        parse_security_infos(data)


def test_pace_version_must_be_integer():
    data = _set(_seq(univ.ObjectIdentifier(PACE_GM_AES128), univ.OctetString(b"x")))
    with pytest.raises(SecurityInfosError, match="PACEInfo version is not an INTEGER"):
        parse_security_infos(data)


@pytest.mark.parametrize(
    "oid, name",
    [
        ("0.4.0.127.0.7.2.2.4.1.1", "id-PACE-DH-GM-3DES-CBC-CBC"),
        ("0.4.0.127.0.7.2.2.4.4.3", "id-PACE-ECDH-IM-AES-CBC-CMAC-192"),
        ("0.4.0.127.0.7.2.2.3.1.4", "id-CA-DH-AES-CBC-CMAC-256"),
        ("0.4.0.127.0.7.2.2.2", "id-TA"),
        ("0.4.0.127.0.7.2.2.4.9.9", "0.4.0.127.0.7.2.2.4.9.9"),
    ],
)
def test_protocol_names(oid, name):
    assert protocol_name(oid) == name
