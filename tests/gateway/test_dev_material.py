"""Production refuses every key, certificate and secret `eid-gateway init` writes, by one rule
(certs.devpki.is_dev_file) applied to every key setting, with an error naming the setting.

Each test starts from a production config that passes (keys of its own, tests/gateway/test_config.py)
and points one setting at a file of the `init` instance: exactly that setting must be refused.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certs.devpki import DEV_MARKER, generate_dev_tls
from certs.loading import load_key_pair_file
from eid_gateway.config import load_config

from .conftest import write_variant
from .test_config import PRODUCTION_TOML, _write_pair, errors_of

REFUSED = "is development key material"

PASSWORD_ENV = 'password_env = "TEST_EIDGW_PASSWORD"\n'
#: PRODUCTION_TOML with unencrypted keys and an OIDC provider with a production key of its own.
BASE = (
    PRODUCTION_TOML.replace(PASSWORD_ENV, "")
    + """
[oidc]
[oidc.signing_key]
kid = "prod-1"
path = "oidc.key"
"""
)


@pytest.fixture(scope="module")
def production_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Production key material (not from devpki), made once: RSA keys take a while."""
    d = tmp_path_factory.mktemp("production-keys")
    _write_pair(d, "signing", "rsa-3072")
    _write_pair(d, "client", "ec-p256")
    _write_pair(d, "server", "ec-p256")
    _write_pair(d, "service", "rsa-3072")
    _write_pair(d, "oidc", "ec-p256")
    (d / "pseudonym.secret").write_bytes(os.urandom(32))
    return d


