import pytest

from eid_gateway.kiosks.credentials import (
    CredentialFormatError,
    check_kiosk_hash,
    check_staff_hash,
    credential_main,
    hash_kiosk_credential,
    hash_staff_password,
    new_kiosk_credential,
    verify_kiosk_credential,
    verify_staff_password,
)
from eid_gateway.kiosks.settings import parse_kiosk_settings
from eid_gateway.settings_base import ConfigError

from .conftest import _STAFF_HASH


def test_new_kiosk_credential_round_trip():
    token, digest = new_kiosk_credential()
    assert len(token) >= 43 and digest.startswith("sha256$")
    check_kiosk_hash(digest)
    assert verify_kiosk_credential(token, digest)
    assert not verify_kiosk_credential(token + "x", digest)
    assert not verify_kiosk_credential(token, None)  # unknown kiosk, same work done
    assert hash_kiosk_credential(token) == digest


def test_staff_password():
    h = hash_staff_password("a long staff password", n=2**14)
    assert verify_staff_password("a long staff password", h)
    assert not verify_staff_password("a long staff passwort", h)


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("sha256$" + "0" * 63, "64 lower-case hex"),
        ("md5$" + "0" * 32, "must start with"),
        ("sha256$" + "A" * 64, "64 lower-case hex"),
    ],
)
def test_bad_kiosk_hash(bad, reason):
    with pytest.raises(CredentialFormatError, match=reason):
        check_kiosk_hash(bad)


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("plain-password", "must be scrypt"),
        ("scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43, "too weak"),
        ("scrypt$x$8$1$a$b", "malformed"),
    ],
)
def test_bad_staff_hash(bad, reason):
    with pytest.raises(CredentialFormatError, match=reason):
        check_staff_hash(bad)


def test_credential_cli_prints_token_and_hash(capsys):
    assert credential_main(["new"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].rsplit(" ", 1)[1]
    digest = out[1].split('"')[1]
    assert verify_kiosk_credential(token, digest)


GOOD = {
    "kiosk_monitor": {
        "staff_user": "staff",
        "staff_password_hash": _STAFF_HASH,
        "heartbeat_seconds": 5,
        "stale_after_missed": 2,
    },
    "kiosks": [
        {"id": "mitte-1", "name": "Bürgerbüro Mitte", "credential_hash": "sha256$" + "1" * 64},
        {"id": "nord-2", "credential_hash": "sha256$" + "2" * 64},
    ],
}


def test_parse_settings():
    s = parse_kiosk_settings(GOOD)
    assert s is not None
    assert [k.id for k in s.kiosks] == ["mitte-1", "nord-2"]
    assert s.kiosks[1].name == "nord-2"
    assert s.stale_after_seconds == 12.5  # two missed heartbeats, the second half an interval overdue


def test_no_kiosk_tables_means_no_kiosk_feature():
    assert parse_kiosk_settings({"mode": "development"}) is None


def test_every_problem_is_reported_by_key():
    bad = {
        "kiosk_monitor": {"staff_user": "a:b", "staff_password_hash": "nope", "heartbeat_seconds": 0, "colour": 1},
        "kiosks": [
            {"id": "Mitte 1", "credential_hash": "sha256$" + "1" * 64},
            {"id": "ok-1", "credential": "plaintext-token"},
            {"id": "ok-2", "credential_hash": "sha256$" + "1" * 64},
            {"id": "ok-2", "credential_hash": "sha256$" + "1" * 64, "client_cert_sha256": "zz"},
        ],
    }
    with pytest.raises(ConfigError) as exc:
        parse_kiosk_settings(bad)
    errors = "\n".join(exc.value.errors)
    for expected in (
        "kiosk_monitor.staff_user: must be a non-empty string without ':'",
        "kiosk_monitor.staff_password_hash: staff password hash must be scrypt",
        "kiosk_monitor.heartbeat_seconds: must be between 1 and 3600",
        "kiosk_monitor.colour: unknown key",
        "kiosks[0].id: must match",
        "kiosks[1].credential: unknown key (store only credential_hash)",
        "kiosks[1].credential_hash: is required",
        "kiosks[3].id: duplicate kiosk id 'ok-2'",
        "kiosks[3].client_cert_sha256: is not supported any more: TLS ends at the reverse proxy",
    ):
        assert expected in errors


def test_client_cert_sha256_is_refused_naming_the_proxy_as_the_replacement(tmp_path, capsys):
    """`serve` has no TLS listener, so a pin could never match: the config says so (check-config too)
    and names what to do instead, rather than every report getting the 401 of a wrong token."""
    from eid_gateway.cli import main as cli_main

    from .test_gateway_wiring import kiosk_config

    pin = "ab" * 32
    path = kiosk_config(
        tmp_path,
        f'''
[kiosk_monitor]
staff_user = "staff"
staff_password_hash = "{_STAFF_HASH}"

[[kiosks]]
id = "mitte-1"
credential_hash = "sha256${"1" * 64}"
client_cert_sha256 = "{pin}"
''',
    )
    assert cli_main(["check-config", "--config", str(path)]) != 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "kiosks[0].client_cert_sha256: is not supported any more" in text
    assert "ssl_verify_client" in text and "SSLVerifyClient" in text and "docs/kiosks.md" in text
