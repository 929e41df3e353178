"""CV certificates (TR-03110 part 3): build -> parse round trips, chain verification, the certificate
description, strict parsing, checked against public BSI test-PKI certificates and OpenPACE."""

from __future__ import annotations

import datetime
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certs.cvc_chain import CvcChain, make_chain
from tr03110.cvc import (
    AccessRight,
    CertificateDescription,
    Chat,
    CvcChainError,
    CvCertificate,
    CvcFormatError,
    CvcSignatureError,
    DescriptionFormat,
    DescriptionMismatch,
    Role,
    TaAlgorithm,
    TerminalType,
    build_cvc,
    curve_parameters,
    parse_certificate_description,
    parse_cvc,
)
from tr03110.oids import ID_DESCRIPTION


@pytest.fixture(scope="module")
def today() -> datetime.date:
    """The day the module's tests run (read then, not at import)."""
    return datetime.date.today()


# Public BSI test-PKI certificates (as published in open-source eID client test suites): the link
# certificate DETESTeID00004 -> DETESTeID00005 (with brainpoolP256r1 domain parameters) and a DV
# certificate DEDVtIDGVNK00012 issued by DETESTeID00005; plus Governikus' test certificate description.
BSI_LINK_CVCA = bytes.fromhex(
    "7f218201b67f4e82016e5f290100420e44455445535465494430303030347f4982011d060a04007f000702020202038120a9"
    "fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e537782207d5a0975fc2c3057eef67530417affe7fb"
    "8055c126dc5c6ce94a4b44f330b5d9832026dc5c6ce94a4b44f330b5d9bbd77cbf958416295cf7e1ce6bccdc18ff8c07b684"
    "41048bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd9ace3262547ef835c3dac4fd97f8461a14611dc9"
    "c27745132ded8e545c1d54c72f0469978520a9fb57dba1eea9bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a7"
    "8641049bfeba8dc7faab6e3bdeb3ff794dbb800848fe4f6940a4cc7eecb5159c87da5395505892026d420a22596cd014ed1f"
    "d872dada597db0f8d64441041198f62d448701015f200e44455445535465494430303030357f4c12060904007f0007030102"
    "025305fc0f13ffff5f25060105000500045f24060108000500045f37402d2468416d66bcbe259b9b907a73395bc1ef94ed75"
    "f9c17615210246e9efb06e6753e9055ce76623b7699b9efb1a7d3a9dd83f6e6e09e55a33ea0a5f62a1c719"
)
BSI_DV = bytes.fromhex(
    "7f2181e77f4e81a05f290100420e44455445535465494430303030357f494f060a04007f000702020202038641045a2af2be"
    "146c184ddb05335ed662ce54f714af1193a56ef16e7bc1e6acb968dc28ac040930e4550abcf7c5c478324b2ba9ee32f39aa8"
    "380a6397c25a4cc291075f20104445445674494447564e4b30303031327f4c12060904007f0007030102025305400513ff87"
    "5f25060106000501085f24060106000801065f374035c04a634ee73e57e9990c3241bfcfd255b14772abdcb78e614b26257d"
    "f77f196696f2ad62f1c3fca9cb7a30579397d03cbf9fd596119e72f4d88980f2944063"
)
GOVERNIKUS_DESCRIPTION = bytes.fromhex(
    "30820107060a04007f00070301030101a1160c14476f7665726e696b757320546573742044564341a21a1318687474703a2f"
    "2f7777772e676f7665726e696b75732e6465a31e0c1c736563756e6574205365637572697479204e6574776f726b73204147"
    "a41e131c68747470733a2f2f652d736572766963652e736563756e65742e6465a5150c13536563756e657420546573746d61"
    "6e64616e74a626132468747470733a2f2f652d736572766963652e736563756e65742e64652f72656672657368a746314404"
    "2071b89f97689425ccad573f4754d74baafdbb95980d9135605eed4bf29781674c04205c6fcac6857d69b469b8e8e523b656"
    "338bdda1ac43dea739e0510c862901d06d"
)


@pytest.fixture(scope="module")
def chain(today: datetime.date) -> CvcChain:
    return make_chain(
        {
            AccessRight.READ_DG4,
            AccessRight.READ_DG5,
            AccessRight.RESTRICTED_IDENTIFICATION,
            AccessRight.AGE_VERIFICATION,
        },
        today=today,
        description=CertificateDescription(
            "Test DV", "Stadt Musterstadt", "Bürgerportal", "https://dv.example", "https://eid.musterstadt.example"
        ),
    )