@pytest.fixture
def production(production_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with a valid production config (``prod.toml``) and its keys; the config passes."""
    directory = tmp_path / "prod"
    shutil.copytree(production_files, directory)
    monkeypatch.setenv("TEST_EIDGW_PASSWORD", "pw")
    path = directory / "prod.toml"
    path.write_text(BASE, encoding="utf-8")
    config = load_config(path)
    assert config.production and config.oidc is not None
    return directory


def refused_settings(path: Path) -> list[str]:
    """The settings named by the development-material errors; any other error fails the test."""
    errors = errors_of(path)
    assert all(REFUSED in e and DEV_MARKER in e and "production refuses it" in e for e in errors), errors
    return [e.split(":", 1)[0] for e in errors]


def variant(production: Path, old: str, new: str, extra: str = "") -> Path:
    assert not old or old in BASE, old
    text = BASE.replace(old, new) + extra
    path = production / "variant.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_file_init_writes_is_development_material(instance: Path, production_files: Path) -> None:
    from certs.devpki import is_dev_file  # the rule itself (imported here: the other tests only use the config)

    written = sorted((instance / "certs").iterdir())
    assert {p.suffix for p in written} == {".key", ".crt", ".secret"} and len(written) == 19
    assert [p.name for p in written if not is_dev_file(p)] == []
    # and the rule refuses nothing else: keys, certificates and secrets made without devpki
    assert [p.name for p in production_files.iterdir() if is_dev_file(p, b"pw")] == []


def test_production_refuses_every_key_setting_of_the_init_config(instance: Path, example_toml: str) -> None:
    text = example_toml.replace('mode = "development"', 'mode = "production"')
    errors = errors_of(write_variant(instance, text, "production-dev-material"))
    named = {e.split(":", 1)[0] for e in errors if REFUSED in e}
    assert named == {
        "keys.saml_signing_key",
        "keys.saml_signing_cert",
        "keys.saml_signing_next_key",
        "keys.saml_signing_next_cert",
        "keys.eid_client_key",
        "keys.eid_client_cert",
        "keys.pseudonym_secret",
        "simulator.key",
        "simulator.cert",
        "demo.key",
        "demo.cert",
        "demo.signing_key",
        "demo.signing_cert",
        "oidc.signing_key.path",
        "oidc.rsa_signing_key.path",
        "services[0].saml.signing_cert",
        "services[0].saml.encryption_cert",
    }
    # one error per setting, naming its file
    assert len([e for e in errors if REFUSED in e]) == len(named)
    assert f"oidc.signing_key.path: {instance / 'certs' / 'oidc-signing.key'} {REFUSED}" in "\n".join(errors)


def test_oidc_signing_key_from_init_is_refused(production: Path, instance: Path) -> None:
    """The issue's finding: an EC key file with no certificate of its own."""
    path = variant(production, 'path = "oidc.key"', f'path = "{instance / "certs" / "oidc-signing.key"}"')
    assert refused_settings(path) == ["oidc.signing_key.path"]


def test_oidc_next_and_rsa_keys_from_init_are_refused(production: Path, instance: Path) -> None:
    certs = instance / "certs"
    extra = (
        f'[oidc.next_signing_key]\nkid = "next"\npath = "{certs / "demo-service-signing.key"}"\n'
        f'[oidc.rsa_signing_key]\nkid = "rsa"\npath = "{certs / "oidc-rsa-signing.key"}"\n'
    )
    assert refused_settings(variant(production, "", "", extra)) == [
        "oidc.next_signing_key.path",
        "oidc.rsa_signing_key.path",
    ]


def test_pem_key_pair_from_init_is_refused(production: Path, instance: Path) -> None:
    certs = instance / "certs"
    path = variant(
        production,
        'saml_signing_key = "signing.key"\nsaml_signing_cert = "signing.crt"',
        f'saml_signing_key = "{certs / "saml-signing.key"}"\nsaml_signing_cert = "{certs / "saml-signing.crt"}"',
    )
    assert refused_settings(path) == ["keys.saml_signing_key", "keys.saml_signing_cert"]


def test_init_key_with_a_production_certificate_is_refused(production: Path, instance: Path) -> None:
    """The key file alone carries the mark: a new certificate for a development key does not help."""
    path = variant(
        production,
        'saml_signing_key = "signing.key"',
        f'saml_signing_key = "{instance / "certs" / "saml-signing.key"}"',
    )
    errors = errors_of(path)
    assert "keys.saml_signing_key" in [e.split(":", 1)[0] for e in errors if REFUSED in e], errors


def test_pkcs12_bundle_of_an_init_key_is_refused(production: Path, instance: Path) -> None:
    """A PKCS#12 file made from init's SAML signing key: recognised by its (encrypted) certificate,
    opened with the config's key password."""
    pair = load_key_pair_file(instance / "certs" / "saml-signing.key", instance / "certs" / "saml-signing.crt")
    bundle = pkcs12.serialize_key_and_certificates(
        b"saml-signing", pair.private_key, pair.certificate, None, serialization.BestAvailableEncryption(b"pw")
    )
    assert DEV_MARKER.encode() not in bundle  # the certificate inside is encrypted
    (production / "signing.p12").write_bytes(bundle)
    client = load_key_pair_file(production / "client.key", production / "client.crt")
    (production / "client.key").write_bytes(
        client.private_key.private_bytes(  # password_env serves both
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    path = variant(
        production,
        '[keys]\nsaml_signing_key = "signing.key"\nsaml_signing_cert = "signing.crt"',
        "[keys]\n" + PASSWORD_ENV + 'saml_signing_key = "signing.p12"',
    )
    assert refused_settings(path) == ["keys.saml_signing_key"]


def test_pseudonym_secret_from_init_is_refused(production: Path, instance: Path) -> None:
    path = variant(
        production,
        'pseudonym_secret = "pseudonym.secret"',
        f'pseudonym_secret = "{instance / "certs" / "pseudonym.secret"}"',
    )
    assert refused_settings(path) == ["keys.pseudonym_secret"]


def test_audit_secret_from_init_is_refused(production: Path, instance: Path) -> None:
    path = variant(production, "", "", f'[audit]\nsecret = "{instance / "certs" / "pseudonym.secret"}"\n')
    assert refused_settings(path) == ["audit.secret"]


def test_certificates_from_init_are_refused(production: Path, instance: Path) -> None:
    """Certificates of services and of the eID-Server: PEM, and DER (the mark is in the subject)."""
    certs = instance / "certs"
    der = serialization.Encoding.DER
    from certs.loading import load_certificate_file

    (production / "sim.der").write_bytes(load_certificate_file(certs / "simulator.crt").public_bytes(der))
    path = variant(production, 'signing_cert = "service.crt"', f'signing_cert = "{certs / "demo-service-signing.crt"}"')
    path.write_text(
        path.read_text(encoding="utf-8").replace('server_cert = "server.crt"', 'server_cert = "sim.der"'),
        encoding="utf-8",
    )
    assert refused_settings(path) == ["eid_server.server_cert", "services[0].saml.signing_cert"]


def test_development_tls_ca_is_refused(production: Path) -> None:
    generate_dev_tls(production / "tls")
    extra = f'tls_ca_file = "{production / "tls" / "eid-tls-ca.crt"}"\n'
    path = variant(production, 'server_cert = "server.crt"\n', 'server_cert = "server.crt"\n' + extra)
    assert refused_settings(path) == ["eid_server.tls_ca_file"]


def test_key_file_written_before_keys_had_a_header_is_refused(production: Path, instance: Path) -> None:
    """Instances made by an older `init`: the key file has no mark, the certificate next to it has."""
    certs = instance / "certs"
    key = (certs / "oidc-signing.key").read_bytes()
    unmarked = key[key.index(b"-----BEGIN") :]
    (production / "old").mkdir()
    (production / "old" / "oidc-signing.key").write_bytes(unmarked)
    shutil.copy(certs / "oidc-signing.crt", production / "old" / "oidc-signing.crt")
    path = variant(production, 'path = "oidc.key"', 'path = "old/oidc-signing.key"')
    assert refused_settings(path) == ["oidc.signing_key.path"]
    # the same key bytes next to a certificate for another key: not recognisable, so not refused
    shutil.copy(production / "server.crt", production / "old" / "oidc-signing.crt")
    assert load_config(path).production
