"""Config validation: every problem is reported at once, under the key that has it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from certs.devpki import is_dev_certificate
from certs.loading import CertLoadError, load_key_pair_file, load_secret_file
from eid_gateway.config import ConfigError, load_config
from eid_gateway.identity import Attribute
from saml.keys import generate_key_pair, key_pair_to_pem

from .conftest import ORIGIN, write_variant


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.errors


def assert_reported(joined: str, *expected: str) -> None:
    """Each of ``expected`` is in the reported problems ``joined``; every one missing is named at once."""
    missing = [e for e in expected if e not in joined]
    assert missing == [], f"not reported: {missing}\n{joined}"


def test_example_config_is_valid(instance: Path) -> None:
    config = load_config(instance / "gateway.toml")
    assert config.mode == "development"
    assert config.public_origin == ORIGIN
    assert config.eid_server.kind == "simulator"
    assert config.simulator is not None
    # In simulator mode the pinned server certificate is the simulator's own.
    assert config.eid_server.server_cert == config.simulator.key.certificate
    assert config.store.path == instance / "data" / "gateway.sqlite3"  # relative to the config file
    assert config.saml_idp.entity_id == f"{ORIGIN}/saml/metadata"
    assert len(config.keys.pseudonym_secret) >= 32 + 64  # a header line saying DEVELOPMENT ONLY + 64 hex digits
    demo = config.services.by_id("demo")
    assert demo is not None and demo.saml is not None
    assert demo.name_de == "Meldebescheinigung beantragen"
    assert demo.allowed_attributes == {
        Attribute.GIVEN_NAMES,
        Attribute.FAMILY_NAMES,
        Attribute.DATE_OF_BIRTH,
        Attribute.ADDRESS,
        Attribute.PSEUDONYM,
    }
    assert demo.saml.encrypt_assertions and demo.saml.encryption_cert is not None
    assert demo.saml.acs_urls == (f"{ORIGIN}/demo/acs",)
    assert config.services.by_entity_id(f"{ORIGIN}/demo/metadata") is demo
    assert config.demo.enabled and config.demo.key is not None
    # one key per purpose: the demo signs its AuthnRequests with EC P-256, decrypts with RSA-3072
    signing = config.demo.signing_key
    assert signing is not None and config.demo.request_signing_key is signing
    assert isinstance(signing.private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(config.demo.key.private_key, rsa.RSAPrivateKey)
    assert demo.saml.signing_certs == (signing.certificate,)
    assert demo.saml.encryption_cert == config.demo.key.certificate
    assert is_dev_certificate(config.keys.saml_signing.certificate)
    assert config.keys.saml_signing_next is not None


def test_all_errors_are_collected_and_name_their_key(instance: Path, example_toml: str) -> None:
    text = (
        example_toml.replace('mode = "development"', 'mode = "staging"')
        .replace("port = 8080", 'port = "8080"')
        .replace('saml_signing_key = "certs/saml-signing.key"', 'saml_signing_key = "certs/missing.key"')
        .replace(f'acs_urls = ["{ORIGIN}/demo/acs"]', 'acs_urls = ["/demo/acs", "ftp://x/acs"]')
        .replace(
            '"date_of_birth", "address", "pseudonym"]\n# The subset',
            '"date_of_birth", "shoe_size", "pseudonym"]\n# The subset',
        )
        .replace("ttl_seconds = 600", 'ttl_seconds = 5\ncolour = "blue"')
    )
    errors = errors_of(write_variant(instance, text, "many-errors"))
    joined = "\n".join(errors)
    assert_reported(
        joined,
        'mode: must be "development" or "production"',
        "listen.port: must be an integer",
        "keys.saml_signing_key: key file",
        "missing.key does not exist",
        "services[0].saml.acs_urls[0]: must be an absolute https URL",
        "services[0].saml.acs_urls[1]: must be an absolute https URL",
        "services[0].attributes[3]: unknown attribute 'shoe_size'",
        # 'address' is still required but no longer registered
        "services[0].required[3]: 'address' must also be listed in attributes",
        "flow.ttl_seconds: must be between 60 and 3600",
        "flow.colour: unknown key",
    )
    assert len(errors) == 9, joined


def test_production_refuses_simulator_http_dev_keys_and_demo(instance: Path, example_toml: str) -> None:
    text = example_toml.replace('mode = "development"', 'mode = "production"')
    errors = errors_of(write_variant(instance, text, "production"))
    joined = "\n".join(errors)
    assert_reported(
        joined,
        "public_origin: must be an https origin in production",
        "eid_server.kind: the simulator is a test facility",
        "simulator: the simulator must not be configured in production",
        # the development keys: one error per key setting (tests/gateway/test_dev_material.py)
        "keys.saml_signing_key: ",
        "saml-signing.key is development key material",
        "demo.enabled: the demo service is for development",
        "services[0].saml.acs_urls[0]: must be an absolute https URL",
        "services[0].saml.signing_cert: ",
        "demo-service-signing.crt is development key",
    )


def test_tr03130_needs_url_and_server_cert(instance: Path, example_toml: str) -> None:
    text = example_toml.replace('kind = "simulator"\n# Time', 'kind = "tr03130"\n# Time')
    joined = "\n".join(errors_of(write_variant(instance, text, "tr03130")))
    assert "eid_server.url: is required" in joined
    assert "eid_server.server_cert: is required" in joined


def test_service_rules(instance: Path, example_toml: str) -> None:
    extra = """