# --- public samples ----------------------------------------------------------------------------------------


def test_bsi_link_certificate_parses_with_domain_parameters() -> None:
    cert = parse_cvc(BSI_LINK_CVCA)
    assert str(cert.authority_reference) == "DETESTeID00004"
    assert str(cert.holder_reference) == "DETESTeID00005"
    assert cert.holder_reference.country == "DE" and cert.holder_reference.sequence == "00005"
    assert cert.public_key.algorithm is TaAlgorithm.ECDSA_SHA_256
    assert cert.public_key.curve is not None and cert.public_key.curve.name == "brainpoolP256r1"
    assert cert.chat.role is Role.CVCA
    assert cert.chat.mask_bytes() == bytes.fromhex("fc0f13ffff")
    assert cert.effective_date == datetime.date(2015, 5, 4)
    assert cert.expiration_date == datetime.date(2018, 5, 4)
    assert cert.encoded == BSI_LINK_CVCA


def test_bsi_dv_certificate_verifies_under_the_cvca_key() -> None:
    cvca, dv = parse_cvc(BSI_LINK_CVCA), parse_cvc(BSI_DV)
    assert str(dv.holder_reference) == "DEDVtIDGVNK00012"
    assert dv.holder_reference.mnemonic == "DVtIDGVNK"
    assert dv.public_key.curve is None  # inherits the CVCA's domain parameters
    assert dv.chat.role is Role.DV_NON_OFFICIAL
    assert dv.chat.readable_data_groups() == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 17, 19)
    assert dv.chat.grants(AccessRight.RESTRICTED_IDENTIFICATION)
    assert not dv.chat.grants(AccessRight.READ_DG18)
    dv.verify_signature(cvca)
    broken = bytearray(BSI_DV)
    broken[-1] ^= 1
    with pytest.raises(CvcSignatureError):
        parse_cvc(bytes(broken)).verify_signature(cvca)


def test_governikus_certificate_description() -> None:
    desc = parse_certificate_description(GOVERNIKUS_DESCRIPTION)
    assert desc.format is DescriptionFormat.PLAIN
    assert desc.issuer_name == "Governikus Test DVCA"
    assert desc.issuer_url == "http://www.governikus.de"
    assert desc.subject_name == "secunet Security Networks AG"
    assert desc.subject_url == "https://e-service.secunet.de"
    assert desc.terms_of_usage == "Secunet Testmandant"
    assert desc.redirect_url == "https://e-service.secunet.de/refresh"
    assert len(desc.comm_certificates) == 2 and all(len(h) == 32 for h in desc.comm_certificates)


# --- our own chain -----------------------------------------------------------------------------------------


def test_chain_round_trip(chain: CvcChain, today: datetime.date) -> None:
    term = parse_cvc(chain.terminal)
    assert str(term.authority_reference) == "DETESTDV00001"
    assert str(term.holder_reference) == "DEMUSTERST00001"
    assert term.chat == Chat.authentication_terminal(chain.rights)
    assert term.effective_date == today
    assert term.expiration_date == today + datetime.timedelta(days=60)
    assert term.description_hash == hashlib.sha256(chain.description).digest()
    assert term.extension(ID_DESCRIPTION) is not None
    assert term.check_description(chain.description).subject_url == "https://eid.musterstadt.example"
    cvca, dv = parse_cvc(chain.cvca), parse_cvc(chain.dv)
    assert cvca.is_self_signed and cvca.public_key.curve is not None
    assert dv.public_key.curve is None
    cvca.verify_signature(cvca)
    dv.verify_signature(cvca)
    term.verify_signature(dv, curve=cvca.public_key.curve)


def test_signature_checks_refuse_wrong_issuer_and_tampering(chain: CvcChain) -> None:
    cvca, dv, term = parse_cvc(chain.cvca), parse_cvc(chain.dv), parse_cvc(chain.terminal)
    with pytest.raises(CvcChainError):
        term.verify_signature(cvca)
    with pytest.raises(CvcSignatureError, match="no domain parameters"):
        term.verify_signature(dv)  # the DV key alone does not say its curve
    # Same key, wrong certificate body: flip one bit of the holder reference.
    tampered = chain.terminal.replace(b"DEMUSTERST00001", b"DEMUSTERST00002")
    with pytest.raises(CvcSignatureError):
        parse_cvc(tampered).verify_signature(dv, curve=cvca.public_key.curve)
    # A key of the right type from someone else.
    other = ec.generate_private_key(ec.BrainpoolP256R1()).public_key()
    with pytest.raises(CvcSignatureError):
        term.verify_signature(other)


