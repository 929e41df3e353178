"""`eid-gateway check-config` against the authorization certificate's CHAT and expiry, and
`eid-gateway cvc show`."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from certs.cvc_chain import CvcChain, make_chain
from eid_gateway.backends.authorization import Level, check_authorization
from eid_gateway.cli import EXIT_CONFIG, EXIT_OK
from eid_gateway.eid.chat import rights_for
from eid_gateway.identity import Attribute
from eid_gateway.instance import write_example_config
from eid_gateway.services import Service
from helpers.cli import run_cli
from tr03110.cvc import CertificateDescription

DEMO_ATTRIBUTES = {
    Attribute.GIVEN_NAMES,
    Attribute.FAMILY_NAMES,
    Attribute.DATE_OF_BIRTH,
    Attribute.ADDRESS,
    Attribute.PSEUDONYM,
}


@pytest.fixture(scope="module")
def today() -> datetime.date:
    """The day the module's tests run (read then, not at import)."""
    return datetime.date.today()


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("authz")
    write_example_config(directory, "http://127.0.0.1:8080", 8080)
    return directory


def _config_with(instance: Path, chain: CvcChain, name: str) -> Path:
    (instance / f"{name}.cvcert").write_bytes(chain.terminal)
    text = (instance / "gateway.toml").read_text(encoding="utf-8")
    text = text.replace("[eid_server]\n", f'[eid_server]\nauthorization_certificate = "{name}.cvcert"\n', 1)
    path = instance / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_granting_certificate_passes(instance: Path) -> None:
    config = _config_with(instance, make_chain(rights_for(DEMO_ATTRIBUTES), terminal_days=90), "ok")
    code, out, err = run_cli("check-config", "--config", str(config))
    assert code == EXIT_OK, err
    assert "configuration OK" in out and "warning" not in err


def test_attribute_not_in_chat_is_refused(instance: Path) -> None:
    config = _config_with(instance, make_chain(rights_for(DEMO_ATTRIBUTES - {Attribute.ADDRESS})), "no-address")
    code, out, err = run_cli("check-config", "--config", str(config))
    assert code == EXIT_CONFIG
    assert "services[0].attributes: service 'demo' is registered for 'address', which needs READ_DG17" in err
    assert "date_of_birth" not in err  # granted, so not mentioned
    assert out == ""


def test_expiry_warning_within_30_days(instance: Path) -> None:
    config = _config_with(instance, make_chain(rights_for(DEMO_ATTRIBUTES), terminal_days=30), "soon")
    code, out, err = run_cli("check-config", "--config", str(config))
    assert code == EXIT_OK
    assert "warning: eid_server.authorization_certificate: DEMUSTERST00001 expires on" in err
    assert "(in 30 days)" in err


def test_expired_certificate_is_an_error(instance: Path, today: datetime.date) -> None:
    chain = make_chain(rights_for(DEMO_ATTRIBUTES), today=today - datetime.timedelta(days=100), terminal_days=60)
    code, _, err = run_cli("check-config", "--config", str(_config_with(instance, chain, "expired")))
    assert code == EXIT_CONFIG and "expired on" in err


def test_unreadable_certificate_is_a_config_error(instance: Path) -> None:
    (instance / "junk.cvcert").write_bytes(b"\x7f\x21\x05junk!")
    text = (
        (instance / "gateway.toml")
        .read_text(encoding="utf-8")
        .replace("[eid_server]\n", '[eid_server]\nauthorization_certificate = "junk.cvcert"\n', 1)
    )
    (instance / "junk.toml").write_text(text, encoding="utf-8")
    code, _, err = run_cli("check-config", "--config", str(instance / "junk.toml"))
    assert code == EXIT_CONFIG
    assert "eid_server.authorization_certificate: CV certificate is not well-formed" in err


def test_rule_needs_restricted_identification_and_a_terminal_certificate(today: datetime.date) -> None:
    service = Service("s", "S", "S", frozenset({Attribute.GIVEN_NAMES}))
    from tr03110.cvc import parse_cvc

    chain = make_chain(rights_for({Attribute.GIVEN_NAMES}))
    findings = check_authorization(parse_cvc(chain.terminal), [service], today)
    assert [f.level for f in findings] == [Level.ERROR]
    assert "RESTRICTED_IDENTIFICATION" in findings[0].message
    dv = check_authorization(parse_cvc(chain.dv), [service], today)
    assert len(dv) == 1 and "not an authentication terminal certificate" in dv[0].message


def test_cvc_show(tmp_path: Path) -> None:
    chain = make_chain(
        rights_for(DEMO_ATTRIBUTES),
        description=CertificateDescription(
            "Test DV", "Stadt Musterstadt", "Zweck: Bürgerportal", subject_url="https://eid.musterstadt.example"
        ),
    )
    (tmp_path / "t.cvcert").write_bytes(chain.terminal)
    (tmp_path / "t.hex").write_text(chain.terminal.hex().upper() + "\n")
    (tmp_path / "t.desc").write_bytes(chain.description)
    code, out, err = run_cli("cvc", "show", str(tmp_path / "t.cvcert"), "--description", str(tmp_path / "t.desc"))
    assert code == EXIT_OK, err
    assert "Holder reference (CHR): DEMUSTERST00001" in out
    assert "READ_DG17" in out and "RESTRICTED_IDENTIFICATION" in out
    assert "Gateway attributes granted: given_names, family_names, date_of_birth, address, pseudonym" in out
    assert "Subject: Stadt Musterstadt <https://eid.musterstadt.example>" in out
    assert "Zweck: Bürgerportal" in out
    code, hex_out, _ = run_cli("cvc", "show", str(tmp_path / "t.hex"))
    assert code == EXIT_OK and hex_out.splitlines()[:8] == out.splitlines()[:8]
    other = make_chain(rights_for(DEMO_ATTRIBUTES))
    (tmp_path / "other.desc").write_bytes(other.description.replace(b"TEST", b"TEXT"))
    code, _, err = run_cli("cvc", "show", str(tmp_path / "t.cvcert"), "--description", str(tmp_path / "other.desc"))
    assert code == EXIT_CONFIG and "does not match" in err
    code, _, err = run_cli("cvc", "show", str(tmp_path / "missing.cvcert"))
    assert code == EXIT_CONFIG and "cannot be read" in err


def test_warning_starts_30_days_before_expiry() -> None:
    from tr03110.cvc import parse_cvc

    service = Service("s", "S", "S", frozenset({Attribute.GIVEN_NAMES}))
    cert = parse_cvc(make_chain(rights_for({Attribute.GIVEN_NAMES, Attribute.PSEUDONYM}), terminal_days=45).terminal)
    expiry = cert.expiration_date
    assert check_authorization(cert, [service], expiry - datetime.timedelta(days=31)) == []
    [warning] = check_authorization(cert, [service], expiry - datetime.timedelta(days=30))
    assert warning.level is Level.WARNING and "(in 30 days)" in warning.message
    [error] = check_authorization(cert, [service], expiry + datetime.timedelta(days=1))
    assert error.level is Level.ERROR and "expired" in error.message
