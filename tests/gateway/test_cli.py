"""The `eid-gateway` command line: init, check-config, metadata, verify delegation."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certs.loading import load_key_pair_file
from eid_gateway.cli import EXIT_CONFIG, EXIT_EXISTS, EXIT_OK, EXIT_USAGE
from eid_gateway.config import CONFIG_ENV
from helpers.cli import run_cli

from .conftest import write_variant


def test_init_then_check_config(tmp_path: Path) -> None:
    code, out, err = run_cli("init", "--dir", str(tmp_path / "inst"), "--port", "9123")
    assert code == EXIT_OK, err
    config_path = tmp_path / "inst" / "gateway.toml"
    # every file init writes is its owner's only (the config names the secrets' paths and the setup)
    written = [config_path, *(tmp_path / "inst" / "certs").iterdir()]
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in written} == {f.name: "0o600" for f in written}
    text = config_path.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert data["public_origin"] == "http://127.0.0.1:9123" and data["listen"]["port"] == 9123
    # every key is explained: each non-table key line is preceded by a comment line
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith(("#", "[")) and line.strip():
            block = lines[max(0, i - 8) : i]
            assert any(prev.startswith("#") for prev in block), line
    for stem in (
        "saml-signing",
        "saml-signing-next",
        "eid-client",
        "simulator",
        "demo-service",
        "demo-service-signing",
        "oidc-signing",
        "oidc-rsa-signing",
    ):
        assert (tmp_path / "inst" / "certs" / f"{stem}.key").is_file()
        assert (tmp_path / "inst" / "certs" / f"{stem}.crt").is_file()
    # the demo's two keys: RSA for decryption (RSA-OAEP), EC P-256 for signing its AuthnRequests
    assert data["demo"]["cert"] == data["services"][0]["saml"]["encryption_cert"] == "certs/demo-service.crt"
    assert data["demo"]["signing_cert"] == data["services"][0]["saml"]["signing_cert"]
    assert data["demo"]["signing_cert"] == "certs/demo-service-signing.crt"
    signing = load_key_pair_file(
        tmp_path / "inst/certs/demo-service-signing.key", tmp_path / "inst/certs/demo-service-signing.crt"
    )
    assert isinstance(signing.private_key, ec.EllipticCurvePrivateKey)
    decryption = load_key_pair_file(tmp_path / "inst/certs/demo-service.key", tmp_path / "inst/certs/demo-service.crt")
    assert isinstance(decryption.private_key, rsa.RSAPrivateKey) and decryption.private_key.key_size == 3072
    # RS256 offered (OpenID Connect Discovery §3) with an RSA-3072 key of its own; ES256 stays the default
    oidc_rsa = load_key_pair_file(
        tmp_path / "inst/certs/oidc-rsa-signing.key", tmp_path / "inst/certs/oidc-rsa-signing.crt"
    )
    assert isinstance(oidc_rsa.private_key, rsa.RSAPrivateKey) and oidc_rsa.private_key.key_size == 3072
    assert data["oidc"]["rsa_signing_key"] == {"kid": "oidc-rsa-dev-1", "path": "certs/oidc-rsa-signing.key"}
    assert "id_token_signed_response_alg" not in data["services"][0]["oidc"]
    secret = (tmp_path / "inst" / "certs" / "pseudonym.secret").read_bytes()
    assert secret.startswith(b"eid-gateway pseudonym secret: DEVELOPMENT ONLY") and len(secret.split(b"\n")[1]) == 64

    code, out, err = run_cli("check-config", "--config", str(config_path))
    assert code == EXIT_OK, err
    assert "configuration OK" in out and "eid_server=simulator" in out and "services=1" in out


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    assert run_cli("init", "--dir", str(tmp_path))[0] == EXIT_OK
    before = (tmp_path / "certs" / "saml-signing.key").read_bytes()
    code, _, err = run_cli("init", "--dir", str(tmp_path))
    assert code == EXIT_EXISTS and "--force" in err
    assert (tmp_path / "certs" / "saml-signing.key").read_bytes() == before
    # keys alone present (config deleted) are not overwritten either
    (tmp_path / "gateway.toml").unlink()
    code, _, err = run_cli("init", "--dir", str(tmp_path))
    assert code == EXIT_EXISTS and "refusing to overwrite" in err
    assert run_cli("init", "--dir", str(tmp_path), "--force")[0] == EXIT_OK
    assert (tmp_path / "certs" / "saml-signing.key").read_bytes() != before


def test_init_with_https_origin(tmp_path: Path) -> None:
    code, _, err = run_cli("init", "--dir", str(tmp_path), "--origin", "https://eid.example.de")
    assert code == EXIT_OK, err
    data = tomllib.loads((tmp_path / "gateway.toml").read_text(encoding="utf-8"))
    assert data["services"][0]["saml"]["acs_urls"] == ["https://eid.example.de/demo/acs"]
    assert run_cli("init", "--dir", str(tmp_path / "x"), "--origin", "ftp://nope")[0] != EXIT_OK


def test_check_config_lists_all_errors(tmp_path: Path, example_toml: str, instance: Path) -> None:
    bad = instance / "bad-cli.toml"
    bad.write_text(
        example_toml.replace("port = 8080", "port = 0").replace('kind = "sqlite"', 'kind = "memcached"'),
        encoding="utf-8",
    )
    code, _, err = run_cli("check-config", "--config", str(bad))
    assert code == EXIT_CONFIG
    assert "  - listen.port: must be between 1 and 65535" in err
    assert '  - store.kind: must be "sqlite" or "redis"' in err


def test_client_secret_prints_a_secret_once_and_its_hash_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eid_gateway.frontends.oidc.client_secret import verify_client_secret

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, err = run_cli("client-secret")
    assert code == EXIT_OK and err == ""
    secret = re.search(r"client secret \(give it to the service; shown only now, not stored anywhere\): (\S+)", out)
    assert secret and re.fullmatch(r"[A-Za-z0-9_-]{43,}", secret.group(1))  # >= 256 bits, URL-safe
    hash_line = [line for line in out.splitlines() if line.startswith("client_secret_hash = ")]
    assert len(hash_line) == 1
    stored = tomllib.loads(hash_line[0])["client_secret_hash"]  # pastes into [services.oidc] as is
    assert stored.startswith("scrypt$") and secret.group(1) not in stored
    assert verify_client_secret(secret.group(1), stored) and not verify_client_secret(secret.group(1)[1:], stored)
    assert list(tmp_path.iterdir()) == []  # stores nothing
    assert run_cli("client-secret")[1] != out  # a new secret every time (rotation)


def test_check_config_names_the_client_secret_command(instance: Path, example_toml: str) -> None:
    text = example_toml.replace("public_client = true", 'token_endpoint_auth_method = "client_secret_post"')
    assert text != example_toml
    code, _, err = run_cli("check-config", "--config", str(write_variant(instance, text, "no-secret-hash")))
    assert code == EXIT_CONFIG
    assert (
        "services[0].oidc.client_secret_hash: required for client_secret_post (a scrypt$... hash made by "
        "`eid-gateway client-secret`, never the secret itself)"
    ) in err
    assert "made by `eid-gateway init`" not in err


def test_default_config_path_from_environment(instance: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(instance / "gateway.toml"))
    code, out, _ = run_cli("check-config")
    assert code == EXIT_OK and "configuration OK" in out
    monkeypatch.setenv(CONFIG_ENV, str(instance / "absent.toml"))
    code, _, err = run_cli("check-config")
    assert code == EXIT_CONFIG and "cannot read config file" in err


def test_default_config_path_is_instance_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("check-config")
    assert code == EXIT_CONFIG and os.path.join("instance", "gateway.toml") in err


def test_metadata_prints_signed_idp_metadata(instance: Path) -> None:
    code, out, err = run_cli("metadata", "--config", str(instance / "gateway.toml"))
    assert code == EXIT_OK, err
    assert "EntityDescriptor" in out and 'entityID="http://127.0.0.1:8080/saml/metadata"' in out


def test_kiosk_commands_are_listed_but_run_only_by_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    """readers and kiosk-agent have one dispatch, eid_gateway.entry (tests/kiosks/test_agent_install.py runs
    it); the CLI lists them for --help and refuses them clearly rather than running them a second way."""
    code, _, _ = run_cli("--help")
    listing = capsys.readouterr().out
    assert (
        code == EXIT_OK
        and re.search(r"^\s+readers\s", listing, re.M)
        and re.search(r"^\s+kiosk-agent\s", listing, re.M)
    )
    for command in ("readers", "kiosk-agent"):
        code, out, err = run_cli(command)
        assert (code, out) == (EXIT_USAGE, "") and f"run `eid-gateway {command}`" in err


def test_verify_delegates_to_saml_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run_cli("verify", "--help")
    printed = capsys.readouterr()
    assert code == EXIT_OK and "usage: eid-gateway verify" in printed.out and "--metadata" in printed.out
    (tmp_path / "r.xml").write_text("<not-a-response/>")
    code, _, _ = run_cli("verify", str(tmp_path / "r.xml"), "--metadata", str(tmp_path / "absent.xml"))
    assert code != EXIT_OK