def test_description_hash_mismatch(chain: CvcChain) -> None:
    term = parse_cvc(chain.terminal)
    other = CertificateDescription("Test DV", "Someone Else", "terms").encode()
    assert not term.matches_description(other)
    with pytest.raises(DescriptionMismatch):
        term.check_description(other)


def self_signed_cvca(
    reference: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    effective: datetime.date,
    expiration: datetime.date,
) -> CvCertificate:
    """A CVCA certificate of ``key`` signed by that key (authority and holder ``reference``), parsed back."""
    data = build_cvc(
        authority_reference=reference,
        holder_reference=reference,
        public_key=key.public_key(),
        chat=Chat.authentication_terminal(role=Role.CVCA),
        effective_date=effective,
        expiration_date=expiration,
        signing_key=key,
    )
    return parse_cvc(data)


def test_rsa_pss_certificate(today: datetime.date) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    cert = self_signed_cvca("DERSACVCA00001", key, today, today + datetime.timedelta(days=1))
    assert cert.public_key.algorithm is TaAlgorithm.RSA_PSS_SHA_256
    assert cert.public_key.modulus == key.public_key().public_numbers().n
    assert cert.public_key.exponent == 65537
    cert.verify_signature(cert)


@pytest.mark.parametrize(
    "curve", [ec.BrainpoolP256R1(), ec.SECP256R1(), ec.BrainpoolP384R1(), ec.SECP384R1(), ec.BrainpoolP512R1()]
)
def test_domain_parameter_table_matches_the_curves(curve: ec.EllipticCurve, today: datetime.date) -> None:
    """The explicit parameters written into CVCA certificates are those of the named curve."""
    params = curve_parameters(curve)
    generator = ec.derive_private_key(1, curve).public_key().public_numbers()
    size = (curve.key_size + 7) // 8
    assert params.generator == b"\x04" + generator.x.to_bytes(size, "big") + generator.y.to_bytes(size, "big")
    x, y = generator.x, generator.y
    assert (y * y - (x * x * x + params.a * x + params.b)) % params.p == 0
    # order * G is the point at infinity: (order - 1) * G = -G.
    minus_g = ec.derive_private_key(params.order - 1, curve).public_key().public_numbers()
    assert (minus_g.x, minus_g.y) == (x, params.p - y)
    cert = self_signed_cvca("DECURVE00001", ec.generate_private_key(curve), today, today)
    assert cert.public_key.curve is not None and cert.public_key.curve.name == curve.name
    cert.verify_signature(cert)


# --- CHAT ----------------------------------------------------------------------------------------------------


def test_chat_bits_per_data_group() -> None:
    assert AccessRight.read(1) == 8 and AccessRight.read(17) == 24 and AccessRight.read(21) == 28
    chat = Chat.authentication_terminal({AccessRight.READ_DG4, AccessRight.READ_DG5, AccessRight.AGE_VERIFICATION})
    assert chat.mask_bytes() == bytes.fromhex("0000001801")
    assert chat.encode() == bytes.fromhex("7f4c12060904007f00070301020253050000001801")
    assert Chat.decode(chat.encode()) == chat
    assert chat.rights == {AccessRight.READ_DG4, AccessRight.READ_DG5, AccessRight.AGE_VERIFICATION}
    cvca = Chat.authentication_terminal(role=Role.CVCA)
    assert cvca.mask_bytes() == bytes.fromhex("c000000000") and cvca.role is Role.CVCA


def test_chat_refuses_wrong_length_and_unknown_type() -> None:
    with pytest.raises(CvcFormatError, match="5 expected"):
        Chat.decode(bytes.fromhex("7f4c11060904007f000703010202530400000018"))
    with pytest.raises(CvcFormatError, match="unknown CHAT terminal type"):
        Chat.decode(bytes.fromhex("7f4c12060904007f00070301020953050000001801"))
    signature_terminal = Chat.decode(bytes.fromhex("7f4c0e060904007f0007030102035301c3"))
    assert signature_terminal.terminal_type is TerminalType.SIGNATURE_TERMINAL
    assert signature_terminal.role is Role.CVCA and signature_terminal.rights == frozenset()
    # id-IS (…3.1.2.1), one-octet mask 82: an inspection system of a domestic DV
    inspection = Chat.decode(bytes.fromhex("7f4c0e060904007f000703010201530182"))
    assert inspection.terminal_type is TerminalType.INSPECTION_SYSTEM and inspection.role is Role.DV_OFFICIAL
    assert inspection.describe() == ["inspection system, role DV_OFFICIAL", "mask 82"]


