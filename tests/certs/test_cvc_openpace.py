"""OpenPACE (Debian package ``openpace``: cvc-create, cvc-print) as an independent oracle for CV
certificates: it verifies the chains we build, and we parse and verify the certificates it builds."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certs.cvc_chain import make_chain
from eid_gateway.eid.chat import rights_for
from eid_gateway.identity import Attribute
from tr03110.cvc import AccessRight, CertificateDescription, Role, TaAlgorithm, parse_cvc

pytestmark = pytest.mark.skipif(shutil.which("cvc-print") is None, reason="Debian package openpace not installed")


def _run(*args: str, cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_openpace_verifies_our_chain_and_description(tmp_path: Path) -> None:
    chain = make_chain(
        rights_for({Attribute.GIVEN_NAMES, Attribute.ADDRESS, Attribute.PSEUDONYM, Attribute.PLACE_VERIFICATION}),
        description=CertificateDescription(
            "Test DV",
            "Stadt Musterstadt",
            "Bürgerportal\nZweck: Anmeldung",
            "https://dv.example",
            "https://eid.musterstadt.example",
            comm_certificates=(b"\x07" * 32,),
        ),
    )
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "DETESTCVCA00001").write_bytes(chain.cvca)
    (trust / "DETESTDV00001").write_bytes(chain.dv)
    (tmp_path / "term.cvcert").write_bytes(chain.terminal)
    (tmp_path / "term.desc").write_bytes(chain.description)
    out = _run("cvc-print", f"--cvc-dir={trust}", "-c", "term.cvcert", "-d", "term.desc", cwd=tmp_path)
    assert "certificate verified" in out
    assert "certificate description matches certificate" in out
    assert "CHR: DEMUSTERST00001" in out and "CAR: DETESTDV00001" in out
    for line in (
        "Read DG 4 (Given Names)",
        "Read DG 17 (Normal Place of Residence)",
        "Restricted Identification",
        "Community ID Verification",
        "Terminal certificate",
    ):
        assert line in out
    assert "Read DG 5" not in out and "Age Verification" not in out
    assert "subjectURL\thttps://eid.musterstadt.example" in out
    dv_out = _run("cvc-print", f"--cvc-dir={trust}", "-c", str(trust / "DETESTDV00001"), cwd=tmp_path)
    assert "certificate verified" in dv_out and "DV certificate" in dv_out


def test_we_read_openpace_certificates(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    (tmp_path / "cvca.pkcs8").write_bytes(
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    _run(
        "cvc-create",
        "--role=cvca",
        "--type=at",
        "--chr=DEOPCVCA00001",
        "--expires=351231",
        "--sign-with=cvca.pkcs8",
        "--scheme=ECDSA_SHA_256",
        "--read-dg1",
        "--read-dg17",
        "--verify-age",
        "--rid",
        "--write-dg17",
        cwd=tmp_path,
    )
    (tmp_path / "terms.txt").write_text("Nutzungsbedingungen\n", encoding="utf-8")
    _run(
        "cvc-create",
        "--role=terminal",
        "--chr=DEOPTERM00001",
        "--expires=301231",
        "--sign-with=cvca.pkcs8",
        "--sign-as=DEOPCVCA00001.cvcert",
        "--scheme=ECDSA_SHA_256",
        "--read-dg4",
        "--read-dg5",
        "--read-dg18",
        "--verify-community",
        "--issuer-name=Test DV",
        "--subject-name=Stadt Musterstadt",
        "--subject-url=https://eid.musterstadt.example",
        "--cert-desc=terms.txt",
        cwd=tmp_path,
    )
    cvca = parse_cvc((tmp_path / "DEOPCVCA00001.cvcert").read_bytes())
    term = parse_cvc((tmp_path / "DEOPTERM00001.cvcert").read_bytes())
    assert cvca.chat.role is Role.CVCA and cvca.is_self_signed
    assert cvca.chat.rights == {
        AccessRight.READ_DG1,
        AccessRight.READ_DG17,
        AccessRight.AGE_VERIFICATION,
        AccessRight.RESTRICTED_IDENTIFICATION,
        AccessRight.WRITE_DG17,
    }
    assert term.chat.role is Role.TERMINAL
    assert term.chat.rights == {
        AccessRight.READ_DG4,
        AccessRight.READ_DG5,
        AccessRight.READ_DG18,
        AccessRight.COMMUNITY_ID_VERIFICATION,
    }
    assert term.public_key.algorithm is TaAlgorithm.ECDSA_SHA_256
    assert term.expiration_date == datetime.date(2030, 12, 31)
    assert term.effective_date == datetime.date.today()
    cvca.verify_signature(cvca)
    term.verify_signature(cvca)
    # OpenPACE binds its description by the same hash rule (its description encoding is its own).
    assert term.matches_description((tmp_path / "DEOPTERM00001.desc").read_bytes())