[[services]]
id = "demo"
name_de = "Zweiter"
attributes = ["age_verification"]
minimum_age = 18
community_id = "12"

[[services]]
id = "Bad Id"
name_de = "Dritter"
attributes = []
minimum_age = true
"""
    joined = "\n".join(errors_of(write_variant(instance, example_toml + extra, "services")))
    assert_reported(
        joined,
        "services[1].community_id: must be a TR-03130 community ID",
        "services[1].community_id: needs 'place_verification' in attributes",
        "services[1].id: duplicate service id 'demo'",
        "services[2].id: must be 1-64 characters",
        "services[2].attributes: must list at least one attribute",
        "services[2].minimum_age: must be an integer, not a boolean",
    )


def test_minimum_age_needs_age_verification(instance: Path, example_toml: str) -> None:
    text = example_toml.replace("# Optional: minimum_age", "minimum_age = 18\n# Optional: minimum_age")
    joined = "\n".join(errors_of(write_variant(instance, text, "age")))
    assert "services[0].minimum_age: needs 'age_verification' in attributes" in joined


def test_encryption_required_when_encrypting(instance: Path, example_toml: str) -> None:
    text = example_toml.replace('encryption_cert = "certs/demo-service.crt"\n', "")
    joined = "\n".join(errors_of(write_variant(instance, text, "enc")))
    assert "services[0].saml.encryption_cert: is required when encrypt_assertions = true" in joined


def test_weak_signing_key_is_refused(instance: Path, example_toml: str, tmp_path: Path) -> None:
    weak = generate_key_pair("rsa-2048", "weak")
    key_pem, cert_pem = key_pair_to_pem(weak)
    (tmp_path / "weak.key").write_bytes(key_pem)
    (tmp_path / "weak.crt").write_bytes(cert_pem)
    text = example_toml.replace('"certs/saml-signing.key"', f'"{tmp_path / "weak.key"}"').replace(
        '"certs/saml-signing.crt"', f'"{tmp_path / "weak.crt"}"'
    )
    joined = "\n".join(errors_of(write_variant(instance, text, "weak")))
    assert "keys.saml_signing_key: RSA key of 2048 bits; at least 3072 required" in joined


def test_demo_signing_key_errors_name_their_key(instance: Path, example_toml: str, tmp_path: Path) -> None:
    weak, ec_key = generate_key_pair("rsa-2048", "weak"), generate_key_pair("ec-p256", "ec")
    for name, kp in (("weak", weak), ("ec", ec_key)):
        key_pem, cert_pem = key_pair_to_pem(kp)
        (tmp_path / f"{name}.key").write_bytes(key_pem)
        (tmp_path / f"{name}.crt").write_bytes(cert_pem)
    demo_signing = 'signing_key = "certs/demo-service-signing.key"\n'
    assert demo_signing in example_toml
    # a certificate without its key
    joined = "\n".join(errors_of(write_variant(instance, example_toml.replace(demo_signing, ""), "demo-cert")))
    assert "demo.signing_key: is required when demo.signing_cert is set" in joined
    # a weak signing key
    text = example_toml.replace(demo_signing, f'signing_key = "{tmp_path / "weak.key"}"\n').replace(
        'signing_cert = "certs/demo-service-signing.crt"\nentity_id',
        f'signing_cert = "{tmp_path / "weak.crt"}"\nentity_id',
    )
    joined = "\n".join(errors_of(write_variant(instance, text, "demo-weak")))
    assert "demo.signing_key: RSA key of 2048 bits; at least 3072 required" in joined
    # with a signing key of its own, key only decrypts RSA-OAEP: an EC key cannot
    text = example_toml.replace(
        'key = "certs/demo-service.key"\ncert = "certs/demo-service.crt"\n',
        f'key = "{tmp_path / "ec.key"}"\ncert = "{tmp_path / "ec.crt"}"\n',
    )
    assert text != example_toml
    joined = "\n".join(errors_of(write_variant(instance, text, "demo-ec")))
    assert "demo.key: must be an RSA key" in joined


def test_not_toml(instance: Path) -> None:
    errors = errors_of(write_variant(instance, "mode = ", "broken"))
    assert len(errors) == 1 and "not valid TOML" in errors[0]


def test_missing_file(tmp_path: Path) -> None:
    errors = errors_of(tmp_path / "nope.toml")
    assert "cannot read config file" in errors[0]


# --- certs/loading.py ----------------------------------------------------------------------------------------


def test_pkcs12_key_pair(tmp_path: Path) -> None:
    kp = generate_key_pair("ec-p256", "p12")
    blob = pkcs12.serialize_key_and_certificates(
        b"x", kp.private_key, kp.certificate, None, serialization.BestAvailableEncryption(b"pw")
    )
    (tmp_path / "k.p12").write_bytes(blob)
    loaded = load_key_pair_file(tmp_path / "k.p12", None, b"pw")
    assert loaded.certificate == kp.certificate
    with pytest.raises(CertLoadError, match="wrong password"):
        load_key_pair_file(tmp_path / "k.p12", None, b"bad")


def test_mismatched_key_and_certificate(tmp_path: Path) -> None:
    a, b = generate_key_pair("ec-p256", "a"), generate_key_pair("ec-p256", "b")
    (tmp_path / "a.key").write_bytes(key_pair_to_pem(a)[0])
    (tmp_path / "b.crt").write_bytes(key_pair_to_pem(b)[1])
    with pytest.raises(CertLoadError, match="does not belong"):
        load_key_pair_file(tmp_path / "a.key", tmp_path / "b.crt")


def test_certificate_given_as_key(tmp_path: Path) -> None:
    a = generate_key_pair("ec-p256", "a")
    (tmp_path / "a.crt").write_bytes(key_pair_to_pem(a)[1])
    with pytest.raises(CertLoadError, match="holds no PEM private key"):
        load_key_pair_file(tmp_path / "a.crt", tmp_path / "a.crt")


def test_short_secret(tmp_path: Path) -> None:
    (tmp_path / "s").write_bytes(b"short")
    with pytest.raises(CertLoadError, match="at least 32"):
        load_secret_file(tmp_path / "s")


def test_dev_keys_are_private(instance: Path) -> None:
    for path in (instance / "certs").iterdir():
        assert os.stat(path).st_mode & 0o777 == 0o600, path


def _write_pair(directory: Path, stem: str, kind: str, password: bytes | None = None) -> None:
    kp = generate_key_pair(kind, f"prod {stem}")
    key_pem, cert_pem = key_pair_to_pem(kp)
    if password is not None:
        key_pem = kp.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    (directory / f"{stem}.key").write_bytes(key_pem)
    (directory / f"{stem}.crt").write_bytes(cert_pem)


PRODUCTION_TOML = """
mode = "production"
public_origin = "https://eid.example.de"
[keys]
password_env = "TEST_EIDGW_PASSWORD"
saml_signing_key = "signing.key"
saml_signing_cert = "signing.crt"
eid_client_key = "client.key"
eid_client_cert = "client.crt"
pseudonym_secret = "pseudonym.secret"
[store]
path = "/var/lib/eid-gateway/gateway.sqlite3"
[eid_server]
kind = "tr03130"
url = "https://eid-server.example.de/eID"
server_cert = "server.crt"
[branding]
impressum_url = "https://www.example.de/impressum"
privacy_url = "https://www.example.de/datenschutz"
[[services]]
id = "wohngeld"
name_de = "Wohngeld beantragen"
attributes = ["given_names", "family_names", "pseudonym", "age_verification"]
required = ["given_names", "family_names"]
minimum_age = 18
[services.saml]
entity_id = "https://wohngeld.example.de/sp"
acs_urls = ["https://wohngeld.example.de/acs"]
signing_cert = "service.crt"
"""


def test_a_production_config_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eid_gateway.app import create_app
    from eid_gateway.backends.registry import eid_client_ssl_context

    _write_pair(tmp_path, "signing", "rsa-3072", b"pw")
    _write_pair(tmp_path, "client", "ec-p256", b"pw")
    _write_pair(tmp_path, "server", "ec-p256")
    _write_pair(tmp_path, "service", "rsa-3072")
    (tmp_path / "pseudonym.secret").write_bytes(os.urandom(32))
    path = tmp_path / "prod.toml"
    path.write_text(PRODUCTION_TOML, encoding="utf-8")

    monkeypatch.delenv("TEST_EIDGW_PASSWORD", raising=False)
    joined = "\n".join(errors_of(path))
    assert "keys.password_env: environment variable TEST_EIDGW_PASSWORD is not set" in joined

    monkeypatch.setenv("TEST_EIDGW_PASSWORD", "pw")
    config = load_config(path)
    assert config.production and config.secure_origin and config.simulator is None
    service = config.services.by_id("wohngeld")
    assert service is not None and service.minimum_age == 18 and service.name_en == "Wohngeld beantragen"
    ctx = eid_client_ssl_context(config)  # mutual TLS with the encrypted client key
    assert ctx is not None
    app = create_app(config)  # composes without a simulator and without the demo
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert "/eid/tctoken/{ref}" in paths and "/saml/metadata" in paths
    assert not any(p.startswith("/eid-sim") or p.startswith("/demo") for p in paths)


def test_oidc_errors_are_collected_with_the_rest(instance: Path, example_toml: str) -> None:
    # the example registers the demo as an OIDC client under an [oidc] provider: take the provider
    # section out, keep the service's [services.oidc] table
    without_provider = (
        example_toml[: example_toml.index("[oidc]\n")] + example_toml[example_toml.index("# One [[services]] table") :]
    )
    text = without_provider.replace("port = 8080", "port = 99999")
    # the [services.oidc] table attaches to the last [[services]] entry (the demo service)
    joined = "\n".join(errors_of(write_variant(instance, text, "oidc")))
    assert "listen.port: must be between 1 and 65535" in joined
    assert "services[0].oidc: needs the provider section [oidc]" in joined


def test_key_transport_of_a_service_is_checked(instance: Path, example_toml: str) -> None:
    assert "encrypt_assertions = true\n" in example_toml
    legacy = example_toml.replace(
        "encrypt_assertions = true\n", 'encrypt_assertions = true\nkey_transport = "rsa-oaep-mgf1p"\n'
    )
    services = load_config(write_variant(instance, legacy, "kt-legacy")).services.services
    assert services[0].saml is not None and services[0].saml.key_transport == "rsa-oaep-mgf1p"
    wrong = example_toml.replace(
        "encrypt_assertions = true\n", 'encrypt_assertions = true\nkey_transport = "rsa-1_5"\n'
    )
    assert errors_of(write_variant(instance, wrong, "kt-wrong")) == [
        'services[0].saml.key_transport: must be "rsa-oaep" or "rsa-oaep-mgf1p"'
    ]