# --- certificate description ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt,terms",
    [
        (DescriptionFormat.PLAIN, "Name: Stadt Musterstadt\nZweck: Bürgerportal"),
        (DescriptionFormat.HTML, "<p>Stadt Musterstadt</p>"),
        (DescriptionFormat.PDF, b"%PDF-1.4 tiny"),
    ],
)
def test_description_round_trip(fmt: DescriptionFormat, terms: str | bytes) -> None:
    desc = CertificateDescription(
        "DV GmbH",
        "Stadt Musterstadt",
        terms,
        "https://dv.example",
        "https://eid.musterstadt.example",
        "https://eid.musterstadt.example/r",
        (b"\x01" * 32, b"\x02" * 32),
        fmt,
    )
    assert parse_certificate_description(desc.encode()) == desc


def test_description_format_must_match_terms_type() -> None:
    html = CertificateDescription("DV", "Stadt", "<p>x</p>", format=DescriptionFormat.HTML).encode()
    # Rewrite the format OID's last arc from html (2) to pdf (3): the terms are an IA5String, not octets.
    forged = html.replace(
        bytes.fromhex("060a04007f0007030103010" + "2"), bytes.fromhex("060a04007f000703010301" + "03")
    )
    with pytest.raises(CvcFormatError, match="html, but the description says pdf"):
        parse_certificate_description(forged)
    with pytest.raises(ValueError):
        CertificateDescription("DV", "Stadt", b"bytes", format=DescriptionFormat.PLAIN).encode()


def test_description_with_implicit_tags_is_refused() -> None:
    """OpenPACE 1.1 writes [1]..[5] implicitly; TR-03110 and real descriptions tag explicitly."""
    implicit = bytes.fromhex("3019060a04007f00070301030101810244568302535485015a")
    with pytest.raises(CvcFormatError):
        parse_certificate_description(implicit)


# --- strict parsing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda b: b[:-1], "not well-formed"),
        (lambda b: b + b"\x00", "unexpected bytes"),
        (lambda b: b"\x7f\x21\x83\x00" + b[3:], "canonical"),  # length 82 xx xx re-written as 83 00 xx xx
        (lambda b: b.replace(b"\x5f\x29\x01\x00", b"\x5f\x29\x01\x01"), "profile identifier"),
        (lambda b: b.replace(b"\x7f\x4c", b"\x7f\x4d", 1), "not well-formed"),
    ],
)
def test_malformed_certificates(chain: CvcChain, mutate: object, message: str) -> None:
    assert callable(mutate) and chain.terminal[2] == 0x82
    with pytest.raises(CvcFormatError, match=message):
        parse_cvc(mutate(chain.terminal))


def test_bad_dates_and_references(chain: CvcChain, today: datetime.date) -> None:
    term = parse_cvc(chain.terminal)
    effective = b"\x5f\x25\x06" + bytes(int(d) for d in today.strftime("%y%m%d"))
    assert effective in chain.terminal
    with pytest.raises(CvcFormatError, match="BCD"):
        parse_cvc(chain.terminal.replace(effective, b"\x5f\x25\x06" + b"2\x00\x01\x01\x00\x01"))
    with pytest.raises(CvcFormatError, match="calendar date"):
        parse_cvc(chain.terminal.replace(effective, b"\x5f\x25\x06\x02\x05\x01\x03\x03\x01"))
    with pytest.raises(CvcFormatError, match="country code"):
        parse_cvc(chain.terminal.replace(b"DEMUSTERST00001", b"d3MUSTERST00001"))
    assert term.days_left(today) == 60
    assert term.is_valid_on(today) and not term.is_valid_on(today + datetime.timedelta(days=61))


def test_oversized_input_is_refused() -> None:
    with pytest.raises(CvcFormatError, match="exceeds"):
        parse_cvc(b"\x7f\x21" + b"\x00" * 5000)
