"""The ``[oidc]`` / ``[services.oidc]`` parser: every mistake is refused with the key named."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from eid_gateway.frontends.oidc import create_oidc_frontend
from eid_gateway.frontends.oidc.client_secret import hash_client_secret, verify_client_secret
from eid_gateway.frontends.oidc.keys import load_client_keys, load_provider_keys
from eid_gateway.frontends.oidc.settings import (
    ClientAuthMethod,
    parse_oidc_settings,
    with_oidc_services,
)
from eid_gateway.settings_base import ConfigError

from .conftest import SERVICES, GatewayView, ImmediateFlow

PROVIDER = """
[oidc]
[oidc.signing_key]
kid = "k1"
path = "current.pem"
"""


def parse(text: str, base: Path, production: bool = False) -> Any:
    return parse_oidc_settings(tomllib.loads(text), base, production=production)


def service(oidc: str, sid: str = "portal") -> str:
    return f'\n[[services]]\nid = "{sid}"\n[services.oidc]\n{oidc}\n'


def test_minimal_settings_and_defaults(key_dir: Path) -> None:
    s = parse(
        PROVIDER
        + service('client_id = "c"\nredirect_uris = ["https://a.example/cb"]\nclient_secret_hash = "scrypt$x"'),
        key_dir,
    )
    assert s.provider.code_lifetime == 60 and s.provider.signing_key.path == key_dir / "current.pem"
    client = s.client("c")
    assert client.auth_method is ClientAuthMethod.CLIENT_SECRET_BASIC and client.service_id == "portal"
    assert client.id_token_signed_response_alg == "ES256"
    assert s.client_for_service("portal") is client and s.client_for_service("other") is None


def test_no_oidc_section_means_no_frontend(key_dir: Path) -> None:
    assert parse('[[services]]\nid = "x"\n', key_dir) is None


@pytest.mark.parametrize(
    "text,message",
    [
        ("[oidc]\n", "oidc.signing_key: is required"),
        (PROVIDER.replace("[oidc]\n", "[oidc]\ncode_lifetime = 120\n"), "oidc.code_lifetime: must be between 1 and 60"),
        (PROVIDER.replace("[oidc]\n", "[oidc]\ncode_lifetime = true\n"), "oidc.code_lifetime"),
        (PROVIDER.replace("[oidc]\n", "[oidc]\ncode_lifetme = 30\n"), "oidc.code_lifetme: unknown key"),
        (PROVIDER + '[oidc.next_signing_key]\nkid = "k1"\npath = "next.pem"\n', "kid values must differ"),
        (PROVIDER + service('redirect_uris = ["https://a.example/cb"]'), "services[0].oidc.client_id"),
        (PROVIDER + service('client_id = "c"\nredirect_uris = []'), "services[0].oidc.redirect_uris"),
        (
            PROVIDER + service('client_id = "c"\nredirect_uris = ["https://a.example/cb#x"]\npublic_client = true'),
            "must not contain a fragment",
        ),
        (
            PROVIDER + service('client_id = "c"\nredirect_uris = ["http://a.example/cb"]\npublic_client = true'),
            "must be an absolute https URL",
        ),
        (
            PROVIDER + service('client_id = "c"\nredirect_uris = ["/cb"]\npublic_client = true'),
            "must be an absolute https URL",
        ),
        (
            PROVIDER + service('client_id = "c"\nredirect_uris = ["https://a.example/cb"]'),
            "services[0].oidc.client_secret_hash: required for client_secret_basic",
        ),
        (
            PROVIDER
            + service('client_id = "c"\nredirect_uris = ["https://a.example/cb"]\nclient_secret_hash = "s3cret"'),
            "client_secret_hash",
        ),
        (
            PROVIDER
            + service(
                'client_id = "c"\nredirect_uris = ["https://a.example/cb"]\n'
                'token_endpoint_auth_method = "client_secret_post"'
            ),
            "services[0].oidc.client_secret_hash: required for client_secret_post (a scrypt$... hash made by "
            "`eid-gateway client-secret`",
        ),
        (
            PROVIDER
            + service(
                'client_id = "c"\nredirect_uris = ["https://a.example/cb"]\n'
                'token_endpoint_auth_method = "client_secret_jwt"'
            ),
            "token_endpoint_auth_method: 'client_secret_jwt' is not one of",
        ),
        (
            PROVIDER
            + service(
                'client_id = "c"\nredirect_uris = ["https://a.example/cb"]\npublic_client = true\n'
                'client_secret_hash = "scrypt$1$2$3$4$5"'
            ),
            "client_secret_hash: only used with client_secret_basic or client_secret_post",
        ),
        (
            PROVIDER
            + service('client_id = "c"\nredirect_uris = ["https://a.example/cb"]\ntoken_endpoint_auth_method = "none"'),
            "a public client uses",
        ),
        (
            PROVIDER
            + service(
                'client_id = "c"\nredirect_uris = ["https://a.example/cb"]\n'
                'token_endpoint_auth_method = "private_key_jwt"'
            ),
            "private_key_jwt needs exactly one",
        ),
        (
            PROVIDER
            + service(
                'client_id = "c"\nredirect_uris = ["https://a.example/cb"]\n'
                'token_endpoint_auth_method = "private_key_jwt"\n'
                'jwks = { keys = [ { kty = "oct", k = "c2VjcmV0" } ] }'
            ),
            "services[0].oidc.jwks.keys[0]: only EC and RSA",
        ),
        (
            PROVIDER
            + service(
                'client_id = "c"\nredirect_uris = ["https://a.example/cb"]\npublic_client = true\n'
                'id_token_signed_response_alg = "HS256"'
            ),
            "id_token_signed_response_alg: 'HS256'",
        ),
        (
            PROVIDER
            + service(
                'client_id = "c"\nredirect_uris = ["https://a.example/cb"]\npublic_client = true\n'
                'id_token_signed_response_alg = "none"'
            ),
            "id_token_signed_response_alg: 'none'",
        ),
        (
            PROVIDER
            + service(
                'client_id = "c"\nredirect_uris = ["https://a.example/cb"]\npublic_client = true\n'
                'id_token_signed_response_alg = "RS256"'
            ),
            "needs an [oidc.rsa_signing_key]",
        ),
        (
            PROVIDER
            + service('client_id = "c"\nredirect_uris = ["https://a.example/cb"]\npublic_client = true', "a")
            + service('client_id = "c"\nredirect_uris = ["https://b.example/cb"]\npublic_client = true', "b"),
            "services[1].oidc.client_id: 'c' is already used by service 'a'",
        ),
        (
            service('client_id = "c"\nredirect_uris = ["https://a.example/cb"]\npublic_client = true'),
            "services[0].oidc: needs the provider section [oidc]",
        ),
    ],
)
def test_mistakes_are_named(key_dir: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(text, key_dir)
    assert message in str(e.value)


def test_all_problems_are_reported_at_once(key_dir: Path) -> None:
    text = (
        "[oidc]\ncode_lifetime = 0\n"
        + service('client_id = "c"\nredirect_uris = []', "a")
        + service('redirect_uris = ["https://x.example"]\npublic_client = true', "b")
    )
    with pytest.raises(ConfigError) as e:
        parse(text, key_dir)
    # [oidc] reports both of its problems (the missing key does not hide the wrong lifetime)
    assert e.value.errors == [
        "oidc.signing_key: is required",
        "oidc.code_lifetime: must be between 1 and 60",
        "services[0].oidc.redirect_uris: a non-empty list of URLs is required",
        "services[1].oidc.client_id: is required",
    ]


def test_localhost_http_only_outside_production(key_dir: Path) -> None:
    text = PROVIDER + service('client_id = "c"\nredirect_uris = ["http://localhost:9000/cb"]\npublic_client = true')
    assert parse(text, key_dir).client("c").redirect_uris == ("http://localhost:9000/cb",)
    with pytest.raises(ConfigError, match="must be an absolute https URL"):
        parse(text, key_dir, production=True)


def test_key_files_are_checked(key_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "rsa-as-ec.pem").write_bytes((key_dir / "rsa.pem").read_bytes())
    (tmp_path / "garbage.pem").write_text("not a key")
    for name, message in (
        ("missing.pem", "cannot read"),
        ("rsa-as-ec.pem", "must hold an EC P-256"),
        ("garbage.pem", "not an unencrypted PEM private key"),
    ):
        s = parse(
            f'[oidc.signing_key]\nkid = "k"\npath = "{tmp_path / name}"\n'.replace(
                "[oidc.signing_key]", "[oidc]\n[oidc.signing_key]"
            ),
            tmp_path,
        )
        with pytest.raises(ConfigError, match=f"oidc.signing_key.path: .*{message}"):
            load_provider_keys(s.provider)
    s = parse(PROVIDER + f'[oidc.rsa_signing_key]\nkid = "r"\npath = "{key_dir / "current.pem"}"\n', key_dir)
    with pytest.raises(ConfigError, match="oidc.rsa_signing_key.path: .*RSA private key of >= 3072"):
        load_provider_keys(s.provider)


def test_client_jwks_from_file(key_dir: Path, tmp_path: Path, tax_client_key: ECKey) -> None:
    import json

    (tmp_path / "c.jwks").write_text(json.dumps({"keys": [tax_client_key.as_dict(private=False)]}))
    (tmp_path / "private.jwks").write_text(json.dumps({"keys": [tax_client_key.as_dict(private=True)]}))
    base = (
        'client_id = "c"\nredirect_uris = ["https://a.example/cb"]\n'
        'token_endpoint_auth_method = "private_key_jwt"\njwks_path = "{}"'
    )
    s = parse(PROVIDER + service(base.format("c.jwks")), tmp_path)
    keys = load_client_keys(s.client("c"))
    assert keys is not None and [k.kid for k in keys.keys] == ["tax-1"]
    s = parse(PROVIDER + service(base.format("private.jwks")), tmp_path)
    with pytest.raises(ConfigError, match="must be a public key"):
        load_client_keys(s.client("c"))


def test_client_of_unknown_service_is_refused(key_dir: Path, tmp_path: Path) -> None:
    from eid_gateway.store.sqlite import SqliteStore

    s = parse(
        PROVIDER
        + service('client_id = "c"\nredirect_uris = ["https://a.example/cb"]\npublic_client = true', "nowhere"),
        key_dir,
    )
    with pytest.raises(ConfigError, match="unknown service 'nowhere'"):
        create_oidc_frontend(
            GatewayView("https://gw.example", SERVICES), ImmediateFlow(), SqliteStore(tmp_path / "s.db"), s
        )


def test_with_oidc_services_fills_the_registry(key_dir: Path) -> None:
    s = parse(
        PROVIDER + service('client_id = "c"\nredirect_uris = ["https://a.example/cb"]\npublic_client = true'), key_dir
    )
    registry = with_oidc_services(SERVICES, s)
    found = registry.by_client_id("c")
    assert found is not None and found.id == "portal"
    assert found.oidc is not None and found.oidc.redirect_uris == ("https://a.example/cb",)
    assert registry.by_id("youth") == SERVICES.by_id("youth")


def test_client_secret_hash_round_trip() -> None:
    stored = hash_client_secret("correct horse")
    assert stored.startswith("scrypt$") and "correct" not in stored
    assert verify_client_secret("correct horse", stored)
    assert not verify_client_secret("correct hors", stored)
    assert hash_client_secret("correct horse") != stored  # salted
    for broken in (
        "",
        "scrypt$",
        "scrypt$x$8$1$AA$AA",
        "scrypt$16384$8$1$!!$AA",
        "scrypt$2$8$1$AAAA$AAAA",
        "bcrypt$16384$8$1$AAAA$AAAA",
    ):
        assert not verify_client_secret("correct horse", broken)
