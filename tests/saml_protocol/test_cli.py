"""``python -m saml``: keygen, metadata, verify (with distinct exit codes)."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from saml import cli
from saml import messages as m
from saml.keys import KeyPair, key_pair_to_pem, load_key_pair
from saml.metadata import parse_metadata

from .conftest import ACS, IDP, NOW, SP, Factory, Parts


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def run_verify(metadata: Path, message: Path, *options: str, now: datetime = NOW) -> tuple[int, str, str]:
    """``verify`` of ``message`` for the test SP (its entity ID and ACS URL) at ``now``."""
    return run(
        "verify",
        "--metadata",
        str(metadata),
        "--sp-entity-id",
        SP,
        "--acs-url",
        ACS,
        *options,
        "--now",
        m.format_datetime(now),
        str(message),
    )


@pytest.fixture()
def idp_metadata(tmp_path: Path, idp_key: KeyPair) -> Path:
    key_pem, cert_pem = key_pair_to_pem(idp_key)
    (tmp_path / "idp.crt").write_bytes(cert_pem)
    path = tmp_path / "idp.xml"
    code, _, err = run(
        "metadata",
        "--entity-id",
        IDP,
        "--cert",
        str(tmp_path / "idp.crt"),
        "--idp-sso",
        "https://idp/sso",
        "--out",
        str(path),
        "--valid-days",
        "36500",
    )
    assert code == 0, err
    return path


def test_keygen_writes_a_usable_pair(tmp_path: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    code, out, _ = run(
        "keygen", "--kind", "ec-p256", "--cn", "Stadt Test", "--out-key", str(key), "--out-cert", str(cert)
    )
    assert code == 0 and "ec-p256" in out
    kp = load_key_pair(key.read_bytes(), cert.read_bytes())
    assert kp.is_ec and (key.stat().st_mode & 0o777) == 0o600


def test_metadata_command_sp_signed(tmp_path: Path, sp_key: KeyPair) -> None:
    key_pem, cert_pem = key_pair_to_pem(sp_key)
    (tmp_path / "k.pem").write_bytes(key_pem)
    (tmp_path / "c.pem").write_bytes(cert_pem)
    code, out, _ = run(
        "metadata",
        "--entity-id",
        SP,
        "--cert",
        str(tmp_path / "c.pem"),
        "--acs",
        ACS,
        "--sign-key",
        str(tmp_path / "k.pem"),
        "--sign-cert",
        str(tmp_path / "c.pem"),
    )
    assert code == 0
    parsed = parse_metadata(out.encode(), trusted=[sp_key.certificate], require_signature=True)
    assert parsed.signed and parsed.sp is not None and parsed.sp.acs_locations() == [ACS]


def test_metadata_command_needs_a_role(tmp_path: Path, idp_key: KeyPair) -> None:
    (tmp_path / "c.pem").write_bytes(key_pair_to_pem(idp_key)[1])
    code, _, err = run("metadata", "--entity-id", IDP, "--cert", str(tmp_path / "c.pem"))
    assert code == cli.EXIT_USAGE and "--idp-sso" in err


def test_verify_ok_xml_and_base64(tmp_path: Path, idp_metadata: Path, factory: Factory) -> None:
    xml = factory.response(Parts(request_id="_abc"))
    for name, data in (
        ("r.xml", xml),
        ("r.b64", base64.b64encode(xml)),
        ("r.form", b"SAMLResponse=" + quote(base64.b64encode(xml).decode(), safe="").encode()),
    ):
        (tmp_path / name).write_bytes(data)
        code, out, err = run_verify(idp_metadata, tmp_path / name, "--request-id", "_abc")
        assert code == 0, err
        assert "subject: user@city.de" in out
        assert "attribute: urn:oid:0.9.2342.19200300.100.1.3 = a@x.de, b@x.de" in out


def test_verify_encrypted_with_key(tmp_path: Path, idp_metadata: Path, factory: Factory, sp_key: KeyPair) -> None:
    key_pem, cert_pem = key_pair_to_pem(sp_key)
    (tmp_path / "k.pem").write_bytes(key_pem)
    (tmp_path / "c.pem").write_bytes(cert_pem)
    (tmp_path / "r.xml").write_bytes(factory.response(Parts(request_id=None), encrypt=True))
    code, out, err = run_verify(
        idp_metadata,
        tmp_path / "r.xml",
        "--key",
        str(tmp_path / "k.pem"),
        "--cert",
        str(tmp_path / "c.pem"),
        "--allow-unsolicited",
    )
    assert code == 0, err
    assert "encrypted: True" in out


@pytest.mark.parametrize(
    ("parts", "now_delta", "exit_code", "error"),
    [
        (Parts(request_id=None), 0, 18, "UnsolicitedResponse"),
        (Parts(request_id=None), 600, 11, "Expired"),
        (Parts(audience="https://other"), 0, 13, "AudienceMismatch"),
        (Parts(status=m.Status(m.STATUS_RESPONDER)), 0, 10, "StatusError"),
    ],
)
def test_verify_errors_have_distinct_exit_codes(
    tmp_path: Path, idp_metadata: Path, factory: Factory, parts: Parts, now_delta: int, exit_code: int, error: str
) -> None:
    (tmp_path / "r.xml").write_bytes(factory.response(parts))
    code, out, err = run_verify(
        idp_metadata, tmp_path / "r.xml", "--any-request-id", now=NOW + timedelta(seconds=now_delta)
    )
    assert code == exit_code and error in err and out == ""


def test_verify_forged_and_garbage(tmp_path: Path, idp_metadata: Path, factory: Factory, other_key: KeyPair) -> None:
    forged = factory.response(Parts(request_id=None), assertions=[factory.assertion_element(Parts(), key=other_key)])
    (tmp_path / "f.xml").write_bytes(forged)
    (tmp_path / "g.xml").write_bytes(b"not base64 at all!")
    code, _, err = run_verify(idp_metadata, tmp_path / "f.xml", "--any-request-id")
    assert code == 33 and "UntrustedKey" in err
    code, _, err = run_verify(idp_metadata, tmp_path / "g.xml", "--any-request-id")
    assert code == 52 and "neither XML nor base64" in err
    code, _, err = run_verify(idp_metadata, tmp_path / "missing.xml", "--any-request-id")
    assert code == cli.EXIT_ERROR


def test_verify_derives_unverified_defaults_with_warning(tmp_path: Path, idp_metadata: Path, factory: Factory) -> None:
    (tmp_path / "r.xml").write_bytes(factory.response(Parts(request_id=None)))
    code, out, err = run(
        "verify",
        "--metadata",
        str(idp_metadata),
        "--allow-unsolicited",
        "--now",
        m.format_datetime(NOW),
        str(tmp_path / "r.xml"),
    )
    assert code == 0 and "warning: --acs-url not given" in err


def test_python_dash_m_saml(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "saml",
            "keygen",
            "--cn",
            "x",
            "--out-key",
            str(tmp_path / "k"),
            "--out-cert",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "saml", "verify"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--metadata" in proc.stderr
